#include "esmtpd/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "esmtpd/reject_reason.h"
#include "lib/auth/dovecot_backend.h"
#include "lib/auth/sender_login_map.h"
#include "lib/base/log.h"
#include "lib/base/net.h"
#include "lib/base/paths.h"
#include "lib/base/privileges.h"
#include "lib/config/resolver_options.h"
#include "lib/submit/socket.h"

namespace estafette::esmtpd {

std::vector<base::UniqueFd> bind_listeners(const config::Config& config, std::size_t processes) {
  // One of several processes: share the addresses. Alone: no SO_REUSEPORT, so that a second
  // instance started by mistake fails to bind instead of silently taking half the connections.
  std::vector<base::UniqueFd> out;
  for (const auto& hp : config.listen)
    out.push_back(base::listen_tcp(hp.host, hp.port, processes > 1));
  return out;
}

std::vector<base::UniqueFd> adopt_listeners(const config::Config& config,
                                            const std::vector<int>& fds) {
  if (fds.size() != config.listen.size())
    throw std::runtime_error("--listen-fds: " + std::to_string(fds.size()) + " socket(s) for " +
                             std::to_string(config.listen.size()) + " listen address(es)");
  std::vector<base::UniqueFd> out;
  for (int fd : fds) out.emplace_back(fd);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (::getsockopt(out[i].get(), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
        !listening || !base::set_nonblocking(out[i].get()) || !base::set_cloexec(out[i].get()))
      throw std::runtime_error("--listen-fds: fd " + std::to_string(fds[i]) + " (for " +
                               config.listen[i].to_string() + ") is not a listening socket");
  }
  return out;
}

void set_peer_liveness(int fd, std::chrono::seconds timeout) {
  auto set = [fd](int level, int name, int value) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
      base::log("esmtpd").warning("setsockopt " + std::to_string(name) + ": " +
                                  base::errno_text(errno));
  };
  set(SOL_SOCKET, SO_KEEPALIVE, 1);
  set(IPPROTO_TCP, TCP_KEEPIDLE, kKeepaliveIdle);
  set(IPPROTO_TCP, TCP_KEEPINTVL, kKeepaliveInterval);
  set(IPPROTO_TCP, TCP_KEEPCNT, kKeepaliveProbes);
  set(IPPROTO_TCP, TCP_USER_TIMEOUT,
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()));
}

namespace {
// The ticket keys every esmtpd process shares (run/tls-ticket-keys); none when the file cannot
// be used (logged): each process then resumes only its own tickets.
std::optional<tls::TicketKeys> shared_ticket_keys(const config::Config& config) {
  const bool root = ::geteuid() == 0;
  std::optional<tls::FileOwner> owner;
  if (root && !config.user.empty())
    if (auto account = base::find_account(config.user))
      owner = tls::FileOwner{account->uid, account->gid};
  // Not as root for another user: estafetted made run/ theirs; a root-owned one would lock
  // them out of it.
  if (!root || config.user.empty()) base::make_dirs(config.run_dir());
  try {
    return tls::shared_ticket_keys(config.run_dir() + "/tls-ticket-keys",
                                   config.tls_session_timeout, owner);
  } catch (const tls::Error& e) {
    base::log("esmtpd").warning(std::string("TLS ticket keys not shared: ") + e.what());
    return std::nullopt;
  }
}
}  // namespace

std::shared_ptr<const tls::ServerContext> load_tls(const config::Config& config) {
  if (config.tls_cert_files.empty()) return nullptr;
  auto settings = tls::server_settings(config);
  if (config.tls_session_tickets) settings.ticket_keys = shared_ticket_keys(config);
  auto context = tls::ServerContext::load(settings);
  for (const auto& c : context->certificates()) {
    std::string names;
    for (const auto& n : c.names) names += (names.empty() ? "" : ",") + n;
    base::log("esmtpd").information("TLS certificate " + c.file + " " + c.key_type + " " +
                                    std::to_string(c.key_bits) + " bits names=" + names);
  }
  if (!config.tls_client_ca_file.empty())
    base::log("esmtpd").information(
        "TLS client certificates asked for, verified with " + config.tls_client_ca_file +
        (config.relay_clientcerts.empty() ? ""
                                          : "; " + std::to_string(context->trusted_client_count()) +
                                                " may relay (" + config.relay_clientcerts + ")"));
  return context;
}

namespace {
// The sender_login_map of the config; null when none. Throws config::ConfigError.
std::shared_ptr<const auth::SenderLoginMap> load_sender_logins(const config::Config& config) {
  if (config.sender_login_map.path.empty()) return nullptr;
  std::string error;
  auto map = auth::load_sender_login_map(config.sender_login_map.path, &error);
  if (!map) throw config::ConfigError(error);
  return map;
}

std::shared_ptr<const auth::PasswdFile> load_passwd(const std::string& path) {
  std::string error;
  auto file = auth::PasswdFile::load(path, &error);
  if (!file) throw config::ConfigError("auth_backend: " + error);
  return std::make_shared<const auth::PasswdFile>(std::move(*file));
}
}  // namespace

std::unique_ptr<auth::Backend> make_auth_backend(event::Loop& loop, const config::Config& config) {
  const std::string& spec = config.auth_backend;
  if (spec.empty()) return nullptr;
  std::size_t colon = spec.find(':');
  std::string kind = spec.substr(0, colon), target = spec.substr(colon + 1);
  if (kind == "dovecot")
    return std::make_unique<auth::DovecotBackend>(
        loop, auth::DovecotBackend::Options{.socket_path = target});
  return std::make_unique<auth::FileBackend>(loop, load_passwd(target));
}

Server::Server(event::Loop& loop, const config::Config& config,
               std::vector<base::UniqueFd> listeners, std::size_t processes, int submit_fd,
               RecipientLookups::Lookup lookup, RecipientLookups::Options lookup_options,
               std::shared_ptr<const tls::ServerContext> tls)
    : loop_(loop),
      config_(config),
      max_sessions_(config::session_share(config.max_sessions, processes)),
      router_(routing::Router::load(config)),
      tls_(tls ? std::move(tls) : load_tls(config)),
      metrics_(metrics::Writer::open(config.metrics_listen.has_value(), config.metrics_dir(),
                                     "estafette-esmtpd")),
      backend_(queue::open_queue(config.queue_backend, config.queue_dir(),
                                 {.verify_bodies = config.queue_verify_bodies})),
      resolver_(loop, config::resolver_options(config)),
      admission_(config, config.run_dir()),
      filters_(loop, config),
      memory_(config.message_memory_budget),
      courierd_(loop, config.courierd_socket(), config.courierd_notify_backlog),
      recipient_lookups_(loop, lookup_options, std::move(lookup)),
      auth_(make_auth_backend(loop, config)),
      sender_logins_(load_sender_logins(config)) {
  policy_.hostname = config.hostname;
  policy_.max_message_size = config.max_message_size;
  policy_.max_recipients = config.max_recipients;
  policy_.max_junk_commands = config.junk_command_limit;
  policy_.local_domains = config.local_domains;
  policy_.relay_domains = config.relay_domains;
  policy_.allow_untrusted_routing = config.allow_untrusted_routing;
  policy_.max_hops = config.max_hops;
  // On the loop: the maps only. A mailbox check (stat, getpwnam) is deferred to
  // recipient_lookups_; remote and aliased addresses never need one.
  policy_.check_recipient = [this](const std::string& address) {
    auto e = router_->expand(address, routing::MailboxCheck::Defer);
    return smtp::RecipientVerdict{e.ours, e.reply, e.deferred};
  };
  policy_.admit_buffered = [this](std::size_t declared) {
    if (memory_.admits(declared)) return true;
    base::log("esmtpd").warning(
        "message memory budget exhausted at DATA used=" + std::to_string(memory_.used()) +
        " limit=" + std::to_string(memory_.limit()));
    return false;
  };
  policy_.auth_allow_plaintext = config.auth_allow_plaintext;
  if (sender_logins_)
    policy_.sender_owned = [this](std::string_view login, std::string_view sender) {
      return sender_logins_->owns(login, sender);
    };
  policy_.auth_blocked = [this](const smtp::ClientInfo& c) {
    return admission_.auth_blocked(c.ip);
  };
  committer_ = std::make_unique<queue::Committer>(loop, *backend_, metrics_.get());
  resolver_.set_metrics(metrics_.get());
  filters_.set_metrics(metrics_.get());
  context_ = std::make_unique<ConnectionContext>(
      ConnectionContext{loop,
                        policy_,
                        *backend_,
                        *committer_,
                        [this](const std::string& id) {
                          metrics_->add(metrics::Metric::EsmtpdAccepted);
                          courierd_.notify(id);
                        },
                        config.smtpd_timeout,
                        config.max_line_length,
                        resolver_,
                        config.greet_wait,
                        config.dnsbl_action,
                        config.dnsbl_threshold,
                        counters_,
                        filters_,
                        router_,
                        config.session_deadline,
                        config.greet_pause,
                        memory_,
                        {config.max_header_count, config.max_header_size},
                        recipient_lookups_,
                        tls_,
                        config.tls_handshake_timeout,
                        auth_.get(),
                        admission_,
                        *metrics_});
  schedule_stats();
  if (tls_ && config.tls_session_tickets) schedule_tls_rotation();
  const bool shared = processes > 1;
  listeners_ = std::move(listeners);
  for (std::size_t i = 0; i < listeners_.size() && i < config.listen.size(); ++i) {
    const auto& hp = config.listen[i];
    int fd = listeners_[i].get();
    set_peer_liveness(fd, config.smtpd_timeout);
    acceptors_.push_back(std::make_unique<event::Acceptor>(
        loop_, fd, event::Acceptor::Options{.logger = "esmtpd"},
        [this, &hp](base::UniqueFd c, const sockaddr_storage& addr, socklen_t) {
          on_connection(std::move(c), addr, &hp);
        }));
    base::log("esmtpd").information(
        "listening on " + hp.to_string() + " max_sessions=" + std::to_string(max_sessions_) +
        (shared ? " processes=" + std::to_string(processes) + " reuseport=yes" : ""));
  }
  // Local submissions. An inherited socket is shared with the other esmtpd processes:
  // EPOLLEXCLUSIVE wakes one of them per connection rather than all.
  std::uint32_t events = EPOLLIN;
  if (submit_fd >= 0) {
    submit_listener_ = base::UniqueFd(submit_fd);
    if (!base::set_nonblocking(submit_fd) || !base::set_cloexec(submit_fd))
      throw std::system_error(errno, std::generic_category(), "--submit-fd");
    events |= EPOLLEXCLUSIVE;
  } else {
    submit_listener_ = submit::open_submit_socket(config);
    submit_path_ = submit::submit_socket_path(config);
  }
  submit_access_ = submit::SubmitAccess::resolve(config);
  for (const auto& name : submit_access_.unknown())
    base::log("esmtpd").warning("submit_allowed_users: no such user or group '" + name + "'");
  int sfd = submit_listener_.get();
  acceptors_.push_back(std::make_unique<event::Acceptor>(
      loop_, sfd, event::Acceptor::Options{.events = events, .logger = "esmtpd"},
      [this](base::UniqueFd c, const sockaddr_storage& addr, socklen_t) {
        on_connection(std::move(c), addr, nullptr);
      }));
  base::log("esmtpd").information("local submission on " + submit::submit_socket_path(config) +
                                  (submit_fd >= 0 ? " (from estafetted)" : ""));
}

void Server::reload() {
  try {
    router_ = routing::Router::load(config_);
    base::log("esmtpd").information("reloaded routing: aliases=" +
                                    std::to_string(router_->alias_count()));
  } catch (const std::exception& e) {
    base::log("esmtpd").error(std::string("reload failed, keeping the previous maps: ") + e.what());
  }
  if (sender_logins_) {
    try {
      sender_logins_ = load_sender_logins(config_);
      base::log("esmtpd").information("reloaded sender_login_map " + config_.sender_login_map.path);
    } catch (const std::exception& e) {
      base::log("esmtpd").error(
          std::string("sender_login_map reload failed, keeping the previous map: ") + e.what());
    }
  }
  if (auto* file = dynamic_cast<auth::FileBackend*>(auth_.get())) {
    const std::string& spec = config_.auth_backend;
    try {
      file->reload(load_passwd(spec.substr(spec.find(':') + 1)));
      base::log("esmtpd").information("reloaded auth_backend " + spec);
    } catch (const std::exception& e) {
      base::log("esmtpd").error(std::string("auth reload failed, keeping the previous file: ") +
                                e.what());
    }
  }
  reload_tls("reloaded TLS certificates");
}

void Server::reload_tls(const char* what) {
  if (!tls_) return;
  try {
    tls_ = load_tls(config_);
    base::log("esmtpd").information(what);
  } catch (const std::exception& e) {
    base::log("esmtpd").error(
        std::string("TLS reload failed, keeping the previous certificates: ") + e.what());
  }
}

// Session-ticket keys are renewed after half of tls_session_timeout (ticket_keys.h): each
// process loads its context again that often, and the first to find the keys old renews them.
void Server::schedule_tls_rotation() {
  auto every =
      std::max<std::chrono::seconds>(std::chrono::seconds(60), config_.tls_session_timeout / 2);
  tls_rotation_timer_ = loop_.add_timer(every, [this] {
    reload_tls("TLS session ticket keys checked for renewal");
    schedule_tls_rotation();
  });
}

// Every 10 minutes: the checks' figures, and rows of dead esmtpd processes swept.
void Server::schedule_stats() {
  stats_timer_ = loop_.add_timer(std::chrono::minutes(10), [this] {
    if (counters_.checked > 0) base::log("esmtpd").information(counters_.summary());
    admission_.sweep();
    schedule_stats();
  });
}

Server::~Server() {
  if (stats_timer_) loop_.cancel_timer(stats_timer_);
  if (tls_rotation_timer_) loop_.cancel_timer(tls_rotation_timer_);
  loop_.cancel_timer(drain_timer_);
  connections_.clear();
  shutdown();
}

// A new connection from one of the Acceptors (at most 64 per wake-up, as before).
void Server::on_connection(base::UniqueFd fd, const sockaddr_storage& addr,
                           const config::Listener* listener) {
  const bool local = listener == nullptr;
  metrics_->add(metrics::Metric::EsmtpdConnections);
  bool by_access = false;  // refused by smtpaccess or submit_allowed_users (else a limit)
  smtp::ClientInfo client;
  client.role = local ? smtp::ListenerRole::Submission : listener->role;
  client.tls_offered = tls_ != nullptr && !local;
  if (!local) {
    client.tls_required = listener->tls_required;
    client.auth_offered = auth_ && (listener->auth || listener->role != smtp::ListenerRole::Mx);
    client.auth_scram = client.auth_offered && auth_->offers_scram();
  }
  client.filtered = !filters_.empty();
  ConnectionChecksSetup setup;
  std::string refusal;
  if (local) {
    // A local submission: trusted to relay; connection checks do not apply (is_local()).
    ucred cred{};
    socklen_t clen = sizeof cred;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) {
      base::log("esmtpd").warning(std::string("SO_PEERCRED: ") + base::errno_text(errno));
      return;
    }
    client.local_uid = cred.uid;
    client.relay_client = true;
    if (!submit_access_.anyone() &&
        !submit_access_.allows(cred.uid, cred.gid, submit::peer_groups(fd.get()))) {
      base::log("esmtpd").warning("refused local submission uid=" + std::to_string(cred.uid) +
                                  " gid=" + std::to_string(cred.gid) + " pid=" +
                                  std::to_string(cred.pid) + ": not in submit_allowed_users");
      by_access = true;
      refusal = "554 5.7.1 " + config_.hostname + " local submission not allowed for uid " +
                std::to_string(cred.uid) + "\r\n";
    }
  } else {
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    client.ip = base::address_text(reinterpret_cast<const sockaddr*>(&addr), &client.port);
    setup.endpoints.client_ip = client.ip;
    setup.endpoints.client_port = client.port;
    sockaddr_storage local_addr{};
    socklen_t local_len = sizeof local_addr;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local_addr), &local_len) == 0)
      setup.endpoints.server_ip = base::address_text(reinterpret_cast<sockaddr*>(&local_addr),
                                                     &setup.endpoints.server_port);
  }
  if (connections_.size() >= max_sessions_) {
    base::log("esmtpd").warning("too many sessions (" + std::to_string(max_sessions_) +
                                " in this process); refusing " + client.peer_text());
    ++counters_.refused_limits;
    refusal = "421 4.7.0 " + config_.hostname + " Too many connections, try again later\r\n";
  } else if (!local) {
    Admitted a = admission_.admit(client.ip);
    if (!a.allowed) {
      bool by_rule = a.rule && !a.rule->allow;
      ++(by_rule ? counters_.refused_access : counters_.refused_limits);
      base::log("esmtpd").notice("refused [" + client.ip + "]: " +
                                 (by_rule ? "access rule " + a.rule->where : "session limit"));
      refusal = a.refusal;
      by_access = by_rule;
    }
    client.relay_client = a.relay_client;
    client.check_sender_domain = a.sender_dns;
    client.checks_pending = a.checks != nullptr;
    setup.settings = a.checks;
    setup.slot = std::move(a.slot);
  }
  auto number = next_number_++;
  auto conn = std::make_unique<Connection>(
      *context_, std::move(fd), std::move(client), number,
      [this](std::uint64_t n) {
        connections_.erase(n);
        if (drained_ && connections_.empty()) finish_drain();
      },
      std::move(setup));
  auto* raw = conn.get();
  connections_.emplace(number, std::move(conn));
  if (!refusal.empty()) {
    metrics_->add(metrics::Metric::EsmtpdRejects,
                  by_access ? static_cast<std::size_t>(metrics::Reject::Access)
                            : reject_label(smtp::Refusal::None, refusal));
    raw->reject(refusal);
  } else {
    raw->start();
  }
}

void Server::drain(std::function<void()> done) {
  base::log("esmtpd").information("draining: no new sessions; waiting for " +
                                  std::to_string(connections_.size()) + " to end");
  shutdown();
  drained_ = std::move(done);
  if (connections_.empty()) finish_drain();
}

// The sessions are over; the notices of their messages must reach courierd first (it may be
// restarting: the link reconnects every second), for at most kDrainNoticeWait.
void Server::finish_drain() {
  drain_timer_ = 0;
  if (!drained_) return;
  if (drain_deadline_ == event::Clock::time_point{})
    drain_deadline_ = loop_.now() + kDrainNoticeWait;
  if (!courierd_.settled() && loop_.now() < drain_deadline_) {
    drain_timer_ = loop_.add_timer(std::chrono::milliseconds(100), [this] { finish_drain(); });
    return;
  }
  if (!courierd_.settled())
    base::log("esmtpd").warning(
        "courierd did not take every notice before the drain ended; its next queue scan "
        "finds those messages");
  loop_.post(std::exchange(drained_, nullptr));
}

void Server::shutdown() {
  bool counted =
      counters_.checked > 0 || counters_.refused_access > 0 || counters_.refused_limits > 0;
  if (counted && !listeners_.empty()) base::log("esmtpd").information(counters_.summary());
  acceptors_.clear();  // removes their watches and retry timers
  listeners_.clear();
  if (submit_listener_) {
    submit_listener_.reset();
    if (!submit_path_.empty()) ::unlink(submit_path_.c_str());
  }
}

}  // namespace estafette::esmtpd
