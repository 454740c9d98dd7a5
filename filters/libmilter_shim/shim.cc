// shim.cc: libestafette_milter.a, which turns a filter written against libmilter's API
// (include/estafette/libmilter/mfapi.h) into a native Estafette filter module
// (include/estafette/filter.h). Linked into the filter's shared object.
//
// estafette_filter_init() calls the filter's own main() with the module's argv: smfi_register()
// records its smfiDesc, smfi_main() returns MI_SUCCESS at once. Each native phase callback then
// snapshots the session's macros on esmtpd's loop, queues the xxfi_* call on the session and
// answers ESTAFETTE_PENDING; a worker runs the session's calls one at a time, in order, records
// what the filter asked for (reply, modifications) and writes the session's eventfd; back on the
// loop (watch_fd) the recorded requests are replayed through the host table and host->resume()
// answers the phase. So a slow or blocking libmilter callback never blocks the loop. The host
// functions are only ever called on the loop thread. A stage the filter does not receive (no
// callback, or negotiated away) is answered on the loop without a worker, once the first
// call's negotiation is known (dispatch()).
//
// Workers (worker_pool.h): a session holds a worker only while it has calls queued, and a session
// whose call finds no idle worker starts one (up to 64 per module per process), so a callback
// that blocks, also one whose phase esmtpd already gave up (timeout), holds its own thread only
// and delays no other session. At the bound sessions wait for a worker in turn (logged once);
// idle workers above 4 retire after 30 s; fini joins every thread before the .so can go.
//
// State: a loaded module needs the registered smfiDesc and its worker pool between main() and
// the sessions, and the libmilter API (smfi_register, smfi_main) has no handle to carry them:
// they live in one ShimModule per loaded shared object (function-local static below; each .so
// has its own copy of this library, and esmtpd loads it RTLD_LOCAL). Everything per session is
// in its SMFICTX (struct smfi_str).
//
// DIAGNOSTICS: main() returning non-zero or never calling smfi_register() makes
// estafette_filter_init() return NULL (esmtpd refuses the module), with a log line. An unknown
// sfsistat fails that call (esmtpd applies milter_default_action). smfi_* calls outside their
// phase or without the negotiated action answer MI_FAILURE, as in libmilter.
#include <arpa/inet.h>
#include <estafette/filter.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "worker_pool.h"

extern "C" int estafette_shim_call_main(int argc, char** argv);  // call_main.c

namespace {

constexpr unsigned long kOfferedActions = SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
                                          SMFIF_DELRCPT | SMFIF_CHGHDRS | SMFIF_QUARANTINE |
                                          SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR | SMFIF_SETSYMLIST;
constexpr unsigned long kOfferedProtocol =
    SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT | SMFIP_NOBODY | SMFIP_NOHDRS |
    SMFIP_NOEOH | SMFIP_NR_HDR | SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_SKIP | SMFIP_NR_CONN |
    SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH |
    SMFIP_NR_BODY | SMFIP_HDR_LEADSPC;
constexpr int kInvalidStatus = 100;  // makes the host answer Failed
constexpr int kHeaderStage = -2;     // stages without macros
constexpr int kBodyStage = -3;

// A request the filter made during a callback, replayed on the loop through the host table.
struct Request {
  char kind;  // an SMFIR_* letter
  std::string a, b;
  int index = 0;
};

using estafette::milter_shim::WorkerPool;

// Workers per loaded module per esmtpd process. Each session's calls need a thread only while one
// runs, so a callback that blocks holds one thread and delays only its own session; the bound
// keeps a filter that blocks on everything from costing a thread per session (at the bound,
// sessions wait for a worker in turn, and that is logged once). 4 stay when idle (what the
// fixed pool had), the others retire after 30 s without work.
constexpr WorkerPool::Limits kWorkerLimits{4, 64, std::chrono::seconds(30)};

}  // namespace

// One SMTP session (libmilter's SMFICTX).
struct smfi_str : std::enable_shared_from_this<smfi_str> {
  using Job = std::function<void(smfi_str&)>;
  ~smfi_str() {
    if (efd >= 0) ::close(efd);
  }
  void post(Job job);
  void run_jobs();
  void finish(std::uint64_t seq, sfsistat status);

  // Loop thread only.
  estafette_ctx* ctx = nullptr;
  std::uint64_t expected = 0;  // the seq of the phase waiting for its answer (0: none)
  std::uint64_t next_seq = 1;
  // The negotiated protocol, once a result brought it over (see dispatch(): stages the filter
  // does not receive are answered on the loop, without a trip to a worker).
  bool protocol_known = false;
  unsigned long known_protocol = 0;

  int efd = -1;
  WorkerPool* pool = nullptr;

  // Under mu: the job queue, the hand-over of results.
  std::mutex mu;
  std::deque<Job> jobs;
  bool scheduled = false;
  bool closed = false;
  bool has_result = false;
  std::uint64_t result_seq = 0;
  int result = 0;
  std::vector<Request> out;
  bool result_negotiated = false;
  unsigned long result_protocol = 0;

  // The worker running this session's job only.
  // Macros per stage (SMFIM_* index), as libmilter keeps them: a stage's slot holds the macros
  // given with it, if the filter receives that stage; smfi_getsymval searches from the last.
  // Flat lists (a stage has a dozen at most; a map cost two allocations per macro per stage).
  std::vector<std::pair<std::string, std::string>> macros[SMFIM_LAST + 1];
  void* priv = nullptr;
  std::vector<Request> requests;
  bool in_call = false;
  bool in_eom = false;
  bool negotiated = false;
  unsigned long actions = 0;
  unsigned long protocol = 0;
  bool body_skipped = false;
  sockaddr_storage addr{};
};

namespace {

// Everything the shim keeps for its loaded module (see the comment at the top).
struct ShimModule {
  std::mutex mu;             // registration (main() at load time)
  bool initialised = false;  // estafette_filter_init succeeded and fini has not run
  bool registered = false;
  smfiDesc desc{};
  std::string name;
  const estafette_host* host = nullptr;
  std::vector<std::string> args;  // main()'s argv
  std::vector<char*> argv;
  estafette_filter table{};
  WorkerPool pool{kWorkerLimits};
  // `module-inline:` (the host's ESTAFETTE_HOST_ON_LOOP): callbacks run on the loop, in the
  // native callback, with no worker, eventfd or PENDING; set once at init.
  bool on_loop = false;
};

ShimModule& shim() {
  static ShimModule module;
  return module;
}

const smfiDesc& desc() {
  return shim().desc;
}

}  // namespace

// Loop: queues a call; a session with none in progress gets a worker, which runs its calls in
// order until none is left (so they run one at a time).
void smfi_str::post(Job job) {
  if (shim().on_loop) {  // the loop is the only thread: run it now
    job(*this);
    return;
  }
  std::lock_guard lock(mu);
  jobs.push_back(std::move(job));
  if (scheduled) return;
  try {
    pool->run([self = shared_from_this()] { self->run_jobs(); });
  } catch (...) {
    jobs.pop_back();
    throw;
  }
  scheduled = true;
}

// Worker.
void smfi_str::run_jobs() {
  for (;;) {
    Job job;
    {
      std::lock_guard lock(mu);
      if (jobs.empty()) {
        scheduled = false;
        return;
      }
      job = std::move(jobs.front());
      jobs.pop_front();
    }
    job(*this);
  }
}

namespace {
// libmilter's answer as the native ABI's.
int native_status(sfsistat status) {
  int native;
  switch (status) {
    case SMFIS_CONTINUE:
    case SMFIS_NOREPLY:
    case SMFIS_SKIP:
      native = ESTAFETTE_CONTINUE;
      break;
    case SMFIS_REJECT:
      native = ESTAFETTE_REJECT;
      break;
    case SMFIS_DISCARD:
      native = ESTAFETTE_DISCARD;
      break;
    case SMFIS_ACCEPT:
      native = ESTAFETTE_ACCEPT;
      break;
    case SMFIS_TEMPFAIL:
      native = ESTAFETTE_TEMPFAIL;
      break;
    default:
      native = kInvalidStatus;
  }
  return native;
}
}  // namespace

void smfi_str::finish(std::uint64_t seq, sfsistat status) {
  const int native = native_status(status);
  std::lock_guard lock(mu);
  if (closed) return;
  has_result = true;
  result_seq = seq;
  result = native;
  result_negotiated = negotiated;
  result_protocol = protocol;
  out = std::move(requests);
  requests.clear();
  std::uint64_t one = 1;
  (void)!::write(efd, &one, sizeof one);
}

namespace {

using Session = smfi_str;

void log_error(const std::string& text) {
  const estafette_host* host = shim().host;
  if (host && host->log) host->log(nullptr, 0, text.c_str());
}

// The host's per-session pointer holds a heap shared_ptr to the session.
std::shared_ptr<Session> find(estafette_ctx* ctx) {
  auto* holder = static_cast<std::shared_ptr<Session>*>(shim().host->getpriv(ctx));
  return holder ? *holder : nullptr;
}

// Loop: the requests a phase's callback made, through the host table (in the native callback,
// or before resume()).
void replay(estafette_ctx* ctx, const std::vector<Request>& requests) {
  const estafette_host* h = shim().host;
  for (const Request& r : requests) {
    const char* b = r.b.empty() ? nullptr : r.b.c_str();
    switch (r.kind) {
      case SMFIR_REPLYCODE:
        h->setreply(ctx, r.a.substr(0, 3).c_str(), b, r.a.size() > 4 ? r.a.c_str() + 4 : "");
        break;
      case SMFIR_ADDHEADER:
        h->addheader(ctx, r.a.c_str(), r.b.c_str());
        break;
      case SMFIR_CHGHEADER:
        h->chgheader(ctx, r.a.c_str(), r.index, r.b.c_str());
        break;
      case SMFIR_INSHEADER:
        h->insheader(ctx, r.index, r.a.c_str(), r.b.c_str());
        break;
      case SMFIR_ADDRCPT:
        h->addrcpt(ctx, r.a.c_str(), b);
        break;
      case SMFIR_DELRCPT:
        h->delrcpt(ctx, r.a.c_str());
        break;
      case SMFIR_REPLBODY:
        h->replacebody(ctx, reinterpret_cast<const unsigned char*>(r.a.data()), r.a.size());
        break;
      case SMFIR_QUARANTINE:
        h->quarantine(ctx, r.a.c_str());
        break;
      case SMFIR_CHGFROM:
        h->chgfrom(ctx, r.a.c_str(), b);
        break;
    }
  }
}

// Loop: the worker finished a phase; replay its requests, then answer the phase.
void on_result(estafette_ctx* ctx, int fd, int, void*) {
  std::uint64_t n;
  (void)!::read(fd, &n, sizeof n);
  std::shared_ptr<Session> s = find(ctx);
  if (!s) return;
  std::vector<Request> requests;
  int status;
  std::uint64_t seq;
  {
    std::lock_guard lock(s->mu);
    if (!s->has_result) return;
    s->has_result = false;
    if (s->result_negotiated && !s->protocol_known) {
      s->protocol_known = true;
      s->known_protocol = s->result_protocol;
    }
    requests = std::move(s->out);
    status = s->result;
    seq = s->result_seq;
  }
  if (seq != s->expected) return;  // the phase was abandoned (abort)
  s->expected = 0;
  replay(ctx, requests);
  shim().host->resume(ctx, status);
}

std::shared_ptr<Session> open_session(estafette_ctx* ctx) {
  if (std::shared_ptr<Session> s = find(ctx)) return s;
  ShimModule& m = shim();
  auto s = std::make_shared<Session>();
  s->ctx = ctx;
  s->pool = &m.pool;
  if (!m.on_loop) {  // the workers' answers come back through it; module-inline has none
    s->efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) return nullptr;
    if (m.host->watch_fd(ctx, s->efd, ESTAFETTE_FD_READ, on_result, nullptr) != ESTAFETTE_OK)
      return nullptr;
  }
  m.host->setpriv(ctx, new std::shared_ptr<Session>(s));
  return s;
}

using Macros = std::vector<std::pair<std::string, std::string>>;

void collect(void* arg, const char* name, const char* value) {
  static_cast<Macros*>(arg)->emplace_back(name, value);
}

void negotiate(Session& s);
bool receives(const Session& s, int stage);
bool receives(unsigned long protocol, int stage);

// Worker: the filter receives this stage (libmilter: a registered callback the filter did not
// negotiate away); its macros replace the stage's slot, and a new message clears later ones.
void receive_macros(Session& s, int stage, Macros& given) {
  if (stage < 0) return;
  if (stage == SMFIM_ENVFROM)
    for (int i = SMFIM_ENVFROM + 1; i <= SMFIM_LAST; ++i) s.macros[i].clear();
  if (!given.empty()) s.macros[stage] = std::move(given);
}

// Worker (or the loop, module-inline): one stage as libmilter runs it: negotiation first, the
// stage's macros, the callback if the filter receives the stage.
sfsistat run_stage(Session& s, int stage, Macros& macros,
                   const std::function<sfsistat(Session&)>& call) {
  negotiate(s);
  if (stage == SMFIM_ENVFROM) s.body_skipped = false;
  s.requests.clear();
  s.in_call = true;
  sfsistat status = SMFIS_CONTINUE;
  if (receives(s, stage)) {
    receive_macros(s, stage, macros);
    status = call(s);
  }
  s.in_call = false;
  s.in_eom = false;
  // The next message's body is read again (also here: MAIL, which resets it too, is not
  // called when the filter has no envfrom callback).
  if (stage == SMFIM_EOM) s.body_skipped = false;
  return status;
}

// Loop: queues call(session) with the phase's macros; the answer comes through on_result.
// module-inline: runs it at once and answers.
// call returns -1 for a stage the filter does not receive.
int dispatch(estafette_ctx* ctx, int stage, std::function<sfsistat(Session&)> call) {
  try {
    std::shared_ptr<Session> s = open_session(ctx);
    if (!s) return kInvalidStatus;
    // A stage the filter does not receive (no callback, or negotiated away) is answered here:
    // libmilter's MTA would not send it at all. Measured: the sample filter's unused stages
    // (helo, data, each header, eoh, body) were each a worker round trip, most of the shim's
    // cost per message. MAIL stays with the worker (it resets the body skip there); the first
    // stage always goes, since negotiation runs with it.
    if (s->protocol_known && stage != SMFIM_ENVFROM && !receives(s->known_protocol, stage))
      return ESTAFETTE_CONTINUE;
    Macros macros;
    macros.reserve(16);
    shim().host->foreach_symval(ctx, collect, &macros);
    if (shim().on_loop) {
      // module-inline: here and now, as a native callback; the requests are made before it
      // returns (the host takes them during the callback).
      sfsistat status = run_stage(*s, stage, macros, call);
      if (s->negotiated && !s->protocol_known) {
        s->protocol_known = true;
        s->known_protocol = s->protocol;
      }
      std::vector<Request> requests = std::move(s->requests);
      s->requests.clear();
      replay(ctx, requests);
      return native_status(status);
    }
    std::uint64_t seq = s->next_seq++;
    s->expected = seq;
    s->post([seq, stage, macros = std::move(macros), call = std::move(call)](Session& s) mutable {
      s.finish(seq, run_stage(s, stage, macros, call));
    });
    ShimModule& m = shim();
    if (m.pool.take_full_notice() && m.host->log)
      m.host->log(ctx, 1,
                  ("libmilter shim: " + m.name + ": all " + std::to_string(m.pool.limits().max) +
                   " worker threads are busy; sessions wait for one in turn (logged once)")
                      .c_str());
    return ESTAFETTE_PENDING;
  } catch (const std::exception& e) {
    log_error(std::string("libmilter shim: ") + e.what());
    return kInvalidStatus;
  }
}

// Worker: xxfi_negotiate once per session, before its first call (as libmilter does at OPTNEG).
void negotiate(Session& s) {
  if (s.negotiated) return;
  s.negotiated = true;
  const smfiDesc& d = shim().desc;
  s.actions = d.xxfi_flags;
  s.protocol = 0;
  if (!d.xxfi_negotiate) return;
  unsigned long a = 0, p = 0, f2 = 0, f3 = 0;
  sfsistat r = d.xxfi_negotiate(&s, kOfferedActions, kOfferedProtocol, 0, 0, &a, &p, &f2, &f3);
  if (r == SMFIS_ALL_OPTS) {
    s.actions = kOfferedActions;
  } else if (r == SMFIS_CONTINUE) {
    s.actions = a & kOfferedActions;
    s.protocol = p & kOfferedProtocol;
  }
}

// Worker: whether libmilter would hand this stage to the filter: its callback is registered and
// not negotiated away (libmilter sets SMFIP_NO* for unregistered callbacks, so the MTA sends
// neither the stage nor its macros).
bool receives(const Session& s, int stage) {
  return receives(s.protocol, stage);
}

bool receives(unsigned long protocol, int stage) {
  const smfiDesc& d = desc();
  switch (stage) {
    case SMFIM_CONNECT:
      return d.xxfi_connect && !(protocol & SMFIP_NOCONNECT);
    case SMFIM_HELO:
      return d.xxfi_helo && !(protocol & SMFIP_NOHELO);
    case SMFIM_ENVFROM:
      return d.xxfi_envfrom && !(protocol & SMFIP_NOMAIL);
    case SMFIM_ENVRCPT:
      return d.xxfi_envrcpt && !(protocol & SMFIP_NORCPT);
    case SMFIM_DATA:
      return d.xxfi_data && !(protocol & SMFIP_NODATA);
    case kHeaderStage:
      return d.xxfi_header && !(protocol & SMFIP_NOHDRS);
    case SMFIM_EOH:
      return d.xxfi_eoh && !(protocol & SMFIP_NOEOH);
    case kBodyStage:
      return d.xxfi_body && !(protocol & SMFIP_NOBODY);
    case SMFIM_EOM:
      return d.xxfi_eom != nullptr;  // end of message is always sent
  }
  return false;
}

std::vector<std::string> copy_args(const char* first, const char* const* args) {
  std::vector<std::string> v{first ? first : ""};
  for (; args && *args; ++args) v.emplace_back(*args);
  return v;
}

sfsistat call_argv(sfsistat (*fn)(SMFICTX*, char**), Session& s, std::vector<std::string>& v) {
  std::vector<char*> argv;
  for (std::string& a : v) argv.push_back(a.data());
  argv.push_back(nullptr);
  return fn(&s, argv.data());
}

// The native callbacks.
int n_connect(estafette_ctx* ctx, const char* hostname, int family, const char* address,
              unsigned port) {
  std::string host = hostname ? hostname : "", addr = address ? address : "";
  return dispatch(ctx, SMFIM_CONNECT, [host, family, addr, port](Session& s) mutable -> sfsistat {
    _SOCK_ADDR* sa = reinterpret_cast<_SOCK_ADDR*>(&s.addr);
    if (family == ESTAFETTE_FAMILY_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(&s.addr);
      in->sin_family = AF_INET;
      in->sin_port = htons(static_cast<std::uint16_t>(port));
      if (::inet_pton(AF_INET, addr.c_str(), &in->sin_addr) != 1) sa = nullptr;
    } else if (family == ESTAFETTE_FAMILY_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(&s.addr);
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<std::uint16_t>(port));
      if (::inet_pton(AF_INET6, addr.c_str(), &in6->sin6_addr) != 1) sa = nullptr;
    } else if (family == ESTAFETTE_FAMILY_UNIX) {
      auto* un = reinterpret_cast<sockaddr_un*>(&s.addr);
      un->sun_family = AF_UNIX;
      std::strncpy(un->sun_path, addr.c_str(), sizeof un->sun_path - 1);
    } else {
      sa = nullptr;
    }
    return desc().xxfi_connect(&s, host.data(), sa);
  });
}

int n_helo(estafette_ctx* ctx, const char* name) {
  std::string n = name ? name : "";
  return dispatch(ctx, SMFIM_HELO,
                  [n](Session& s) mutable -> sfsistat { return desc().xxfi_helo(&s, n.data()); });
}

int n_mail(estafette_ctx* ctx, const char* address, const char* const* args) {
  return dispatch(ctx, SMFIM_ENVFROM,
                  [v = copy_args(address, args)](Session& s) mutable -> sfsistat {
                    return call_argv(desc().xxfi_envfrom, s, v);
                  });
}

int n_rcpt(estafette_ctx* ctx, const char* address, const char* const* args) {
  return dispatch(ctx, SMFIM_ENVRCPT,
                  [v = copy_args(address, args)](Session& s) mutable -> sfsistat {
                    return call_argv(desc().xxfi_envrcpt, s, v);
                  });
}

int n_data(estafette_ctx* ctx) {
  return dispatch(ctx, SMFIM_DATA, [](Session& s) -> sfsistat { return desc().xxfi_data(&s); });
}

int n_header(estafette_ctx* ctx, const char* name, const char* value) {
  std::string n = name ? name : "", v = value ? value : "";
  return dispatch(ctx, kHeaderStage, [n, v](Session& s) mutable -> sfsistat {
    if (!(s.protocol & SMFIP_HDR_LEADSPC)) v.erase(0, v.find_first_not_of(" \t"));
    return desc().xxfi_header(&s, n.data(), v.data());
  });
}

int n_eoh(estafette_ctx* ctx) {
  return dispatch(ctx, SMFIM_EOH, [](Session& s) -> sfsistat { return desc().xxfi_eoh(&s); });
}

int n_body(estafette_ctx* ctx, const unsigned char* bytes, size_t len) {
  std::string b(reinterpret_cast<const char*>(bytes), len);
  return dispatch(ctx, kBodyStage, [b](Session& s) mutable -> sfsistat {
    if (s.body_skipped) return SMFIS_CONTINUE;
    // In chunks of at most MILTER_CHUNK_SIZE, as libmilter delivers them.
    for (std::size_t at = 0; at < b.size(); at += MILTER_CHUNK_SIZE) {
      std::size_t n = std::min<std::size_t>(MILTER_CHUNK_SIZE, b.size() - at);
      sfsistat r = desc().xxfi_body(&s, reinterpret_cast<unsigned char*>(b.data() + at), n);
      if (r == SMFIS_SKIP) {
        s.body_skipped = true;
        return SMFIS_CONTINUE;
      }
      if (r != SMFIS_CONTINUE && r != SMFIS_NOREPLY) return r;
    }
    return SMFIS_CONTINUE;
  });
}

int n_eom(estafette_ctx* ctx) {
  return dispatch(ctx, SMFIM_EOM, [](Session& s) -> sfsistat {
    s.in_eom = true;
    return desc().xxfi_eom(&s);
  });
}

// Loop: abort and close answer at once; when no worker can be started for them (no thread at
// all), the callback is skipped with a log line rather than the exception leaving the C ABI.
void post_or_log(Session& s, Session::Job job, const char* what) {
  try {
    s.post(std::move(job));
  } catch (const std::exception& e) {
    log_error("libmilter shim: " + shim().name + ": " + what + " not run: " + e.what());
  }
}

int n_abort(estafette_ctx* ctx) {
  std::shared_ptr<Session> s = find(ctx);
  if (!s) return ESTAFETTE_CONTINUE;
  s->expected = 0;  // an answer still on its way belongs to the aborted message
  post_or_log(
      *s,
      [](Session& s) {
        s.body_skipped = false;
        for (int i = SMFIM_ENVFROM; i <= SMFIM_LAST; ++i) s.macros[i].clear();
        if (desc().xxfi_abort) {
          s.in_call = true;
          desc().xxfi_abort(&s);
          s.in_call = false;
        }
      },
      "xxfi_abort");
  return ESTAFETTE_CONTINUE;
}

int n_close(estafette_ctx* ctx) {
  auto* holder = static_cast<std::shared_ptr<Session>*>(shim().host->getpriv(ctx));
  if (!holder) return ESTAFETTE_CONTINUE;
  std::shared_ptr<Session> s = std::move(*holder);
  delete holder;
  shim().host->setpriv(ctx, nullptr);
  if (s->efd >= 0) shim().host->unwatch_fd(ctx, s->efd);
  {
    std::lock_guard lock(s->mu);
    s->closed = true;  // the worker answers nothing more; ctx is gone after this
  }
  s->ctx = nullptr;
  post_or_log(
      *s,
      [](Session& s) {
        if (desc().xxfi_close) {
          s.in_call = true;
          desc().xxfi_close(&s);
          s.in_call = false;
        }
      },
      "xxfi_close");
  return ESTAFETTE_CONTINUE;
}

void n_fini() {
  ShimModule& m = shim();
  m.pool.stop();
  std::lock_guard lock(m.mu);
  m.registered = false;
  m.initialised = false;
}

// Worker, in a callback: records a request for the loop.
int record(SMFICTX* ctx, unsigned long action, Request r) {
  if (!ctx || !ctx->in_eom || (action && !(ctx->actions & action))) return MI_FAILURE;
  ctx->requests.push_back(std::move(r));
  return MI_SUCCESS;
}

// Without SMFIP_HDR_LEADSPC libmilter filters give header values without the space after the
// colon; the MTA writes one.
std::string header_value(SMFICTX* ctx, const char* value) {
  return (ctx->protocol & SMFIP_HDR_LEADSPC) ? std::string(value) : " " + std::string(value);
}

bool valid_code(const char* code) {
  return code && (code[0] == '4' || code[0] == '5') && code[1] >= '0' && code[1] <= '9' &&
         code[2] >= '0' && code[2] <= '9' && code[3] == '\0';
}

bool has_crlf(const char* text) {
  return text && std::strpbrk(text, "\r\n") != nullptr;
}

}  // namespace

extern "C" {

const struct estafette_filter* estafette_filter_init(const struct estafette_host* host) {
  ShimModule& m = shim();
  // The shim uses only ABI 1.0's host functions, so it loads in any 1.x host.
  if (!host || host->abi_version != ESTAFETTE_FILTER_ABI_VERSION || !ESTAFETTE_HOST_HAS(host, argv))
    return nullptr;
  {
    std::lock_guard lock(m.mu);
    if (m.initialised) {
      // dlopen() of the same path again gives the same image, and this one is in use.
      if (host->log)
        host->log(nullptr, 0, "libmilter shim: this module is loaded already (copy the .so)");
      return nullptr;
    }
    m.registered = false;
    m.on_loop = ESTAFETTE_HOST_HAS(host, flags) && (host->flags & ESTAFETTE_HOST_ON_LOOP) != 0;
  }
  m.host = host;
  // main() may use getopt(): start it afresh (glibc: optind 0 resets it fully) and give the
  // host its optind back afterwards.
  // main()'s argv lives as long as the module, as a process's does (filters keep optarg).
  std::vector<std::string>& args = m.args;
  args.assign(host->argv, host->argv + host->argc);
  std::vector<char*>& argv = m.argv;
  argv.clear();
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int saved_optind = optind;
  optind = 0;
  int rc = estafette_shim_call_main(static_cast<int>(args.size()), argv.data());
  optind = saved_optind;
  std::lock_guard lock(m.mu);
  if (rc != 0 || !m.registered) {
    log_error(std::string("libmilter shim: ") + (args.empty() ? "?" : args[0]) + ": main() " +
              (rc != 0 ? "returned " + std::to_string(rc) : "did not call smfi_register()"));
    return nullptr;
  }
  m.initialised = true;
  m.table = estafette_filter{};
  m.table.abi_version = ESTAFETTE_FILTER_ABI_VERSION;
  m.table.struct_size = sizeof(estafette_filter);
  m.table.name = m.name.c_str();
  // A stage the filter registered no callback for is never received (libmilter negotiates it
  // away), so it gets no native callback either: esmtpd then skips it without a call, a hold or
  // a turn of its loop. End of message always goes (libmilter always sends it).
  const smfiDesc& d = m.desc;
  m.table.connect = d.xxfi_connect ? n_connect : nullptr;
  m.table.helo = d.xxfi_helo ? n_helo : nullptr;
  m.table.mail = d.xxfi_envfrom ? n_mail : nullptr;
  m.table.rcpt = d.xxfi_envrcpt ? n_rcpt : nullptr;
  m.table.data = d.xxfi_data ? n_data : nullptr;
  m.table.header = d.xxfi_header ? n_header : nullptr;
  m.table.eoh = d.xxfi_eoh ? n_eoh : nullptr;
  m.table.body = d.xxfi_body ? n_body : nullptr;
  m.table.eom = n_eom;
  m.table.abort = n_abort;
  m.table.close = n_close;
  m.table.fini = n_fini;
  return &m.table;
}

int smfi_register(struct smfiDesc desc) {
  ShimModule& m = shim();
  std::lock_guard lock(m.mu);
  m.desc = desc;
  m.name = desc.xxfi_name && *desc.xxfi_name ? desc.xxfi_name : "libmilter-filter";
  m.desc.xxfi_name = nullptr;  // the caller's string need not outlive main()
  m.registered = true;
  return MI_SUCCESS;
}

int smfi_main(void) {
  std::lock_guard lock(shim().mu);
  return shim().registered ? MI_SUCCESS : MI_FAILURE;
}

int smfi_opensocket(bool) {
  return MI_SUCCESS;
}
int smfi_setbacklog(int) {
  return MI_SUCCESS;
}
int smfi_setdbg(int) {
  return MI_SUCCESS;
}
int smfi_settimeout(int) {
  return MI_SUCCESS;
}
int smfi_setconn(char* conn) {
  return conn ? MI_SUCCESS : MI_FAILURE;
}
int smfi_stop(void) {
  return MI_SUCCESS;
}
size_t smfi_setmaxdatasize(size_t) {
  return MILTER_MAX_DATA_SIZE;
}
int smfi_version(unsigned int* major, unsigned int* minor, unsigned int* patch) {
  if (major) *major = SM_LM_VRS_MAJOR(SMFI_VERSION);
  if (minor) *minor = SM_LM_VRS_MINOR(SMFI_VERSION);
  if (patch) *patch = SM_LM_VRS_PLVL(SMFI_VERSION);
  return MI_SUCCESS;
}

char* smfi_getsymval(SMFICTX* ctx, char* name) {
  if (!ctx || !name || !*name) return nullptr;
  std::string n = name, other;
  if (n.size() == 1) other = "{" + n + "}";  // one-letter macros with or without braces
  if (n.size() == 3 && n[0] == '{' && n[2] == '}') other = n.substr(1, 1);
  // The last stage first; in a stage the name as asked, then its other form.
  auto find = [](auto& m, const std::string& key) -> char* {
    for (auto it = m.rbegin(); it != m.rend(); ++it)
      if (it->first == key) return it->second.data();
    return nullptr;
  };
  for (int i = SMFIM_LAST; i >= SMFIM_FIRST; --i) {
    if (char* v = find(ctx->macros[i], n)) return v;
    if (!other.empty())
      if (char* v = find(ctx->macros[i], other)) return v;
  }
  return nullptr;
}

int smfi_setpriv(SMFICTX* ctx, void* priv) {
  if (!ctx) return MI_FAILURE;
  ctx->priv = priv;
  return MI_SUCCESS;
}

void* smfi_getpriv(SMFICTX* ctx) {
  return ctx ? ctx->priv : nullptr;
}

int smfi_setsymlist(SMFICTX* ctx, int stage, char* list) {
  // In-process every macro is available; the list is accepted and not needed.
  if (!ctx || !list || stage < SMFIM_FIRST || stage > SMFIM_LAST) return MI_FAILURE;
  return MI_SUCCESS;
}

int smfi_setreply(SMFICTX* ctx, char* rcode, char* xcode, char* message) {
  if (!ctx || !ctx->in_call || !valid_code(rcode) || has_crlf(message)) return MI_FAILURE;
  // Replaces an earlier reply of the same call.
  std::erase_if(ctx->requests, [](const Request& r) { return r.kind == SMFIR_REPLYCODE; });
  std::string text = std::string(rcode) + " " + (message ? message : "");
  ctx->requests.push_back(Request{SMFIR_REPLYCODE, text, xcode ? xcode : "", 0});
  return MI_SUCCESS;
}

int smfi_setmlreply(SMFICTX* ctx, const char* rcode, const char* xcode, ...) {
  if (!ctx || !ctx->in_call || !valid_code(rcode)) return MI_FAILURE;
  std::string text;
  va_list ap;
  va_start(ap, xcode);
  int lines = 0;
  bool ok = true;
  for (const char* line; (line = va_arg(ap, const char*)) != nullptr;) {
    if (has_crlf(line) || ++lines > 32) ok = false;
    if (!text.empty()) text += "\r\n";
    text += line;
  }
  va_end(ap);
  if (!ok || lines == 0) return MI_FAILURE;
  std::erase_if(ctx->requests, [](const Request& r) { return r.kind == SMFIR_REPLYCODE; });
  ctx->requests.push_back(
      Request{SMFIR_REPLYCODE, std::string(rcode) + " " + text, xcode ? xcode : "", 0});
  return MI_SUCCESS;
}

int smfi_addheader(SMFICTX* ctx, char* name, char* value) {
  if (!ctx || !name || !*name || !value) return MI_FAILURE;
  return record(ctx, SMFIF_ADDHDRS, Request{SMFIR_ADDHEADER, name, header_value(ctx, value), 0});
}

int smfi_chgheader(SMFICTX* ctx, char* name, int index, char* value) {
  if (!ctx || !name || !*name || index < 0) return MI_FAILURE;
  // The index goes to esmtpd as given (as libmilter sends it); a NULL value deletes.
  std::string v = value && *value ? header_value(ctx, value) : std::string();
  return record(ctx, SMFIF_CHGHDRS, Request{SMFIR_CHGHEADER, name, v, index});
}

int smfi_insheader(SMFICTX* ctx, int index, char* name, char* value) {
  if (!ctx || !name || !*name || !value || index < 0) return MI_FAILURE;
  return record(ctx, SMFIF_ADDHDRS,
                Request{SMFIR_INSHEADER, name, header_value(ctx, value), index});
}

int smfi_chgfrom(SMFICTX* ctx, char* from, char* args) {
  if (!ctx || !from || !*from) return MI_FAILURE;
  return record(ctx, SMFIF_CHGFROM, Request{SMFIR_CHGFROM, from, args ? args : "", 0});
}

int smfi_addrcpt(SMFICTX* ctx, char* rcpt) {
  if (!ctx || !rcpt || !*rcpt) return MI_FAILURE;
  return record(ctx, SMFIF_ADDRCPT, Request{SMFIR_ADDRCPT, rcpt, "", 0});
}

int smfi_addrcpt_par(SMFICTX* ctx, char* rcpt, char* args) {
  if (!ctx || !rcpt || !*rcpt) return MI_FAILURE;
  return record(ctx, SMFIF_ADDRCPT_PAR, Request{SMFIR_ADDRCPT, rcpt, args ? args : "", 0});
}

int smfi_delrcpt(SMFICTX* ctx, char* rcpt) {
  if (!ctx || !rcpt || !*rcpt) return MI_FAILURE;
  return record(ctx, SMFIF_DELRCPT, Request{SMFIR_DELRCPT, rcpt, "", 0});
}

int smfi_progress(SMFICTX* ctx) {
  // Nothing to keep alive in-process: esmtpd waits for the worker's answer.
  return ctx && ctx->in_call ? MI_SUCCESS : MI_FAILURE;
}

int smfi_replacebody(SMFICTX* ctx, unsigned char* body, int len) {
  if (!ctx || len < 0 || (!body && len > 0)) return MI_FAILURE;
  std::string bytes = len > 0 ? std::string(reinterpret_cast<char*>(body), len) : std::string();
  return record(ctx, SMFIF_CHGBODY, Request{SMFIR_REPLBODY, std::move(bytes), "", 0});
}

int smfi_quarantine(SMFICTX* ctx, char* reason) {
  if (!ctx || !reason || !*reason) return MI_FAILURE;
  return record(ctx, SMFIF_QUARANTINE, Request{SMFIR_QUARANTINE, reason, "", 0});
}

}  // extern "C"
