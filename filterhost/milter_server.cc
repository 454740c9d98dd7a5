// milter_server.cc: the filter host's milter sessions (see milter_server.h).
#include "filterhost/milter_server.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <utility>

#include "filterhost/crash_record.h"
#include "lib/base/log.h"

namespace estafette::filterhost {

using filters::Macros;
using filters::Modification;
using filters::Verdict;
using milter::Command;
using milter::CommandType;

namespace {
// The macro esmtpd's client adds at connect for an isolated module (filters/milter/client.h).
constexpr const char* kSessionMacro = "{estafette_session}";
}  // namespace

std::uint32_t no_reply_steps(const estafette_filter& t) {
  std::uint32_t steps = 0;
  if (!t.connect) steps |= SMFIP_NR_CONN;
  if (!t.helo) steps |= SMFIP_NR_HELO;
  if (!t.mail) steps |= SMFIP_NR_MAIL;
  if (!t.rcpt) steps |= SMFIP_NR_RCPT;
  if (!t.data) steps |= SMFIP_NR_DATA;
  if (!t.header) steps |= SMFIP_NR_HDR;
  if (!t.eoh) steps |= SMFIP_NR_EOH;
  if (!t.body) steps |= SMFIP_NR_BODY;
  return steps;
}

namespace {
// The SMFIP_NR_* step of a command (0: it always has a reply).
std::uint32_t no_reply_step(CommandType type) {
  switch (type) {
    case CommandType::Connect:
      return SMFIP_NR_CONN;
    case CommandType::Helo:
      return SMFIP_NR_HELO;
    case CommandType::Mail:
      return SMFIP_NR_MAIL;
    case CommandType::Rcpt:
      return SMFIP_NR_RCPT;
    case CommandType::Data:
      return SMFIP_NR_DATA;
    case CommandType::Header:
      return SMFIP_NR_HDR;
    case CommandType::Eoh:
      return SMFIP_NR_EOH;
    case CommandType::Body:
      return SMFIP_NR_BODY;
    default:
      return 0;
  }
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Server

Server::Server(event::Loop& loop, base::UniqueFd listener, std::shared_ptr<filters::Module> module,
               filters::ModuleTimeouts timeouts)
    : loop_(loop),
      listener_(std::move(listener)),
      module_(std::move(module)),
      timeouts_(timeouts),
      no_reply_(no_reply_steps(module_->table())) {
  loop_.add_fd(listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
}

Server::~Server() {
  sessions_.clear();
  if (listener_) loop_.remove_fd(listener_.get());
}

void Server::on_accept() {
  for (;;) {
    base::UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of fds (or another error that would repeat at once): the listener is level-
      // triggered, so it rests for a moment instead of spinning; esmtpd's connect waits.
      base::log("filterhost")
          .warning(std::string("accept: ") + base::errno_text(errno) + "; pausing 100ms");
      loop_.remove_fd(listener_.get());
      loop_.add_timer(std::chrono::milliseconds(100), guard_.wrap([this] {
        if (listener_)
          loop_.add_fd(listener_.get(), EPOLLIN, [this](std::uint32_t) { on_accept(); });
      }));
      return;
    }
    std::uint64_t id = next_id_++;
    sessions_.emplace(id, std::make_unique<MilterSession>(*this, id, std::move(fd)));
  }
}

void Server::end(std::uint64_t id) {
  loop_.post(guard_.wrap([this, id] {
    sessions_.erase(id);
    if (drained_ && sessions_.empty()) std::exchange(drained_, nullptr)();
  }));
}

void Server::drain(std::function<void()> done) {
  if (listener_) {
    loop_.remove_fd(listener_.get());
    listener_.reset();
  }
  drained_ = std::move(done);
  if (sessions_.empty())
    loop_.post(guard_.wrap([this] {
      if (drained_) std::exchange(drained_, nullptr)();
    }));
}

// ---------------------------------------------------------------------------------------------
// MilterSession

MilterSession::MilterSession(Server& server, std::uint64_t id, base::UniqueFd fd)
    : server_(server), id_(id), fd_(std::move(fd)) {
  events_ = EPOLLIN;
  server_.loop_.add_fd(fd_.get(), events_, [this](std::uint32_t events) { on_io(events); });
}

MilterSession::~MilterSession() {
  if (fd_) server_.loop_.remove_fd(fd_.get());
  if (filter_) {
    enter("quit");
    filter_.reset();  // the module's close()
    clear_context();
  }
}

void MilterSession::enter(const char* phase) {
  set_context("module " + server_.module_->name() + ", phase " + phase + ", session " + session_);
}

void MilterSession::on_io(std::uint32_t events) {
  if (closed_) return;
  if (events & EPOLLOUT) flush();
  if (closed_) return;
  if (events & EPOLLERR) {
    close("socket error");
    return;
  }
  // esmtpd closed while a call is pending (it gave up on the reply): nothing to answer.
  if ((events & EPOLLHUP) && (pending_ || !queue_.empty())) {
    close("");
    return;
  }
  // Nothing more is read while a call is pending (level-triggered: it waits in the socket).
  if (!(events & (EPOLLIN | EPOLLHUP)) || pending_ || !queue_.empty()) return;
  char buf[65536];
  ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n <= 0) {
    // esmtpd went away (it ended the session, or gave up on a reply): not an error here.
    close(n == 0 || errno == ECONNRESET ? "" : std::string("read: ") + base::errno_text(errno));
    return;
  }
  std::vector<Command> commands;
  bool ok = parser_.feed(std::string_view(buf, static_cast<std::size_t>(n)), commands);
  for (Command& c : commands) queue_.push_back(std::move(c));
  if (!ok) {
    close("malformed milter packet: " + parser_.error());
    return;
  }
  process();
}

void MilterSession::process() {
  while (!closed_ && !pending_ && !queue_.empty()) {
    Command command = std::move(queue_.front());
    queue_.pop_front();
    handle(command);
  }
  if (!closed_) update_events();
}

Macros MilterSession::take_macros(char stage) {
  auto it = macros_.find(stage);
  if (it == macros_.end()) return {};
  Macros out = std::move(it->second);
  macros_.erase(it);
  return out;
}

void MilterSession::handle(Command& command) {
  if (command.type != CommandType::OptNeg && !negotiated_) {
    close(std::string("'") + milter::to_string(command.type) + "' before option negotiation");
    return;
  }
  // Each Filter call answers later on the loop, through guard_ (never after the session ends).
  auto done = guard_.wrap([this](const Verdict& v) { answer(v); });
  switch (command.type) {
    case CommandType::OptNeg:
      if (negotiated_) {
        close("option negotiation twice");
        return;
      }
      if (command.version < 2) {
        close("milter protocol version " + std::to_string(command.version));
        return;
      }
      negotiated_ = true;
      leadspc_ = (command.protocol & SMFIP_HDR_LEADSPC) != 0;
      filter_ =
          server_.module_->open(server_.loop_, filters::DefaultAction::Tempfail, server_.timeouts_);
      no_reply_ = command.protocol & server_.no_reply_;
      write(milter::encode_optneg_reply(milter::kProtocolVersion, command.actions & kActions,
                                        command.protocol & (kProtocol | server_.no_reply_)));
      return;
    case CommandType::Macro:
      macros_[command.macro_stage] = std::move(command.macros);
      return;
    case CommandType::Unknown:
      write(milter::encode_verdict({}));  // we asked for none; Continue
      return;
    case CommandType::Abort:
      enter("abort");
      filter_->abort();
      clear_context();
      return;
    case CommandType::Quit:
      close("");
      return;
    case CommandType::QuitNc:
      // The same connection carries a new SMTP session: a fresh one of the module.
      enter("quit");
      filter_->quit();
      filter_ =
          server_.module_->open(server_.loop_, filters::DefaultAction::Tempfail, server_.timeouts_);
      clear_context();
      session_ = "-";
      macros_.clear();
      return;
    default:
      break;
  }
  // A call into the module: at most one pending.
  pending_ = true;
  current_ = std::move(command);
  Command& c = current_;
  switch (c.type) {
    case CommandType::Connect: {
      Macros macros = take_macros(SMFIC_CONNECT);
      // The session id is ours, not the module's: it sees the macros it would see in-process.
      for (auto it = macros.begin(); it != macros.end();) {
        if (it->first != kSessionMacro) {
          ++it;
          continue;
        }
        if (!it->second.empty() && it->second.size() <= 64) session_ = it->second;
        it = macros.erase(it);
      }
      filter_->set_session(session_);
      enter("connect");
      filter_->connect(macros, c.hostname, c.family, c.port, c.address, done);
      break;
    }
    case CommandType::Helo:
      enter("helo");
      filter_->helo(take_macros(SMFIC_HELO), c.name, done);
      break;
    case CommandType::Mail:
      enter("mail");
      filter_->mail(take_macros(SMFIC_MAIL), c.address, c.args, done);
      break;
    case CommandType::Rcpt:
      enter("rcpt");
      filter_->rcpt(take_macros(SMFIC_RCPT), c.address, c.args, done);
      break;
    case CommandType::Data:
      enter("data");
      filter_->data(take_macros(SMFIC_DATA), done);
      break;
    case CommandType::Header:
      enter("header");
      // Without SMFIP_HDR_LEADSPC the MTA took the space after the colon off: the module sees
      // values as written, as in-process.
      if (!leadspc_) c.value.insert(0, " ");
      filter_->header(c.name, c.value, done);
      break;
    case CommandType::Eoh:
      enter("eoh");
      filter_->eoh(take_macros(SMFIC_EOH), done);
      break;
    case CommandType::Body:
      enter("body");
      filter_->body(c.body, done);  // current_ keeps the bytes until `done`
      break;
    case CommandType::Eob:
      if (!c.body.empty()) {
        // Sendmail's last chunk inside the EOB: a body call first, then the end of message.
        Command eob;
        eob.type = CommandType::Eob;
        queue_.push_front(std::move(eob));
        c.type = CommandType::Body;
        enter("body");
        filter_->body(c.body, done);
        break;
      }
      enter("eom");
      filter_->eom(take_macros(SMFIC_BODYEOB),
                   guard_.wrap([this](const Verdict& v, std::vector<Modification> mods) {
                     const bool apply = v.action == Verdict::Action::Continue ||
                                        v.action == Verdict::Action::Accept;
                     answer(v, apply ? milter::encode_modifications(mods, leadspc_) : "");
                   }));
      break;
    default:
      break;
  }
  clear_context();
}

void MilterSession::answer(const Verdict& verdict, std::string modifications) {
  const bool no_reply = (no_reply_step(current_.type) & no_reply_) != 0;
  pending_ = false;
  current_ = Command{};
  if (verdict.action == Verdict::Action::Failed) {
    // No milter reply says "failed": closing makes esmtpd apply milter_default_action.
    close(verdict.text.empty() ? "the module failed" : verdict.text);
    return;
  }
  if (no_reply) {
    // A phase without a callback answers Continue; esmtpd is not waiting for it.
    if (verdict.action != Verdict::Action::Continue) {
      close(std::string("the module answered ") + filters::to_string(verdict.action) +
            " to a phase it has no callback for");
      return;
    }
  } else {
    write(std::move(modifications) + milter::encode_verdict(verdict));
  }
  process();
}

void MilterSession::write(std::string bytes) {
  out_ += bytes;
  flush();
}

void MilterSession::flush() {
  while (!out_.empty()) {
    ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) {
      close(errno == EPIPE || errno == ECONNRESET
                ? ""
                : std::string("write: ") + base::errno_text(errno));
      return;
    }
    out_.erase(0, static_cast<std::size_t>(n));
  }
  update_events();
}

void MilterSession::update_events() {
  if (closed_) return;
  std::uint32_t want =
      (pending_ || !queue_.empty() ? 0u : EPOLLIN) | (out_.empty() ? 0u : EPOLLOUT);
  if (want != events_) {
    events_ = want;
    server_.loop_.modify_fd(fd_.get(), want);
  }
}

void MilterSession::close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  if (!why.empty())
    base::log("filterhost")
        .warning("session " + session_ + ": " + why +
                 " (connection closed: esmtpd applies "
                 "milter_default_action)");
  server_.loop_.remove_fd(fd_.get());
  fd_.reset();
  if (filter_) {
    enter("quit");
    filter_->quit();
    clear_context();
  }
  server_.end(id_);
}

}  // namespace estafette::filterhost
