// Conversations with the ESMTP client session: server replies in, bytes and outcomes out.
// Each conversation is a table of steps; the expected output renders the actions as text:
//   "> bytes" (SendBytes), "BODY", "DONE [host] [noreply] |D reply|T reply|P reply", "READY",
//   "CLOSE", one per line. A step may also check the timeout that applies afterwards.
#include "lib/smtp/client_session.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::smtp {
namespace {

struct Step {
  std::string in;  // "connect", "start", "body", "timeout", "closed", "quit", or "S:<replies>"
  std::string out;
  int timeout = -1;  // seconds expected from timeout() after the step; -1 = not checked
};

struct Conversation {
  const char* name;
  std::vector<Transaction> transactions;  // started in order by "start" steps
  std::vector<Step> steps;
  ClientSecurity security = {};
  Protocol protocol = Protocol::Smtp;
};

ClientTimeouts test_timeouts() {
  using S = std::chrono::seconds;
  ClientTimeouts t;
  t.connect = S(1);
  t.greeting = S(2);
  t.mail = S(3);
  t.rcpt = S(4);
  t.data_init = S(5);
  t.data_block = S(6);
  t.data_end = S(7);
  t.idle = S(8);
  t.quit = S(9);
  t.tls_handshake = S(10);
  return t;
}

std::string render(const Actions& actions) {
  std::string out;
  for (const auto& a : actions) {
    if (auto* s = std::get_if<SendBytes>(&a)) {
      out += "> " + s->bytes;
    } else if (std::holds_alternative<SendBody>(a)) {
      out += "BODY\n";
    } else if (auto* d = std::get_if<TransactionDone>(&a)) {
      out += "DONE";
      if (d->host_failed) out += " host";
      if (d->no_reply) out += " noreply";
      if (d->next_hop_dsn) out += " dsn";
      if (d->policy_failed) out += " policy";
      out += " ";
      for (const auto& r : d->results) {
        out += r.status == DeliveryStatus::Delivered  ? "|D "
               : r.status == DeliveryStatus::TempFail ? "|T "
                                                      : "|P ";
        out += r.reply;
      }
      out += "\n";
    } else if (std::holds_alternative<Ready>(a)) {
      out += "READY\n";
    } else if (std::holds_alternative<Close>(a)) {
      out += "CLOSE\n";
    } else if (std::holds_alternative<StartTlsNow>(a)) {
      out += "STARTTLS\n";
    }
  }
  return out;
}

const std::string kEhloPipe =
    "S:250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n";
const std::string kEhloPlain = "S:250-mx.test\r\n250 8BITMIME\r\n";
const Transaction kTwo{"s@a.test", {"x@b.test", "y@b.test"}, 500};
const Transaction kThree{"s@a.test", {"x@b.test", "bad@b.test", "y@b.test"}, 500};

const Transaction kDsn{"s@a.test",
                       {"x@b.test", "y@b.test"},
                       500,
                       "HDRS",
                       "QQ+2B1",
                       {"SUCCESS,FAILURE", ""},
                       {"rfc822;X+2Bx@b.test", ""}};

const Transaction kOne{"s@a.test", {"x@b.test"}, 10};
const std::string kEhloTls = "S:250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
const std::string kMailOne = "> MAIL FROM:<s@a.test>\r\nRCPT TO:<x@b.test>\r\nDATA\r\n";
const Transaction kRequireTls{"s@a.test", {"x@b.test"}, 10, "", "", {}, {}, true};
const ClientSecurity kMay{StartTls::IfOffered};
const ClientSecurity kMust{StartTls::Required};
const ClientSecurity kMustAuth{StartTls::Required, false, ClientCredentials{"user", "pass"}};
const ClientSecurity kAuthPlaintextOk{StartTls::Never, false, ClientCredentials{"user", "pass"},
                                      true};

const std::string kLhloPipe =
    "S:250-dovecot.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n";
const std::string kMailThree =
    "> MAIL FROM:<s@a.test>\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<bad@b.test>\r\n"
    "RCPT TO:<y@b.test>\r\nDATA\r\n";
const std::string kMailTwo =
    "> MAIL FROM:<s@a.test>\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<y@b.test>\r\nDATA\r\n";

const std::vector<Conversation> kConversations = {
    // LMTP (RFC 2033): LHLO, and after the end of data one reply per accepted recipient.
    {"lmtp_one_reply_per_accepted_recipient_then_reuse",
     {kThree, kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 dovecot.test LMTP ready\r\n", "> LHLO client.test\r\n"},
         {kLhloPipe, kMailThree},
         {"S:250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n250 2.1.5 ok\r\n"
          "354 go\r\n",
          "BODY\n"},
         {"body", "", 7},
         {"S:250 2.0.0 <x@b.test> Saved\r\n", "", 7},
         {"S:452 4.2.2 <y@b.test> Quota exceeded\r\n",
          "DONE |D 250 2.0.0 <x@b.test> Saved|P 550 5.1.1 no such user"
          "|T 452 4.2.2 <y@b.test> Quota exceeded\nREADY\n"},
         // The connection is reused: no second LHLO.
         {"start", kMailOne},
         {"S:250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:552 5.2.2 <x@b.test> Quota exceeded (mailbox for user is full)\r\n",
          "DONE |P 552 5.2.2 <x@b.test> Quota exceeded (mailbox for user is full)\nREADY\n"},
     },
     {},
     Protocol::Lmtp},
    {"lmtp_passes_dsn_on_when_the_server_offers_it",
     {kDsn},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 lmtp\r\n", "> LHLO client.test\r\n"},
         {"S:250-lmtp\r\n250-PIPELINING\r\n250 DSN\r\n",
          "> MAIL FROM:<s@a.test> RET=HDRS ENVID=QQ+2B1\r\n"
          "RCPT TO:<x@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;X+2Bx@b.test\r\n"
          "RCPT TO:<y@b.test>\r\nDATA\r\n"},
         {"S:250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:250 2.0.0 x saved\r\n550 5.7.1 y refused\r\n",
          "DONE dsn |D 250 2.0.0 x saved|P 550 5.7.1 y refused\nREADY\n"},
     },
     {},
     Protocol::Lmtp},
    {"lmtp_connection_lost_after_some_replies_defers_the_rest",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 lmtp\r\n", "> LHLO client.test\r\n"},
         {kLhloPipe, kMailTwo},
         {"S:250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:250 2.0.0 <x@b.test> Saved\r\n", ""},
         {"closed",
          "DONE |D 250 2.0.0 <x@b.test> Saved|T connection lost in end of data: gone\nCLOSE\n"},
     },
     {},
     Protocol::Lmtp},
    {"lmtp_no_reply_after_the_body_is_never_delivered",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 lmtp\r\n", "> LHLO client.test\r\n"},
         {kLhloPipe, kMailTwo},
         {"S:250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"timeout",
          "DONE |T timeout waiting for end of data reply|T timeout waiting for end of data "
          "reply\nCLOSE\n"},
     },
     {},
     Protocol::Lmtp},
    {"lmtp_421_between_replies_defers_the_rest",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 lmtp\r\n", "> LHLO client.test\r\n"},
         {kLhloPipe, kMailTwo},
         {"S:250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:250 2.0.0 saved\r\n421 4.3.2 shutting down\r\n",
          "DONE |D 250 2.0.0 saved|T 421 4.3.2 shutting down\nCLOSE\n"},
     },
     {},
     Protocol::Lmtp},
    {"lmtp_without_pipelining_one_command_at_a_time",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 lmtp\r\n", "> LHLO client.test\r\n"},
         {"S:250-lmtp\r\n250 8BITMIME\r\n", "> MAIL FROM:<s@a.test>\r\n"},
         {"S:250 ok\r\n", "> RCPT TO:<x@b.test>\r\n"},
         {"S:450 4.2.0 try later\r\n", "> RCPT TO:<y@b.test>\r\n"},
         {"S:250 ok\r\n", "> DATA\r\n"},
         {"S:354 go\r\n", "BODY\n"},
         {"body", ""},
         // One accepted recipient: one reply ends the transaction.
         {"S:250 2.0.0 saved\r\n", "DONE |T 450 4.2.0 try later|D 250 2.0.0 saved\nREADY\n"},
     },
     {},
     Protocol::Lmtp},
    {"lmtp_refused_lhlo_defers_never_helo",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 lmtp\r\n", "> LHLO client.test\r\n"},
         {"S:500 5.5.1 unknown command\r\n", "DONE host |T 500 5.5.1 unknown command\n> QUIT\r\n"},
     },
     {},
     Protocol::Lmtp},
    {"lmtp_refused_greeting_defers",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:554 5.3.2 not now\r\n", "DONE host |T 554 5.3.2 not now\n> QUIT\r\n"},
     },
     {},
     Protocol::Lmtp},
    {"lmtp_3xx_after_the_body_is_no_delivery",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 lmtp\r\n", "> LHLO client.test\r\n"},
         {kLhloPipe, kMailOne},
         {"S:250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:354 what\r\n", "DONE |T 354 what\nREADY\n"},
     },
     {},
     Protocol::Lmtp},
    {"starttls_when_offered_then_ehlo_again_inside_tls",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n", 3},
         {"S:220 2.0.0 go ahead\r\n", "STARTTLS\n", 10},
         {"tls", "> EHLO client.test\r\n", 3},
         // Still advertised inside TLS (some servers do): never a second STARTTLS.
         {kEhloTls, kMailOne},
         {"S:250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:250 done\r\n", "DONE |D 250 done\nREADY\n"},
     },
     kMay},
    {"requiretls_goes_with_mail_inside_tls",
     {kRequireTls},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:220 go\r\n", "STARTTLS\n"},
         {"tls", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250-PIPELINING\r\n250 REQUIRETLS\r\n",
          "> MAIL FROM:<s@a.test> REQUIRETLS\r\nRCPT TO:<x@b.test>\r\nDATA\r\n"},
     },
     kMust},
    {"requiretls_to_a_server_without_it_is_a_policy_failure",
     {kRequireTls},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:220 go\r\n", "STARTTLS\n"},
         {"tls", "> EHLO client.test\r\n"},
         {kEhloTls,
          "DONE host policy |T 451 5.7.10 REQUIRETLS: the server does not offer REQUIRETLS\n"
          "> QUIT\r\n"},
     },
     kMust},
    {"may_without_starttls_offered_goes_on_in_plaintext",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250 PIPELINING\r\n", kMailOne},
     },
     kMay},
    {"may_with_starttls_refused_goes_on_in_plaintext",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:454 4.7.0 TLS not available\r\n", kMailOne},
     },
     kMay},
    {"never_ignores_an_offered_starttls",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, kMailOne},
     }},
    {"required_but_not_offered_defers_and_quits",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250 PIPELINING\r\n",
          "DONE host policy |T 451 4.7.5 TLS is required, but was not offered by the server\n"
          "> QUIT\r\n"},
     },
     kMust},
    {"required_after_helo_defers",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:502 no EHLO here\r\n", "> HELO client.test\r\n"},
         {"S:250 hi\r\n",
          "DONE host policy |T 451 4.7.5 TLS is required, but was not offered by the server\n"
          "> QUIT\r\n"},
     },
     kMust},
    {"required_and_refused_defers_with_the_servers_words",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:454 4.7.0 TLS not available\r\n",
          "DONE host policy |T 451 4.7.5 TLS is required, but the server refused STARTTLS: 454 "
          "4.7.0 "
          "TLS not available\n> QUIT\r\n"},
     },
     kMust},
    {"a_certificate_refused_by_policy_defers_and_quits_inside_tls",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:220 go\r\n", "STARTTLS\n"},
         {"tlsbad", "DONE host policy |T 451 4.7.5 certificate not trusted\n> QUIT\r\n"},
     },
     kMust},
    {"a_reply_before_the_handshake_is_an_injection_and_closes",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:220 go\r\n250 injected\r\n",
          "STARTTLS\nDONE host |T reply before the TLS handshake: 250 injected\nCLOSE\n"},
     },
     kMay},
    {"handshake_timeout_is_a_host_failure",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:220 go\r\n", "STARTTLS\n", 10},
         {"timeout", "DONE host |T timeout waiting for TLS handshake reply\nCLOSE\n"},
     },
     kMay},
    {"auth_plain_inside_tls",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         // Credentials are never offered before TLS, even when AUTH is advertised.
         {"S:250-mx.test\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n", "> STARTTLS\r\n"},
         {"S:220 go\r\n", "STARTTLS\n"},
         {"tls", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n",
          "> AUTH PLAIN AHVzZXIAcGFzcw==\r\n", 3},
         {"S:235 2.7.0 ok\r\n", kMailOne},
     },
     kMustAuth},
    {"auth_login_in_the_old_auth_equals_form",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:220 go\r\n", "STARTTLS\n"},
         {"tls", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250-PIPELINING\r\n250 AUTH=LOGIN\r\n", "> AUTH LOGIN dXNlcg==\r\n"},
         {"S:334 UGFzc3dvcmQ6\r\n", "> cGFzcw==\r\n"},
         {"S:235 2.7.0 ok\r\n", kMailOne},
     },
     kMustAuth},
    {"auth_535_defers_the_transaction",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloTls, "> STARTTLS\r\n"},
         {"S:220 go\r\n", "STARTTLS\n"},
         {"tls", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250 AUTH PLAIN\r\n", "> AUTH PLAIN AHVzZXIAcGFzcw==\r\n"},
         {"S:535 5.7.8 bad credentials\r\n",
          "DONE host |T authentication failed: 535 5.7.8 bad credentials (deferred: check "
          "client_credentials)\n> QUIT\r\n"},
     },
     kMustAuth},
    {"auth_with_an_unknown_challenge_cancels",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250 AUTH PLAIN\r\n", "> AUTH PLAIN AHVzZXIAcGFzcw==\r\n"},
         {"S:334 \r\n", "> *\r\n"},
         {"S:501 5.7.0 cancelled\r\n",
          "DONE host |T authentication failed: 501 5.7.0 cancelled (deferred: check "
          "client_credentials)\n> QUIT\r\n"},
     },
     kAuthPlaintextOk},
    {"no_credentials_over_plaintext",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250 AUTH PLAIN\r\n",
          "DONE host policy |T 451 4.7.0 not sending credentials over a connection without TLS\n"
          "> QUIT\r\n"},
     },
     {StartTls::IfOffered, false, ClientCredentials{"user", "pass"}}},
    {"no_usable_mechanism_defers",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250 AUTH CRAM-MD5 GSSAPI\r\n",
          "DONE host |T 451 4.7.0 the server offers no AUTH mechanism we can use "
          "(SCRAM-SHA-256, PLAIN, LOGIN)\n> QUIT\r\n"},
     },
     kAuthPlaintextOk},
    {"no_auth_advertised_goes_on_without_as_postfix_does",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250 PIPELINING\r\n", kMailOne},
     },
     kAuthPlaintextOk},
    {"implicit_tls_authenticates_without_starttls",
     {kOne},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
          "> AUTH PLAIN AHVzZXIAcGFzcw==\r\n"},
         {"S:235 ok\r\n", "> MAIL FROM:<s@a.test>\r\n"},
     },
     {StartTls::Required, true, ClientCredentials{"user", "pass"}}},
    {"dsn_parameters_only_to_a_server_that_advertises_dsn",
     {kDsn, kDsn},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {"S:250-mx.test\r\n250-PIPELINING\r\n250 DSN\r\n",
          "> MAIL FROM:<s@a.test> RET=HDRS ENVID=QQ+2B1\r\n"
          "RCPT TO:<x@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;X+2Bx@b.test\r\n"
          "RCPT TO:<y@b.test>\r\nDATA\r\n"},
         {"S:250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:250 done\r\n", "DONE dsn |D 250 done|D 250 done\nREADY\n"},
     }},
    {"dsn_parameters_dropped_without_dsn",
     {kDsn},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n"},
         {kEhloPlain, "> MAIL FROM:<s@a.test>\r\n"},
         {"S:250 ok\r\n", "> RCPT TO:<x@b.test>\r\n"},
         {"S:250 ok\r\n", "> RCPT TO:<y@b.test>\r\n"},
         {"S:250 ok\r\n", "> DATA\r\n"},
         {"S:354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:250 done\r\n", "DONE |D 250 done|D 250 done\nREADY\n"},
     }},
    {"pipelined_success_then_reuse_then_idle_quit",
     {kThree, {"", {"z@c.test"}, 20}},
     {
         {"start", "", 1},
         {"connect", "", 2},
         {"S:220 mx.test ESMTP\r\n", "> EHLO client.test\r\n", 3},
         {kEhloPipe,
          "> MAIL FROM:<s@a.test> SIZE=500\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<bad@b.test>\r\n"
          "RCPT TO:<y@b.test>\r\nDATA\r\n",
          3},
         {"S:250 2.1.0 Ok\r\n", "", 4},
         {"S:250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n", "", 4},
         {"S:250 2.1.5 Ok\r\n", "", 5},
         {"S:354 go ahead\r\n", "BODY\n", 6},
         {"body", "", 7},
         {"S:250 2.0.0 queued as X\r\n",
          "DONE |D 250 2.0.0 queued as X|P 550 5.1.1 no such user|D 250 2.0.0 queued as X\n"
          "READY\n",
          8},
         {"start", "> MAIL FROM:<> SIZE=20\r\nRCPT TO:<z@c.test>\r\nDATA\r\n", 3},
         {"S:250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:250 done\r\n", "DONE |D 250 done\nREADY\n", 8},
         {"timeout", "> QUIT\r\n", 9},
         {"S:221 bye\r\n", "CLOSE\n"},
     }},
    {"unpipelined_one_by_one",
     {kThree},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 mx.test\r\n", "> EHLO client.test\r\n"},
         {kEhloPlain, "> MAIL FROM:<s@a.test>\r\n", 3},
         {"S:250 ok\r\n", "> RCPT TO:<x@b.test>\r\n", 4},
         {"S:250 ok\r\n", "> RCPT TO:<bad@b.test>\r\n", 4},
         {"S:450 4.2.0 mailbox busy\r\n", "> RCPT TO:<y@b.test>\r\n"},
         {"S:250 ok\r\n", "> DATA\r\n", 5},
         {"S:354 go\r\n", "BODY\n", 6},
         {"body", "", 7},
         {"S:451 4.3.0 try later\r\n",
          "DONE |T 451 4.3.0 try later|T 450 4.2.0 mailbox busy|T 451 4.3.0 try later\nREADY\n"},
         {"quit", "> QUIT\r\n"},
         {"closed", "CLOSE\n"},
     }},
    {"greeting_4xx",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:421-busy\r\n421 try later\r\n",
          "DONE host |T 421 busy try later|T 421 busy try later\n"
          "CLOSE\n"},
     }},
    {"greeting_450",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:450 not now\r\n", "DONE host |T 450 not now|T 450 not now\n> QUIT\r\n", 9},
         {"S:221 bye\r\n", "CLOSE\n"},
     }},
    {"greeting_5xx",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:554 5.7.1 go away\r\n",
          "DONE host |P 554 5.7.1 go away|P 554 5.7.1 go away\n> QUIT\r\n"},
         {"closed", "CLOSE\n"},
     }},
    {"ehlo_5xx_falls_back_to_helo",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 old\r\n", "> EHLO client.test\r\n"},
         {"S:502 command not implemented\r\n", "> HELO client.test\r\n", 3},
         {"S:250 old\r\n", "> MAIL FROM:<s@a.test>\r\n"},
         {"S:250 ok\r\n", "> RCPT TO:<x@b.test>\r\n"},
         {"S:250 ok\r\n", "> RCPT TO:<y@b.test>\r\n"},
         {"S:250 ok\r\n", "> DATA\r\n"},
         {"S:354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:250 ok\r\n", "DONE |D 250 ok|D 250 ok\nREADY\n"},
     }},
    {"ehlo_4xx_host_failure",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {"S:454 later\r\n", "DONE host |T 454 later|T 454 later\n> QUIT\r\n"},
     }},
    {"helo_5xx",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {"S:500 what\r\n", "> HELO client.test\r\n"},
         {"S:550 no\r\n", "DONE host |P 550 no|P 550 no\n> QUIT\r\n"},
     }},
    {"size_exceeded",
     {{"s@a.test", {"x@b.test"}, 100001}},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPipe,
          "DONE |P 552 5.3.4 Message size exceeds fixed maximum message size of the server "
          "(100000 bytes)\nREADY\n",
          8},
     }},
    {"size_without_limit",
     {{"s@a.test", {"x@b.test"}, 100001}},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {"S:250-x\r\n250 SIZE\r\n", "> MAIL FROM:<s@a.test> SIZE=100001\r\n"},
     }},
    {"unpipelined_all_rcpt_rejected_rset",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPlain, "> MAIL FROM:<s@a.test>\r\n"},
         {"S:250 ok\r\n", "> RCPT TO:<x@b.test>\r\n"},
         {"S:550 no\r\n", "> RCPT TO:<y@b.test>\r\n"},
         {"S:450 later\r\n", "DONE |P 550 no|T 450 later\n> RSET\r\n", 3},
         {"S:250 reset\r\n", "READY\n", 8},
     }},
    {"unpipelined_mail_rejected",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPlain, "> MAIL FROM:<s@a.test>\r\n"},
         {"S:553 5.1.8 bad sender\r\n",
          "DONE |P 553 5.1.8 bad sender|P 553 5.1.8 bad sender\n> RSET\r\n"},
         {"S:250 ok\r\n", "READY\n"},
     }},
    {"pipelined_mail_rejected",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPipe,
          "> MAIL FROM:<s@a.test> SIZE=500\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<y@b.test>\r\n"
          "DATA\r\n"},
         {"S:451 4.3.0 sender check failed\r\n503 need MAIL\r\n503 need MAIL\r\n", ""},
         {"S:503 need RCPT\r\n",
          "DONE |T 451 4.3.0 sender check failed|T 451 4.3.0 sender check failed\n> RSET\r\n"},
         {"S:250 ok\r\n", "READY\n"},
     }},
    {"pipelined_all_rcpt_rejected_data_554",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPipe,
          "> MAIL FROM:<s@a.test> SIZE=500\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<y@b.test>\r\n"
          "DATA\r\n"},
         {"S:250 ok\r\n550 5.1.1 unknown\r\n450 4.1.1 later\r\n554 5.5.1 no valid recipients\r\n",
          "DONE |P 550 5.1.1 unknown|T 450 4.1.1 later\n> RSET\r\n"},
     }},
    {"pipelined_354_without_recipients_ends_empty_message",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPipe,
          "> MAIL FROM:<s@a.test> SIZE=500\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<y@b.test>\r\n"
          "DATA\r\n"},
         {"S:250 ok\r\n550 no\r\n550 no\r\n354 go\r\n", "> .\r\n", 7},
         {"S:554 no valid recipients\r\n", "DONE |P 550 no|P 550 no\nREADY\n"},
     }},
    {"pipelined_data_rejected_after_accepted_rcpt",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPipe,
          "> MAIL FROM:<s@a.test> SIZE=500\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<y@b.test>\r\n"
          "DATA\r\n"},
         {"S:250 ok\r\n250 ok\r\n550 no\r\n451 4.3.0 not now\r\n",
          "DONE |T 451 4.3.0 not now|P 550 no\n> RSET\r\n"},
     }},
    {"final_5xx",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPipe,
          "> MAIL FROM:<s@a.test> SIZE=500\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<y@b.test>\r\n"
          "DATA\r\n"},
         {"S:250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", "BODY\n"},
         {"body", ""},
         {"S:554 5.7.1 spam\r\n", "DONE |P 554 5.7.1 spam|P 554 5.7.1 spam\nREADY\n"},
     }},
    {"connect_timeout",
     {kTwo},
     {
         {"start", "", 1},
         {"timeout", "DONE host |T connect timeout|T connect timeout\nCLOSE\n"},
     }},
    {"connect_refused",
     {kTwo},
     {
         {"start", ""},
         {"closed", "DONE host |T gone|T gone\nCLOSE\n"},
     }},
    {"greeting_timeout",
     {kTwo},
     {
         {"start", ""},
         {"connect", "", 2},
         {"timeout",
          "DONE host |T timeout waiting for greeting reply|T timeout waiting for greeting "
          "reply\nCLOSE\n"},
     }},
    {"data_end_timeout_not_host_failure",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPipe,
          "> MAIL FROM:<s@a.test> SIZE=500\r\nRCPT TO:<x@b.test>\r\nRCPT TO:<y@b.test>\r\n"
          "DATA\r\n"},
         {"S:250 ok\r\n250 ok\r\n550 no\r\n354 go\r\n", "BODY\n"},
         {"body", "", 7},
         {"timeout", "DONE |T timeout waiting for end of data reply|P 550 no\nCLOSE\n"},
     }},
    {"closed_during_rcpt",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPlain, "> MAIL FROM:<s@a.test>\r\n"},
         {"S:250 ok\r\n", "> RCPT TO:<x@b.test>\r\n"},
         {"S:550 no\r\n", "> RCPT TO:<y@b.test>\r\n"},
         {"closed", "DONE |P 550 no|T connection lost in MAIL/RCPT/DATA: gone\nCLOSE\n"},
     }},
    {"reused_connection_closed_before_reply",
     {kTwo, kTwo},
     {
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPlain, "READY\n", 8},
         {"start", "> MAIL FROM:<s@a.test>\r\n", 3},
         {"closed",
          "DONE noreply |T connection lost in MAIL/RCPT/DATA: gone|T connection lost in "
          "MAIL/RCPT/DATA: gone\nCLOSE\n"},
     }},
    {"service_closing_421_in_rcpt",
     {kTwo},
     {
         {"start", ""},
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPlain, "> MAIL FROM:<s@a.test>\r\n"},
         {"S:250 ok\r\n", "> RCPT TO:<x@b.test>\r\n"},
         {"S:421 4.4.2 shutting down\r\n",
          "DONE |T 421 4.4.2 shutting down|T 421 4.4.2 shutting down\nCLOSE\n"},
     }},
    {"idle_server_closes",
     {},
     {
         {"connect", ""},
         {"S:220 x\r\n", "> EHLO client.test\r\n"},
         {kEhloPlain, "READY\n"},
         {"S:421 idle too long\r\n", "CLOSE\n"},
     }},
};

void PrintTo(const Conversation& c, std::ostream* os) {
  *os << c.name;
}

class ClientSessionTest : public ::testing::TestWithParam<Conversation> {};

TEST_P(ClientSessionTest, Conversation) {
  const Conversation& c = GetParam();
  ClientSession session("client.test", test_timeouts(), c.security, c.protocol);
  std::size_t next_txn = 0;
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    const Step& step = c.steps[i];
    Actions actions;
    if (step.in == "start") {
      ASSERT_LT(next_txn, c.transactions.size());
      actions = session.start(c.transactions[next_txn++]);
    } else if (step.in == "connect") {
      actions = session.on_connected();
    } else if (step.in == "body") {
      actions = session.on_body_sent();
    } else if (step.in == "timeout") {
      actions = session.on_timeout();
    } else if (step.in == "closed") {
      actions = session.on_closed("gone");
    } else if (step.in == "quit") {
      actions = session.quit();
    } else if (step.in == "tls") {
      actions = session.on_tls_started("");
    } else if (step.in == "tlsbad") {
      actions = session.on_tls_started("certificate not trusted");
    } else {
      ASSERT_EQ(step.in.substr(0, 2), "S:");
      ReplyParser parser;
      parser.feed(step.in.substr(2));
      while (auto reply = parser.next()) {
        auto more = session.on_reply(*reply);
        actions.insert(actions.end(), more.begin(), more.end());
      }
      ASSERT_EQ(parser.error(), ReplyParser::Error::None);
    }
    EXPECT_EQ(render(actions), step.out) << "step " << i << ": " << step.in;
    if (step.timeout >= 0) {
      EXPECT_EQ(session.timeout().count(), step.timeout) << "step " << i << ": " << step.in;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Table, ClientSessionTest, ::testing::ValuesIn(kConversations),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ClientSessionCaps, ParsesEhlo) {
  ClientSession s("me", ClientTimeouts{});
  s.on_connected();
  s.on_reply({220, "", {"hi"}});
  s.on_reply({250, "", {"mx", "pipelining", "SIZE 42", "8BITMIME", "STARTTLS"}});
  EXPECT_TRUE(s.capabilities().pipelining);
  EXPECT_TRUE(s.capabilities().eight_bit_mime);
  EXPECT_EQ(s.capabilities().size_limit, 42u);
  EXPECT_TRUE(s.capabilities().starttls);
  EXPECT_TRUE(s.idle());
}

}  // namespace
}  // namespace estafette::smtp
