// milter_server.h: estafette-filterhost's server: one native module (filters::Module) served as a
// milter on a listening unix socket, so that esmtpd runs it through its milter client
// (`filters = module-isolated:...`, docs/filter-authors.md "Running a module isolated").
// Each accepted connection is one milter session (MilterSession) driving one filters::Filter
// from Module::open(): commands are decoded by milter::CommandParser (filters/milter/
// server_protocol.h), each becomes one Filter call, and its Verdict (with the end of message's
// modifications) goes back as milter replies. A Failed verdict (the module answered a status
// outside the ABI, or a PENDING phase ran out of time) has no milter reply: the session is
// logged and closed, and esmtpd applies milter_default_action.
// Loop thread only. The Server owns its sessions; a session owns its socket and its Filter.
// Input is bounded: one packet at most milter::kMaxPacket, and nothing more is read while a
// Filter call is pending (the MTA waits for each reply anyway).
// DIAGNOSTICS: a malformed packet, a command out of order (anything before option negotiation)
// or a read/write error close that session with a log line; the other sessions go on.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <estafette/filter.h>
#include "filters/filter.h"
#include "filters/milter/server_protocol.h"
#include "filters/module.h"
#include "lib/base/fd.h"
#include "lib/event/loop.h"

namespace estafette::filterhost {

// The actions and protocol steps we answer a negotiation with (of those the MTA offers): every
// modification a module can make, header values with their leading space, no unknown command.
// The phases the module has no callback for are asked with no reply (SMFIP_NR_*: see
// no_reply_steps()); the others get the module's answer. No SMFIP_NO*: every phase and its macros
// reach the module's session, as in-process (a later callback may read an earlier phase's macros).
inline constexpr std::uint32_t kActions = SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
                                          SMFIF_DELRCPT | SMFIF_CHGHDRS | SMFIF_QUARANTINE |
                                          SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR;
inline constexpr std::uint32_t kProtocol = SMFIP_HDR_LEADSPC | SMFIP_NOUNKNOWN;

class MilterSession;

// SMFIP_NR_* for each phase `table` has no callback for: its in-process answer is always
// Continue, so esmtpd need not wait for it.
std::uint32_t no_reply_steps(const estafette_filter& table);

class Server final {
 public:
  // listener: a listening, non-blocking unix socket. timeouts bound a PENDING phase, as in
  // esmtpd (milter_command_timeout, milter_content_timeout).
  Server(event::Loop& loop, base::UniqueFd listener, std::shared_ptr<filters::Module> module,
         filters::ModuleTimeouts timeouts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting; `done` runs (on the loop) once the open sessions have ended.
  void drain(std::function<void()> done);
  std::size_t sessions() const { return sessions_.size(); }

 private:
  friend class MilterSession;
  void on_accept();
  void end(std::uint64_t id);  // later on the loop: the session may be in its own callback

  event::Loop& loop_;
  base::UniqueFd listener_;
  std::shared_ptr<filters::Module> module_;
  filters::ModuleTimeouts timeouts_;
  std::uint32_t no_reply_;  // no_reply_steps() of the module
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::unique_ptr<MilterSession>> sessions_;
  std::function<void()> drained_;
  event::CallbackGuard guard_;  // last: posted callbacks die first
};

class MilterSession final {
 public:
  MilterSession(Server& server, std::uint64_t id, base::UniqueFd fd);
  ~MilterSession();
  MilterSession(const MilterSession&) = delete;
  MilterSession& operator=(const MilterSession&) = delete;

 private:
  void on_io(std::uint32_t events);
  void process();  // runs queued commands until one waits for the module
  void handle(milter::Command& command);
  filters::Macros take_macros(char stage);
  void answer(const filters::Verdict& verdict, std::string modifications = {});
  void enter(const char* phase);  // the crash record's context for a call into the module
  void write(std::string bytes);
  void flush();
  void update_events();
  void close(const std::string& why);  // ends the session (logged when why is not empty)

  Server& server_;
  std::uint64_t id_;
  base::UniqueFd fd_;
  std::string session_ = "-";  // esmtpd's session id, when its client sends it
  std::unique_ptr<filters::Filter> filter_;
  milter::CommandParser parser_;
  std::deque<milter::Command> queue_;
  std::map<char, filters::Macros> macros_;  // by the command letter they are for
  milter::Command current_;                 // the pending call's (a body keeps its bytes here)
  bool negotiated_ = false;
  bool leadspc_ = false;
  std::uint32_t no_reply_ = 0;  // the SMFIP_NR_* steps negotiated
  bool pending_ = false;
  bool closed_ = false;
  std::string out_;
  std::uint32_t events_ = 0;
  event::CallbackGuard guard_;  // last
};

}  // namespace estafette::filterhost
