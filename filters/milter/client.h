// client.h: the MTA side of one milter session (Sendmail milter protocol v6) on the process's
// event::Loop: milter::Client, one of the two implementations of filters::Filter (the other is
// the in-process modules, filters/module.h). It speaks the filter interface's types
// (filters/types.h: Verdict, Modification, DefaultAction, Macros, Family); filters::Chain runs it
// with any other filters.
// Loop thread only. Each Client owns its socket; the SMTP session's Chain owns its Client.
// The caller makes one call at a time (connect, helo, mail, rcpt, data, header, eoh, body, eom)
// and waits for its callback before the next; every callback runs later on the loop, never
// inside the call that started it. Destroying a Client cancels: no callback runs afterwards (as
// with dns::Request). A callback may destroy its Client.
// DIAGNOSTICS: a refused or timed-out connect, a timeout waiting for a reply (PROGRESS restarts
// it), a malformed or unexpected reply, a reply asking for an action or protocol step we did
// not offer, or the milter closing the connection make the pending call (and every later one)
// answer Verdict::Failed with a reason; the caller applies milter_default_action.
// Not implemented: SMFIC_UNKNOWN (we offer SMFIP_NOUNKNOWN), SMFIP_RCPT_REJ (not offered),
// SMFIR_CONN_FAIL and SMFIR_SHUTDOWN (decoded as an unknown reply: Failed).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/filter.h"
#include "filters/milter/protocol.h"
#include "filters/types.h"
#include "lib/base/fd.h"
#include "lib/event/loop.h"
#include "lib/metrics/shm_file.h"

namespace estafette::milter {

// Where a milter listens: "inet:PORT@ADDRESS", "inet6:PORT@ADDRESS", "unix:/path" ("local:" too).
// The address must be numeric (no resolver here; milters run on this host or a known one).
struct Spec {
  enum class Kind { Inet, Inet6, Unix };
  Kind kind = Kind::Inet;
  std::string host;  // numeric address (Inet, Inet6)
  std::uint16_t port = 0;
  std::string path;  // Unix
};
bool parse_spec(std::string_view text, Spec& out, std::string* error);
// Starts a non-blocking connect to spec (the socket, close-on-exec, into `fd`): 0 when connected
// or in progress (wait for EPOLLOUT, then read SO_ERROR), else the errno that stopped it (`fd`
// empty: the socket could not be made). Shared with the policy client (filters/policy/).
int open_socket(const Spec& spec, base::UniqueFd& fd);

// Every action we can apply, and every protocol step we can skip or not wait a reply for.
inline constexpr std::uint32_t kOfferedActions =
    SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGHDRS |
    SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST;
inline constexpr std::uint32_t kOfferedProtocol =
    SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS |
    SMFIP_NOEOH | SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP | SMFIP_NR_CONN |
    SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH |
    SMFIP_NR_BODY | SMFIP_HDR_LEADSPC;

struct Options {
  Spec spec;
  std::string name;                                   // for failure reasons ("milter <name>: ...")
  std::chrono::milliseconds connect_timeout{30000};   // milter_connect_timeout
  std::chrono::milliseconds command_timeout{30000};   // milter_command_timeout
  std::chrono::milliseconds content_timeout{300000};  // milter_content_timeout: per content call
  filters::DefaultAction default_action = filters::DefaultAction::Tempfail;  // used by Chain
  // Bounds on what one end of message may bring, checked as the replies arrive (the Chain checks
  // the rest): more modifications, or a larger replacement body, fail the session.
  std::size_t max_modifications = 1000;
  std::size_t max_body = 10 << 20;  // max_message_size
  // Each command with a reply is timed there, from sending to its reply (or failure):
  // metrics::Metric::MilterSeconds. Null: not timed. Outlives the Client.
  metrics::Writer* metrics = nullptr;
  // Adds the SMTP session's id (set_session) to the connect macros as {estafette_session}: for
  // estafette-filterhost (a `module-isolated:` entry), so its log lines and crash records name
  // the session. Off for other milters.
  bool send_session = false;
};

class Client final : public filters::Filter {
 public:
  using Verdict = filters::Verdict;
  using Modification = filters::Modification;
  using Macros = filters::Macros;
  using Family = filters::Family;

  Client(event::Loop& loop, Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Opens the connection, negotiates options (connect_timeout, then command_timeout), then
  // sends SMFIC_CONNECT unless the milter asked for SMFIP_NOCONNECT. Accept/Reject/Tempfail
  // here end filtering for the whole SMTP session (later calls answer Continue).
  void connect(const Macros& macros, std::string_view hostname, Family family, std::uint16_t port,
               std::string_view address, Callback done) override;
  void helo(const Macros& macros, std::string_view name, Callback done) override;
  // A message starts at mail(); a non-continue verdict from mail() to eom() (except from rcpt(),
  // which concerns that recipient only) ends filtering for this message.
  void mail(const Macros& macros, std::string_view address, const std::vector<std::string>& args,
            Callback done) override;
  void rcpt(const Macros& macros, std::string_view address, const std::vector<std::string>& args,
            Callback done) override;
  void data(const Macros& macros, Callback done) override;
  // value: the text after the colon as in the message (leading space is stripped unless the
  // milter asked for SMFIP_HDR_LEADSPC).
  void header(std::string_view name, std::string_view value, Callback done) override;
  void eoh(const Macros& macros, Callback done) override;
  // Body bytes in CRLF form, not dot-stuffed; any length (sent in kChunkSize chunks). After the
  // milter answers SKIP, further body is not sent.
  void body(std::string_view bytes, Callback done) override;
  void eom(const Macros& macros, EomCallback done) override;
  // Ends the message (RSET, or a rejected message). Without a pending call only; while a call
  // is pending the milter's answer is still on its way, so the session is closed instead.
  void abort() override;
  // Sends QUIT (best effort) and closes. No callback.
  void quit() override;

  bool failed() const { return state_ == State::Failed; }
  const std::string& failure() const { return failure_; }
  std::uint32_t negotiated_actions() const { return actions_; }
  std::uint32_t negotiated_protocol() const { return protocol_; }
  const Options& options() const { return options_; }
  const std::string& name() const override { return options_.name; }
  filters::DefaultAction default_action() const override { return options_.default_action; }
  void set_session(std::string_view id) override { session_ = id; }

 private:
  enum class State { Idle, Connecting, Negotiating, Ready, Failed, Closed };
  enum class Stage { None, OptNeg, Connect, Helo, Mail, Rcpt, Data, Header, Eoh, Body, Eom };
  std::string timeout_reason() const;  // the phase and the limit that ran out

  // Sends macros (filtered by the milter's symbol list) and packet for stage; answers Continue
  // at once when `skip`, after sending when `no_reply`.
  void send_stage(Stage stage, int macro_stage, char macro_command, const Macros* macros,
                  std::string packet, bool skip, bool no_reply, Callback done);
  void start_connect(std::string connect_packet, Macros macros, Callback done);
  void on_connected();
  void on_io(std::uint32_t events);
  void on_reply(Reply& reply);
  void on_optneg(const Reply& reply);
  void finish(Verdict verdict);
  void fail(std::string reason);
  void queue_write(std::string bytes);
  bool flush();
  void arm_timer(std::chrono::milliseconds timeout);
  void send_next_body_chunk();
  void post(std::function<void()> fn);
  std::chrono::milliseconds timeout_for(Stage stage) const;
  bool has(std::uint32_t protocol_flag) const { return (protocol_ & protocol_flag) != 0; }
  Verdict make(Verdict::Action action, std::string text = {}) const;
  void end_message();

  event::Loop& loop_;
  Options options_;
  State state_ = State::Idle;
  std::string failure_;
  std::string session_;  // the SMTP session's id, sent only with options_.send_session
  base::UniqueFd fd_;
  bool watching_ = false;
  bool want_write_ = false;
  event::TimerId timer_ = 0;
  std::chrono::milliseconds current_timeout_{0};
  std::string out_;
  ReplyParser parser_;

  std::uint32_t actions_ = 0;   // negotiated
  std::uint32_t protocol_ = 0;  // negotiated
  std::map<int, std::string> symlists_;

  Stage pending_ = Stage::None;
  std::chrono::steady_clock::time_point sent_{};  // of the pending command (send_stage)
  Callback done_;
  EomCallback eom_done_;
  std::string after_negotiation_;  // SMFIC_CONNECT waiting for OPTNEG
  Macros connect_macros_;          // its macros, filtered once the symbol lists are known

  bool session_done_ = false;  // a connect-stage verdict ended filtering for the session
  bool in_message_ = false;
  bool message_done_ = false;  // a message-stage verdict ended filtering for this message
  bool body_skipped_ = false;
  std::string_view body_rest_;  // the caller's body still to send after this chunk's reply
  std::vector<Modification> mods_;
  event::CallbackGuard guard_;  // last: posted callbacks die first
};

// One Client per entry, in order: the filters of a filters::Chain of milters only.
std::vector<std::unique_ptr<filters::Filter>> make_clients(event::Loop& loop,
                                                           std::vector<Options> milters);

}  // namespace estafette::milter
