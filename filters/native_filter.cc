// native_filter.cc: the NativeFilter adapter and the host function table of the C ABI.
#include "filters/native_filter.h"

#include <algorithm>

#include <sys/epoll.h>

#include <chrono>
#include <exception>
#include <utility>

#include "filters/callback_scope.h"
#include "lib/base/log.h"

struct estafette_ctx {
  estafette::filters::NativeFilter* filter;
};

namespace estafette::filters {

namespace {

int family_code(Family family) {
  switch (family) {
    case Family::Inet:
      return ESTAFETTE_FAMILY_INET;
    case Family::Inet6:
      return ESTAFETTE_FAMILY_INET6;
    case Family::Unix:
      return ESTAFETTE_FAMILY_UNIX;
    default:
      return ESTAFETTE_FAMILY_UNKNOWN;
  }
}

bool valid_reply_code(const char* code, char first) {
  return code != nullptr && code[0] == first && code[1] >= '0' && code[1] <= '9' &&
         code[2] >= '0' && code[2] <= '9' && code[3] == '\0';
}

// "550", "5.7.1", "a\r\nb" -> "550-5.7.1 a\r\n550 5.7.1 b" (as libmilter's smfi_setmlreply).
std::string compose_reply(const char* code, const char* xcode, std::string_view text) {
  std::vector<std::string_view> lines;
  for (;;) {
    std::size_t crlf = text.find("\r\n");
    lines.push_back(text.substr(0, crlf));
    if (crlf == std::string_view::npos) break;
    text.remove_prefix(crlf + 2);
  }
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    bool last = i + 1 == lines.size();
    out += code;
    out += last ? ' ' : '-';
    if (xcode && *xcode) {
      out += xcode;
      if (!lines[i].empty()) out += ' ';
    }
    out += lines[i];
    if (!last) out += "\r\n";
  }
  return out;
}

}  // namespace

// The C functions of the host table. Each checks its ctx and arguments and never lets an
// exception out (the module is C).
struct HostFunctions {
  static NativeFilter* get(estafette_ctx* ctx) { return ctx ? ctx->filter : nullptr; }

  // In a phase (called from the module's callback or while the phase is PENDING).
  static NativeFilter* in_phase(estafette_ctx* ctx) {
    NativeFilter* f = get(ctx);
    return f && !f->closed_ && f->pending_ != NativeFilter::Stage::None ? f : nullptr;
  }
  static NativeFilter* at_eom(estafette_ctx* ctx) {
    NativeFilter* f = in_phase(ctx);
    return f && f->pending_ == NativeFilter::Stage::Eom ? f : nullptr;
  }

  template <typename Fn>
  static int guarded(Fn fn) {
    try {
      return fn();
    } catch (const std::exception&) {
      return ESTAFETTE_ERROR;
    }
  }

  static const char* getsymval(estafette_ctx* ctx, const char* name) {
    NativeFilter* f = get(ctx);
    if (!f || !name) return nullptr;
    if (const char* v = f->macros_.get(name)) return v;
    // One-letter macros answer with and without braces ("i", "{i}"), as in libmilter.
    std::string_view n = name;
    if (n.size() == 1) {
      const char braced[] = {'{', n[0], '}'};
      return f->macros_.get(std::string_view(braced, 3));
    }
    if (n.size() == 3 && n.front() == '{' && n.back() == '}') return f->macros_.get(n.substr(1, 1));
    return nullptr;
  }
  static int foreach_symval(estafette_ctx* ctx, void (*fn)(void*, const char*, const char*),
                            void* arg) {
    NativeFilter* f = get(ctx);
    if (!f || !fn) return ESTAFETTE_ERROR;
    f->macros_.for_each_phase([&](const char* name, const char* value) { fn(arg, name, value); });
    return ESTAFETTE_OK;
  }
  static void* getpriv(estafette_ctx* ctx) {
    NativeFilter* f = get(ctx);
    return f ? f->priv_ : nullptr;
  }
  static int setpriv(estafette_ctx* ctx, void* priv) {
    NativeFilter* f = get(ctx);
    if (!f) return ESTAFETTE_ERROR;
    f->priv_ = priv;
    return ESTAFETTE_OK;
  }
  static int setreply(estafette_ctx* ctx, const char* code, const char* xcode, const char* text) {
    return guarded([&] {
      NativeFilter* f = in_phase(ctx);
      if (!f || !(valid_reply_code(code, '4') || valid_reply_code(code, '5')))
        return ESTAFETTE_ERROR;
      std::string_view t = text ? text : "";
      if (t.size() >= 2 && t.substr(t.size() - 2) == "\r\n") return ESTAFETTE_ERROR;
      f->reply_ = compose_reply(code, xcode, t);
      return ESTAFETTE_OK;
    });
  }
  static int add_mod(estafette_ctx* ctx, Modification m) {
    return guarded([&] {
      NativeFilter* f = at_eom(ctx);
      if (!f) return ESTAFETTE_ERROR;
      f->mods_.push_back(std::move(m));
      return ESTAFETTE_OK;
    });
  }
  static Modification mod(Modification::Kind kind) {
    Modification m;
    m.kind = kind;
    return m;
  }
  static int addheader(estafette_ctx* ctx, const char* name, const char* value) {
    if (!name || !*name || !value) return ESTAFETTE_ERROR;
    Modification m = mod(Modification::Kind::AddHeader);
    m.name = name;
    m.value = value;
    return add_mod(ctx, std::move(m));
  }
  static int chgheader(estafette_ctx* ctx, const char* name, int index, const char* value) {
    if (!name || !*name || index < 0) return ESTAFETTE_ERROR;  // 0 is taken as 1, as by milters
    Modification m = mod(Modification::Kind::ChangeHeader);
    m.name = name;
    m.value = value ? value : "";
    m.index = static_cast<std::uint32_t>(index);
    return add_mod(ctx, std::move(m));
  }
  static int insheader(estafette_ctx* ctx, int index, const char* name, const char* value) {
    if (!name || !*name || !value || index < 0) return ESTAFETTE_ERROR;
    Modification m = mod(Modification::Kind::InsertHeader);
    m.name = name;
    m.value = value;
    m.index = static_cast<std::uint32_t>(index);
    return add_mod(ctx, std::move(m));
  }
  static int addrcpt(estafette_ctx* ctx, const char* rcpt, const char* args) {
    if (!rcpt || !*rcpt) return ESTAFETTE_ERROR;
    Modification m = mod(Modification::Kind::AddRcpt);
    m.address = rcpt;
    m.args = args ? args : "";
    return add_mod(ctx, std::move(m));
  }
  static int delrcpt(estafette_ctx* ctx, const char* rcpt) {
    if (!rcpt || !*rcpt) return ESTAFETTE_ERROR;
    Modification m = mod(Modification::Kind::DelRcpt);
    m.address = rcpt;
    return add_mod(ctx, std::move(m));
  }
  static int replacebody(estafette_ctx* ctx, const unsigned char* body, std::size_t len) {
    if (!body && len > 0) return ESTAFETTE_ERROR;
    return guarded([&] {
      NativeFilter* f = at_eom(ctx);
      if (!f) return ESTAFETTE_ERROR;
      // Consecutive calls make one replacement, as consecutive SMFIR_REPLBODY chunks do.
      if (f->mods_.empty() || f->mods_.back().kind != Modification::Kind::ReplaceBody)
        f->mods_.push_back(mod(Modification::Kind::ReplaceBody));
      f->mods_.back().body.append(reinterpret_cast<const char*>(body), len);
      return ESTAFETTE_OK;
    });
  }
  static int quarantine(estafette_ctx* ctx, const char* reason) {
    if (!reason || !*reason) return ESTAFETTE_ERROR;
    Modification m = mod(Modification::Kind::Quarantine);
    m.text = reason;
    return add_mod(ctx, std::move(m));
  }
  static int chgfrom(estafette_ctx* ctx, const char* from, const char* args) {
    if (!from || !*from) return ESTAFETTE_ERROR;
    Modification m = mod(Modification::Kind::ChangeFrom);
    m.address = from;
    m.args = args ? args : "";
    return add_mod(ctx, std::move(m));
  }
  // Only a phase whose callback returned PENDING can be resumed: inside the callback nothing is
  // pending yet (its return value answers), so a resume() there would be silently lost.
  static int resume(estafette_ctx* ctx, int status) {
    return guarded([&] {
      NativeFilter* f = get(ctx);
      if (!f || status == ESTAFETTE_PENDING) return ESTAFETTE_ERROR;
      if (f->closed_ || f->pending_ == NativeFilter::Stage::None || f->in_call_) {
        log(ctx, 3,
            ("resume(" + std::to_string(status) + ") with nothing pending" +
             (f->in_call_ ? " (inside the callback: its return value answers)" : "") +
             ": ignored, returns -1")
                .c_str());
        return ESTAFETTE_ERROR;
      }
      f->complete(status);
      return ESTAFETTE_OK;
    });
  }
  static int foreach_rcpt(estafette_ctx* ctx, void (*fn)(void*, const char*), void* arg) {
    NativeFilter* f = at_eom(ctx);
    if (!f || !fn || !f->envelope_) return ESTAFETTE_ERROR;
    for (const std::string& rcpt : f->envelope_->first) fn(arg, rcpt.c_str());
    return ESTAFETTE_OK;
  }
  static int message_size(estafette_ctx* ctx, std::uint64_t* size) {
    NativeFilter* f = at_eom(ctx);
    if (!f || !size || !f->envelope_) return ESTAFETTE_ERROR;
    *size = f->envelope_->second;
    return ESTAFETTE_OK;
  }
  static int watch_fd(estafette_ctx* ctx, int fd, int events, estafette_fd_cb cb, void* arg) {
    return guarded([&] {
      NativeFilter* f = get(ctx);
      if (!f || f->closed_ || fd < 0 || !cb || f->fds_.count(fd)) return ESTAFETTE_ERROR;
      std::uint32_t ev = ((events & ESTAFETTE_FD_READ) ? EPOLLIN : 0u) |
                         ((events & ESTAFETTE_FD_WRITE) ? EPOLLOUT : 0u);
      f->loop_.add_fd(fd, ev, [f, fd](std::uint32_t got) {
        auto it = f->fds_.find(fd);
        if (it == f->fds_.end()) return;
        int e = ((got & EPOLLIN) ? ESTAFETTE_FD_READ : 0) |
                ((got & EPOLLOUT) ? ESTAFETTE_FD_WRITE : 0) |
                ((got & (EPOLLERR | EPOLLHUP)) ? ESTAFETTE_FD_ERROR : 0);
        auto [cb, arg] = it->second;
        CallbackScope scope = f->scope("fd-callback");
        cb(f->ctx_.get(), fd, e, arg);
      });
      f->fds_[fd] = {cb, arg};
      return ESTAFETTE_OK;
    });
  }
  static int unwatch_fd(estafette_ctx* ctx, int fd) {
    return guarded([&] {
      NativeFilter* f = get(ctx);
      if (!f || f->fds_.erase(fd) == 0) return ESTAFETTE_ERROR;
      f->loop_.remove_fd(fd);
      return ESTAFETTE_OK;
    });
  }
  static estafette_timer_id add_timer(estafette_ctx* ctx, unsigned ms, estafette_timer_cb cb,
                                      void* arg) {
    try {
      NativeFilter* f = get(ctx);
      if (!f || f->closed_ || !cb) return 0;
      estafette_timer_id id = f->next_timer_++;
      f->timers_[id] = f->loop_.add_timer(std::chrono::milliseconds(ms), [f, id, cb, arg] {
        f->timers_.erase(id);
        CallbackScope scope = f->scope("timer");
        cb(f->ctx_.get(), arg);
      });
      return id;
    } catch (const std::exception&) {
      return 0;
    }
  }
  static int cancel_timer(estafette_ctx* ctx, estafette_timer_id id) {
    NativeFilter* f = get(ctx);
    if (!f) return ESTAFETTE_ERROR;
    auto it = f->timers_.find(id);
    if (it != f->timers_.end()) {
      f->loop_.cancel_timer(it->second);
      f->timers_.erase(it);
    }
    return ESTAFETTE_OK;
  }
  static void log(estafette_ctx* ctx, int level, const char* message) {
    try {
      NativeFilter* f = get(ctx);
      if (!message) return;
      std::string line = "module=" + (f ? f->name_ : std::string("?")) +
                         " session=" + (f ? f->session_ : std::string("-")) + " " + message;
      auto& logger = base::log("filters");
      switch (level) {
        case 0:
          logger.error(line);
          break;
        case 1:
          logger.warning(line);
          break;
        case 2:
          logger.information(line);
          break;
        default:
          logger.debug(line);
      }
    } catch (const std::exception&) {
    }
  }
};

HostTable::HostTable(const std::string& path, const std::vector<std::string>& module_args,
                     std::uint32_t flags) {
  args.push_back(path);
  args.insert(args.end(), module_args.begin(), module_args.end());
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  host.abi_version = ESTAFETTE_FILTER_ABI_VERSION;
  host.struct_size = sizeof(estafette_host);
  host.flags = flags;
  host.getsymval = &HostFunctions::getsymval;
  host.foreach_symval = &HostFunctions::foreach_symval;
  host.getpriv = &HostFunctions::getpriv;
  host.setpriv = &HostFunctions::setpriv;
  host.setreply = &HostFunctions::setreply;
  host.addheader = &HostFunctions::addheader;
  host.chgheader = &HostFunctions::chgheader;
  host.insheader = &HostFunctions::insheader;
  host.addrcpt = &HostFunctions::addrcpt;
  host.delrcpt = &HostFunctions::delrcpt;
  host.replacebody = &HostFunctions::replacebody;
  host.quarantine = &HostFunctions::quarantine;
  host.chgfrom = &HostFunctions::chgfrom;
  host.resume = &HostFunctions::resume;
  host.watch_fd = &HostFunctions::watch_fd;
  host.unwatch_fd = &HostFunctions::unwatch_fd;
  host.add_timer = &HostFunctions::add_timer;
  host.cancel_timer = &HostFunctions::cancel_timer;
  host.log = &HostFunctions::log;
  host.argc = static_cast<int>(args.size());
  host.argv = argv.data();
  host.foreach_rcpt = &HostFunctions::foreach_rcpt;
  host.message_size = &HostFunctions::message_size;
}

NativeFilter::NativeFilter(event::Loop& loop, std::shared_ptr<const void> keep_alive,
                           const estafette_filter& table, std::string name,
                           DefaultAction default_action, ModuleTimeouts timeouts)
    : loop_(loop),
      keep_alive_(std::move(keep_alive)),
      table_(table),
      name_(std::move(name)),
      default_action_(default_action),
      ctx_(std::make_unique<estafette_ctx>(estafette_ctx{this})),
      timeouts_(timeouts) {}

NativeFilter::~NativeFilter() {
  if (answer_) {  // a queued answer finds nobody to give it to
    answer_->filter = nullptr;
    answer_->done = nullptr;
    answer_->eom_done = nullptr;
  }
  if (watchdog_) loop_.cancel_timer(watchdog_);
  close_session();
}

void NativeFilter::close_session() {
  if (closed_) return;
  closed_ = true;
  pending_ = Stage::None;
  done_ = nullptr;
  eom_done_ = nullptr;
  if (table_.close) {
    CallbackScope scope = this->scope("close");
    table_.close(ctx_.get());
  }
  for (const auto& [fd, cb] : fds_) loop_.remove_fd(fd);
  fds_.clear();
  for (const auto& [id, timer] : timers_) loop_.cancel_timer(timer);
  timers_.clear();
}

const char* NativeFilter::stage_name(Stage stage) {
  static constexpr const char* kStages[] = {"none", "connect", "helo", "mail", "rcpt",
                                            "data", "header",  "eoh",  "body", "eom"};
  return kStages[static_cast<int>(stage)];
}

CallbackScope NativeFilter::scope(const char* phase) const {
  return CallbackScope(session_, name_, phase, timeouts_.callback_warn);
}

void NativeFilter::answer(bool at_once, Verdict verdict, Callback done, EomCallback eom_done,
                          std::vector<Modification> mods) {
  if (!at_once || !inline_answers_) {
    answer_later(std::move(verdict), std::move(done), std::move(eom_done), std::move(mods));
    return;
  }
  if (eom_done)
    eom_done(verdict, std::move(mods));
  else if (done)
    done(verdict);
}

void NativeFilter::answer_later(Verdict verdict, Callback done, EomCallback eom_done,
                                std::vector<Modification> mods) {
  if (!answer_) {
    answer_ = std::make_shared<Answer>();
    answer_->filter = this;
  }
  if (answer_->queued) {  // not reached: the caller waits for each answer before its next call
    auto token = std::weak_ptr<Answer>(answer_);
    loop_.post([token, v = std::move(verdict), done = std::move(done),
                eom_done = std::move(eom_done), mods = std::move(mods)]() mutable {
      auto slot = token.lock();
      if (!slot || !slot->filter) return;
      if (eom_done)
        eom_done(v, std::move(mods));
      else if (done)
        done(v);
    });
    return;
  }
  Answer& a = *answer_;
  a.verdict = std::move(verdict);
  a.mods = std::move(mods);
  a.done = std::move(done);
  a.eom_done = std::move(eom_done);
  a.queued = true;
  // One shared_ptr: held by std::function without an allocation.
  loop_.post([slot = answer_] {
    Answer& a = *slot;
    a.queued = false;
    Callback done = std::exchange(a.done, nullptr);
    EomCallback eom_done = std::exchange(a.eom_done, nullptr);
    if (!a.filter) return;  // the NativeFilter is gone
    // Out of the slot first: the callback may make the next call, and with it the next answer.
    const Verdict verdict = std::move(a.verdict);
    if (eom_done)
      eom_done(verdict, std::exchange(a.mods, {}));
    else if (done)
      done(verdict);
  });
}

Verdict NativeFilter::make(Verdict::Action action, std::string text) const {
  Verdict v{action, std::move(text), {}};
  if (action != Verdict::Action::Continue) v.filter = name_;
  return v;
}

void NativeFilter::enter(Stage stage, const Macros* macros) {
  if (stage == Stage::Mail) {
    in_message_ = true;
    message_done_ = false;
    envelope_.reset();
  }
  macros_.begin_phase();
  if (macros)
    for (const auto& [name, value] : *macros) macros_.set(name, value);
}

bool NativeFilter::receives(Phase phase) const {
  switch (phase) {
    case Phase::Connect:
      return table_.connect != nullptr;
    case Phase::Helo:
      return table_.helo != nullptr;
    case Phase::Mail:
      return table_.mail != nullptr;
    case Phase::Rcpt:
      return table_.rcpt != nullptr;
    case Phase::Data:
      return table_.data != nullptr;
    case Phase::Header:
      return table_.header != nullptr;
    case Phase::Eoh:
      return table_.eoh != nullptr;
    case Phase::Body:
      return table_.body != nullptr;
    case Phase::Eom:
      return table_.eom != nullptr;
  }
  return true;
}

void NativeFilter::skipped(Phase phase, const Macros& macros) {
  if (closed_ || pending_ != Stage::None) return;  // as run(): a call now would fail
  static constexpr Stage kStages[] = {Stage::Connect, Stage::Helo, Stage::Mail,
                                      Stage::Rcpt,    Stage::Data, Stage::Header,
                                      Stage::Eoh,     Stage::Body, Stage::Eom};
  const Stage stage = kStages[static_cast<int>(phase)];
  enter(stage, &macros);
  if (stage == Stage::Eom) in_message_ = message_done_ = false;
}

template <typename Invoke>
void NativeFilter::run(Stage stage, const Macros* macros, bool has_callback, Invoke invoke,
                       Callback done, EomCallback eom_done) {
  auto failed = [&](Verdict v) {
    answer_later(std::move(v), std::move(done), std::move(eom_done));
  };
  if (closed_) {
    failed(make(Verdict::Action::Failed, "module " + name_ + ": session closed"));
    return;
  }
  if (pending_ != Stage::None) {
    failed(make(Verdict::Action::Failed, "module " + name_ + ": call while another is pending"));
    return;
  }
  enter(stage, macros);
  if (!has_callback || session_done_ || (message_done_ && stage != Stage::Rcpt)) {
    if (stage == Stage::Eom) in_message_ = message_done_ = false;
    answer(true, make(Verdict::Action::Continue), std::move(done), std::move(eom_done));
    return;
  }
  pending_ = stage;
  done_ = std::move(done);
  eom_done_ = std::move(eom_done);
  reply_.clear();
  mods_.clear();
  in_call_ = true;
  int status = 0;
  {
    CallbackScope scope = this->scope(stage_name(stage));
    status = invoke(ctx_.get());
  }
  in_call_ = false;
  if (status == ESTAFETTE_PENDING) {  // resume() finishes it, unless the watchdog fires first
    bool content = stage == Stage::Header || stage == Stage::Eoh || stage == Stage::Body ||
                   stage == Stage::Eom;
    watchdog_ =
        loop_.add_timer(content ? timeouts_.content : timeouts_.command, [this] { on_watchdog(); });
    return;
  }
  complete(status, true);
}

void NativeFilter::on_watchdog() {
  watchdog_ = 0;
  if (pending_ == Stage::None) return;
  auto done = std::move(done_);
  auto eom_done = std::move(eom_done_);
  const bool content = pending_ == Stage::Header || pending_ == Stage::Eoh ||
                       pending_ == Stage::Body || pending_ == Stage::Eom;
  const auto limit = content ? timeouts_.content : timeouts_.command;
  Verdict v = make(Verdict::Action::Failed,
                   "module " + name_ + ": never resumed: " + stage_name(pending_) +
                       " still pending after " + std::to_string(limit.count()) + "ms" +
                       (content ? " (milter_content_timeout)" : " (milter_command_timeout)"));
  close_session();  // a late resume() finds nothing pending; later calls answer Failed
  answer_later(std::move(v), std::move(done), std::move(eom_done));
}

void NativeFilter::complete(int status, bool at_once) {
  if (watchdog_) loop_.cancel_timer(watchdog_);
  watchdog_ = 0;
  Stage stage = std::exchange(pending_, Stage::None);
  Verdict v;
  switch (status) {
    case ESTAFETTE_CONTINUE:
      v = make(Verdict::Action::Continue);
      break;
    case ESTAFETTE_ACCEPT:
      v = make(Verdict::Action::Accept);
      break;
    case ESTAFETTE_REJECT:
      v = reply_.starts_with('5') ? make(Verdict::Action::ReplyCode, reply_)
                                  : make(Verdict::Action::Reject);
      break;
    case ESTAFETTE_TEMPFAIL:
      v = reply_.starts_with('4') ? make(Verdict::Action::ReplyCode, reply_)
                                  : make(Verdict::Action::Tempfail);
      break;
    case ESTAFETTE_DISCARD:
      v = make(Verdict::Action::Discard);
      break;
    default:
      v = make(Verdict::Action::Failed,
               "module " + name_ + ": invalid status " + std::to_string(status));
  }
  reply_.clear();
  bool ends = v.action != Verdict::Action::Continue && v.action != Verdict::Action::Failed;
  if (ends) {
    if (stage == Stage::Connect)
      session_done_ = true;
    else if (stage != Stage::Rcpt || v.action == Verdict::Action::Accept ||
             v.action == Verdict::Action::Discard)
      message_done_ = in_message_;
  }
  if (stage == Stage::Eom) {
    auto mods = std::move(mods_);
    mods_.clear();
    in_message_ = message_done_ = false;
    if (v.action != Verdict::Action::Continue && v.action != Verdict::Action::Accept) mods.clear();
    answer(at_once, std::move(v), nullptr, std::exchange(eom_done_, nullptr), std::move(mods));
    return;
  }
  answer(at_once, std::move(v), std::exchange(done_, nullptr), nullptr);
}

void NativeFilter::connect(const Macros& macros, std::string_view hostname, Family family,
                           std::uint16_t port, std::string_view address, Callback done) {
  std::string h(hostname), a(address);
  run(
      Stage::Connect, &macros, table_.connect != nullptr,
      [&](estafette_ctx* c) {
        return table_.connect(c, h.c_str(), family_code(family), a.c_str(), port);
      },
      std::move(done), nullptr);
}

void NativeFilter::helo(const Macros& macros, std::string_view name, Callback done) {
  std::string n(name);
  run(
      Stage::Helo, &macros, table_.helo != nullptr,
      [&](estafette_ctx* c) { return table_.helo(c, n.c_str()); }, std::move(done), nullptr);
}

namespace {
std::vector<const char*> c_args(const std::vector<std::string>& args) {
  std::vector<const char*> out;
  for (const std::string& a : args) out.push_back(a.c_str());
  out.push_back(nullptr);
  return out;
}
}  // namespace

void NativeFilter::mail(const Macros& macros, std::string_view address,
                        const std::vector<std::string>& args, Callback done) {
  std::string a(address);
  auto argv = c_args(args);
  run(
      Stage::Mail, &macros, table_.mail != nullptr,
      [&](estafette_ctx* c) { return table_.mail(c, a.c_str(), argv.data()); }, std::move(done),
      nullptr);
}

void NativeFilter::rcpt(const Macros& macros, std::string_view address,
                        const std::vector<std::string>& args, Callback done) {
  std::string a(address);
  auto argv = c_args(args);
  run(
      Stage::Rcpt, &macros, table_.rcpt != nullptr,
      [&](estafette_ctx* c) { return table_.rcpt(c, a.c_str(), argv.data()); }, std::move(done),
      nullptr);
}

void NativeFilter::data(const Macros& macros, Callback done) {
  run(
      Stage::Data, &macros, table_.data != nullptr,
      [&](estafette_ctx* c) { return table_.data(c); }, std::move(done), nullptr);
}

void NativeFilter::header(std::string_view name, std::string_view value, Callback done) {
  std::string n(name), v(value);
  run(
      Stage::Header, nullptr, table_.header != nullptr,
      [&](estafette_ctx* c) { return table_.header(c, n.c_str(), v.c_str()); }, std::move(done),
      nullptr);
}

void NativeFilter::headers(const HeaderFields& fields, Callback done) {
  if (fields.empty()) {  // never asked so (MessagePass skips it); answered as for no header
    answer_later(Verdict{}, std::move(done), nullptr);
    return;
  }
  headers_from(fields, 0, std::move(done));
}

void NativeFilter::headers_from(const HeaderFields& fields, std::size_t i, Callback done) {
  // Every field but the last, inline while the callback answers CONTINUE: what run() does for
  // one header, without a posted answer and a turn of the loop per field.
  while (i + 1 < fields.size() && table_.header && !closed_ && pending_ == Stage::None &&
         !session_done_ && !message_done_) {
    const auto& [name, value] = fields[i];
    enter(Stage::Header, nullptr);
    pending_ = Stage::Header;
    reply_.clear();
    mods_.clear();
    in_call_ = true;
    int status = 0;
    {
      CallbackScope scope = this->scope(stage_name(Stage::Header));
      status = table_.header(ctx_.get(), name.c_str(), value.c_str());
    }
    in_call_ = false;
    if (status == ESTAFETTE_CONTINUE) {
      pending_ = Stage::None;
      ++i;
      continue;
    }
    // Anything else ends the inline run: complete() answers it, now or at resume(); a CONTINUE
    // then carries on with the next field in a later turn.
    done_ = [this, &fields, i, done = std::move(done)](const Verdict& v) mutable {
      if (v.action == Verdict::Action::Continue)
        headers_from(fields, i + 1, std::move(done));
      else
        done(v);
    };
    if (status == ESTAFETTE_PENDING) {
      watchdog_ = loop_.add_timer(timeouts_.content, [this] { on_watchdog(); });
      return;
    }
    complete(status, true);
    return;
  }
  if (!closed_ && pending_ == Stage::None && (!table_.header || session_done_ || message_done_)) {
    answer(true, Verdict{}, std::move(done), nullptr);  // what header() answers each field
    return;
  }
  // The last field; or, on entry, a closed session or a call pending: header() answers Failed,
  // which ends the pass.
  header(fields[i].first, fields[i].second, std::move(done));
}

void NativeFilter::eoh(const Macros& macros, Callback done) {
  run(
      Stage::Eoh, &macros, table_.eoh != nullptr, [&](estafette_ctx* c) { return table_.eoh(c); },
      std::move(done), nullptr);
}

void NativeFilter::body(std::string_view bytes, Callback done) {
  run(
      Stage::Body, nullptr, table_.body != nullptr && !bytes.empty(),
      [&](estafette_ctx* c) {
        return table_.body(c, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
      },
      std::move(done), nullptr);
}

void NativeFilter::eom(const Macros& macros, EomCallback done) {
  run(
      Stage::Eom, &macros, table_.eom != nullptr, [&](estafette_ctx* c) { return table_.eom(c); },
      nullptr, std::move(done));
}

void NativeFilter::message_envelope(const std::vector<std::string>& recipients,
                                    std::uint64_t size) {
  envelope_.emplace(recipients, size);
}

void NativeFilter::abort() {
  envelope_.reset();
  if (closed_) return;
  if (pending_ != Stage::None) {
    // The pending answer belongs to the message that ends: drop it.
    pending_ = Stage::None;
    done_ = nullptr;
    eom_done_ = nullptr;
  }
  if (in_message_ && !session_done_ && table_.abort) {
    CallbackScope scope = this->scope("abort");
    table_.abort(ctx_.get());
  }
  in_message_ = message_done_ = false;
  mods_.clear();
}

void NativeFilter::quit() {
  close_session();
}

}  // namespace estafette::filters
