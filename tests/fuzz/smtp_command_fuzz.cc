// smtp_command_fuzz.cc: libFuzzer harness for the server side of SMTP: the input is a client
// byte stream, split into chunks by its first bytes, driven through CommandReader,
// parse_command, ServerSession and DataReader exactly as the I/O layer does. Checks the
// readers' contracts (progress, bounds, wire form ending in CRLF, no bare line endings in an
// accepted message) and the session's reply format; abort()s on any violation.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address -I. tests/fuzz/smtp_command_fuzz.cc
//        lib/smtp/{address,command,dotstuff,esmtp_params,reader,server_session}.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/smtp/command.h"
#include "lib/smtp/dotstuff.h"
#include "lib/smtp/esmtp_params.h"
#include "lib/smtp/reader.h"
#include "lib/smtp/server_session.h"

namespace {

using namespace estafette::smtp;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_actions(const Actions& actions) {
  for (const Action& action : actions) {
    if (action.kind != ActionKind::Reply) continue;
    const std::string& text = action.text;
    check(text.size() >= 6 && text.ends_with("\r\n"));
    check(text[0] >= '2' && text[0] <= '5');
    // No bare CR / LF and nothing unprintable in replies.
    for (std::size_t i = 0; i < text.size(); ++i) {
      char c = text[i];
      if (c == '\r') check(i + 1 < text.size() && text[i + 1] == '\n');
      if (c == '\n') check(i > 0 && text[i - 1] == '\r');
    }
  }
}

struct Harness {
  ServerPolicy policy;
  ServerSession session;
  CommandReader commands{128};
  std::string message;
  DataReader data{[this](std::string_view piece) { message.append(piece); }, 4096, 256};
  bool closed = false;

  Harness() : policy(make_policy()), session(policy, make_client()) { run(session.start()); }

  // With the checks pending and BOFHCHECKDNS on, so that the waits are exercised too.
  static ClientInfo make_client() {
    ClientInfo c;
    c.tls_offered = true;   // STARTTLS and the session's restart are reached too
    c.auth_offered = true;  // AUTH and its SASL exchange too (plaintext allowed below)
    c.auth_scram = true;    // and SCRAM-SHA-256's
    c.ip = "192.0.2.1";
    c.port = 25;
    c.checks_pending = true;
    c.check_sender_domain = true;
    c.filtered = true;
    return c;
  }

  static ServerPolicy make_policy() {
    ServerPolicy p;
    p.hostname = "mx.example";
    p.max_message_size = 4096;
    p.max_recipients = 5;
    p.max_errors = 50;
    p.local_domains = {"example.com"};
    p.relay_domains = {"relay.example"};
    p.auth_allow_plaintext = true;
    p.sender_owned = [](std::string_view login, std::string_view sender) {
      return (login.size() + sender.size()) % 2 == 0;
    };
    // Every other address length asks for a (blocking) lookup, as a local mailbox does.
    p.check_recipient = [](const std::string& address) {
      RecipientVerdict v;
      v.lookup = address.size() % 2 == 0;
      return v;
    };
    return p;
  }

  void run(const Actions& actions) {
    check_actions(actions);
    for (const Action& action : actions) {
      switch (action.kind) {
        case ActionKind::BeginData:
          check(session.in_data());
          data.reset();
          message.clear();
          break;
        case ActionKind::Commit: {
          check(data.status() == DataStatus::Ok);
          check(message.size() == data.size());
          check(message.empty() || message.ends_with("\r\n"));
          for (std::size_t i = 0; i < message.size(); ++i) {
            if (message[i] == '\r') check(i + 1 < message.size() && message[i + 1] == '\n');
            if (message[i] == '\n') check(i > 0 && message[i - 1] == '\r');
          }
          check(!session.envelope().recipients.empty());
          std::string plain;
          unstuff_append(message, plain);
          check(plain.size() <= message.size());
          (void)session.received_header("Q", 0);
          run(session.on_queued("Q"));
          break;
        }
        case ActionKind::Close:
          closed = true;
          break;
        case ActionKind::LookupSender: {
          check(session.waiting() && !action.text.empty());
          // The domain's length picks the answer, so each answer is reached.
          auto answer = static_cast<SenderDomain>(action.text.size() % 4);
          run(session.on_sender_checked(answer));
          break;
        }
        case ActionKind::LookupRecipient: {
          check(session.waiting() && !action.text.empty());
          // The address's length picks the answer: ours, refused, busy, timed out.
          switch (action.text.size() % 4) {
            case 0:
              run(session.on_recipient_checked({true, ""}));
              break;
            case 1:
              run(session.on_recipient_checked({false, "550 5.1.1 <x>: no such mailbox"}));
              break;
            case 2:
              run(session.on_recipient_lookup_failed(RecipientLookupFailure::Busy));
              break;
            default:
              run(session.on_recipient_lookup_failed(RecipientLookupFailure::TimedOut));
              break;
          }
          break;
        }
        case ActionKind::FilterHelo:
        case ActionKind::FilterMail:
        case ActionKind::FilterRcpt:
        case ActionKind::FilterData:
        case ActionKind::FilterMessage: {
          check(session.waiting());
          // The argument's length picks the verdict, so each one is reached in every phase.
          auto kind = static_cast<FilterVerdict::Action>((action.text.size() + message.size()) % 7);
          std::string text = kind == FilterVerdict::Action::ReplyCode ? "550 5.7.1 no" : "";
          run(session.on_filter_verdict({kind, text, {}}));
          break;
        }
        case ActionKind::StartTls:
          // The I/O layer's handshake succeeded: the session starts again (RFC 3207 4.2).
          check(session.waiting() && !session.client().tls);
          run(session.on_tls_started({"TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256}));
          check(!session.waiting() && session.client().tls && session.envelope().helo.empty());
          break;
        case ActionKind::VerifyAuth: {
          // The exchange gave credentials within RFC 4616's limits; the length of the name
          // picks the backend's answer, so that each is reached.
          check(session.waiting() && (action.text == "PLAIN" || action.text == "LOGIN"));
          auto creds = session.take_credentials();
          check(!creds.username.empty() && creds.username.size() <= 255);
          check(!creds.password.empty() && creds.password.size() <= 255);
          auto result = static_cast<AuthResult>(creds.username.size() % 3);
          run(session.on_auth_result(result, creds.username));
          check(!session.waiting());
          break;
        }
        case ActionKind::LookupScram: {
          // A parsed client-first: a user name within bounds. Its length picks the backend's
          // answer (found, unknown, unavailable), with a secret from the name's length.
          check(session.waiting() && !action.text.empty() && action.text.size() <= 255);
          estafette::auth::ScramLookup lookup;
          lookup.kind = static_cast<estafette::auth::ScramLookup::Kind>(action.text.size() % 3);
          lookup.secret.iterations = 4096;
          lookup.secret.salt = action.text;
          run(session.on_scram_secret(lookup, "fuzznonce"));
          check(!session.waiting());
          break;
        }
        case ActionKind::AuthChecked: {
          check(session.waiting() && action.text == "SCRAM-SHA-256");
          const auto& checked = session.checked_auth();
          check(!checked.user.empty());
          run(session.on_auth_result(checked.result, checked.user));
          check(!session.waiting());
          break;
        }
        case ActionKind::Reply:
          break;
      }
    }
  }

  void feed(std::string_view buf) {
    while (!buf.empty() && !closed) {
      if (session.in_data()) {
        std::size_t n = data.feed(buf);
        check(n <= buf.size());
        check(n == buf.size() || data.done());
        buf.remove_prefix(n);
        if (data.done()) run(session.on_data_end(data.status(), data.size()));
      } else {
        Line line;
        auto result = commands.feed(buf, line);
        check(result.consumed > 0 && result.consumed <= buf.size());
        buf.remove_prefix(result.consumed);
        if (!result.line_ready) continue;
        check(line.text.size() <= 126);
        Command cmd = parse_command(line.text);
        check(cmd.error.empty() || cmd.error.starts_with("501 "));
        run(session.on_line(line.text, line.status));
        // A held RCPT: the checks answer now, blocking when the line is long.
        if (session.waiting())
          run(session.on_checks_done({"client.example", "joe", line.text.size() > 30 ? "no" : ""}));
      }
    }
  }
};

// The MAIL/RCPT parameter checks (SIZE, BODY, RET, ENVID, NOTIFY, ORCPT): an error is a
// 501/555 reply; what is accepted is what the queue and a next hop may get: xtext that decodes
// and encodes back, a canonical NOTIFY.
void check_params(const Command& cmd) {
  if (cmd.verb == Verb::Mail) {
    MailParams p = parse_mail_params(cmd.params);
    check(p.error.empty() || p.error.starts_with("501 5.5.4 ") ||
          p.error.starts_with("555 5.5.4 "));
    if (p.error.empty() && !p.envid.empty()) {
      auto decoded = xtext_decode(p.envid);
      check(decoded && p.envid.size() <= kMaxEnvid);
      check(xtext_decode(xtext_encode(*decoded)) == decoded);
    }
  } else {
    RcptParams p = parse_rcpt_params(cmd.params);
    check(p.error.empty() || p.error.starts_with("501 5.5.4 ") ||
          p.error.starts_with("555 5.5.4 "));
    if (p.error.empty() && !p.notify.empty()) {
      auto flags = parse_notify(p.notify);
      check(flags && notify_text(*flags) == p.notify);
    }
    if (p.error.empty() && !p.orcpt.empty()) check(parse_orcpt(p.orcpt).has_value());
    for (char c : p.orcpt) check(c > ' ' && c <= '~');  // fits a queue record and a command
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(bytes), size);
  // The first byte chooses a chunk size (0: everything at once), so splits get exercised.
  std::size_t chunk = input.empty() ? 0 : static_cast<unsigned char>(input[0]) % 17;
  if (!input.empty()) input.remove_prefix(1);
  Harness harness;
  if (chunk == 0) {
    harness.feed(input);
  } else {
    for (std::size_t i = 0; i < input.size() && !harness.closed; i += chunk) {
      harness.feed(input.substr(i, chunk));
    }
  }
  // Stand-alone command parsing of every line, whatever the state.
  std::size_t start = 0;
  while (start < input.size()) {
    std::size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    Command cmd = parse_command(input.substr(start, end - start));
    if (cmd.verb == Verb::Mail || cmd.verb == Verb::Rcpt) {
      check(cmd.ok() || cmd.address.empty());
      check_params(cmd);
    }
    start = end + 1;
  }
  return 0;
}
