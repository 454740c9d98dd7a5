// client.h: a Postfix policy service (SMTPD_POLICY_README: postgrey, policyd-spf, ...) as one
// filters::Filter of esmtpd's chain (`filters = policy:inet:10023@127.0.0.1`). It remembers what
// the session's earlier stages told it (client, HELO, sender, SIZE, AUTH, TLS) and asks the
// service at its stage (Postfix's smtpd_recipient_restrictions, smtpd_data_restrictions,
// smtpd_end_of_data_restrictions): at each RCPT (`policy:`), where the answer's action becomes
// that recipient's verdict (protocol.h), or once per message at DATA (`policy-data:`) or at its
// end (`policy-eom:`, with the message's size), where it becomes the message's. PREPEND and HOLD
// are kept and handed back at end of message as modifications (a header inserted first, a
// quarantine). Other stages answer Continue without asking.
// Loop thread only. One connection per SMTP session, opened at the first query and kept for the
// next ones (a service answers one request at a time, in order); the Chain owns the Client.
// Every callback runs later on the loop, never inside the call; destroying the Client cancels.
// DIAGNOSTICS: a refused or closed connection, no answer within the timeout (policy_timeout) or
// a malformed or oversize answer is logged (logger "filters", warning, naming the service and
// the reason) and answered with policy_default_action (Postfix's 451 4.3.5); the connection is
// closed and the next query opens a new one. The Client never answers Failed.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filters/filter.h"
#include "filters/milter/client.h"  // Spec, parse_spec, open_socket
#include "filters/policy/protocol.h"
#include "filters/types.h"
#include "lib/base/fd.h"
#include "lib/event/loop.h"

namespace estafette::policy {

// Postfix's smtpd_policy_service_default_action.
inline constexpr std::string_view kDefaultAction = "451 4.3.5 Server configuration problem";

// Where the service is asked (protocol_state): RCPT, DATA or END-OF-MESSAGE.
enum class Stage { Rcpt, Data, EndOfMessage };

struct Options {
  Stage stage = Stage::Rcpt;
  milter::Spec spec;  // inet:PORT@ADDR, inet6:PORT@ADDR, unix:/path
  std::string name;   // for logs: "policy:inet:10023@127.0.0.1", "policy-eom:unix:/run/p.sock"
  std::chrono::milliseconds timeout{100000};        // policy_timeout: connect, send and answer
  Decision default_action;                          // policy_default_action, parsed
  std::string default_action_text{kDefaultAction};  // as written, for the log
};

class Client final : public filters::Filter {
 public:
  Client(event::Loop& loop, Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void connect(const filters::Macros& macros, std::string_view hostname, filters::Family family,
               std::uint16_t port, std::string_view address, Callback done) override;
  void helo(const filters::Macros& macros, std::string_view name, Callback done) override;
  void mail(const filters::Macros& macros, std::string_view address,
            const std::vector<std::string>& args, Callback done) override;
  // At Stage::Rcpt, the query: request=smtpd_access_policy, protocol_state=RCPT and the
  // session's attributes; at Data, protocol_state=DATA with {nrcpts} as recipient_count and
  // {rcpt_addr} (one recipient) as recipient.
  void rcpt(const filters::Macros& macros, std::string_view address,
            const std::vector<std::string>& args, Callback done) override;
  void data(const filters::Macros& macros, Callback done) override;
  void header(std::string_view name, std::string_view value, Callback done) override;
  void eoh(const filters::Macros& macros, Callback done) override;
  void body(std::string_view bytes, Callback done) override;
  // The PREPENDs and HOLDs of this message, in the order they came; at Stage::EndOfMessage
  // after the query (protocol_state=END-OF-MESSAGE, size={msg_size}), whose verdict it answers.
  void eom(const filters::Macros& macros, EomCallback done) override;
  void abort() override;
  void quit() override;

  const std::string& name() const override { return options_.name; }
  // Never used by the Chain (this Client does not answer Failed); its own default applies.
  filters::DefaultAction default_action() const override {
    return filters::DefaultAction::Tempfail;
  }

  // The attributes of the query for `recipient` (for tests and the log); at DATA and
  // END-OF-MESSAGE, the recipient if only one was accepted, else "".
  Attributes attributes(std::string_view recipient) const;

 private:
  void answer_later(filters::Verdict verdict);
  void send_query(std::string request);
  void on_io(std::uint32_t events);
  void on_answer(const std::string& action);
  void fail(const std::string& reason);
  void close();
  void finish(filters::Verdict verdict);
  void apply(const Decision& decision);
  bool flush();
  void start_message();
  void note_message(const filters::Macros& macros);
  const char* protocol_state() const;

  event::Loop& loop_;
  Options options_;

  // What the session told us.
  std::string client_address_, client_name_, reverse_client_name_, client_port_;
  std::string server_address_, server_port_, protocol_name_ = "SMTP", helo_name_;
  std::string sender_, size_ = "0", sasl_method_, sasl_username_;
  std::string encryption_protocol_, encryption_cipher_, encryption_keysize_;
  std::string ccert_subject_, ccert_issuer_;
  std::string queue_id_, instance_;
  std::string recipient_count_ = "0";  // Postfix: 0 at RCPT; the accepted ones at DATA and EOM
  unsigned messages_ = 0;
  std::string recipient_;                    // of the pending query, for the log
  std::vector<filters::Modification> mods_;  // of this message

  // The connection and the pending query.
  base::UniqueFd fd_;
  bool connecting_ = false;
  bool watching_ = false;
  std::string out_;
  ReplyReader reader_;
  Callback done_;
  EomCallback eom_done_;  // Stage::EndOfMessage's pending query
  event::TimerId timer_ = 0;
  event::CallbackGuard guard_;  // last: posted callbacks die first
};

}  // namespace estafette::policy
