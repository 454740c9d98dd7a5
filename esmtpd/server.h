// server.h: esmtpd's server: listening sockets, the set of live connections, the queue committer
// and the link to courierd. One per process, on the loop thread.
// With processes > 1 this is one of several esmtpd processes started by estafetted: every one
// binds the listen addresses with SO_REUSEPORT (the kernel spreads new connections among them),
// has its own committer and its own link to courierd, and takes max_sessions / processes.
// Local submissions (estafette-sendmail) arrive on the unix socket of lib/submit/socket.h:
// inherited from estafetted (submit_fd >= 0, shared by every esmtpd process: each accepts what it
// can, EAGAIN is normal) or, when esmtpd runs alone (submit_fd < 0), bound here and removed at
// shutdown. Each local session is logged with the submitter's uid (SO_PEERCRED); one that
// submit_allowed_users does not name gets 554 5.7.1 instead of the greeting. Every listener is
// watched by an event::Acceptor: out of fds or memory, it pauses instead of spinning (see
// lib/event/acceptor.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "esmtpd/admission.h"
#include "esmtpd/connection.h"
#include "esmtpd/courierd_link.h"
#include "esmtpd/message_memory.h"
#include "filters/filter_set.h"
#include "lib/auth/backend.h"
#include "lib/auth/sender_login_map.h"
#include "lib/base/fd.h"
#include "lib/config/config.h"
#include "lib/event/acceptor.h"
#include "lib/event/loop.h"
#include "lib/metrics/shm_file.h"
#include "lib/queue/queue.h"
#include "lib/routing/router.h"
#include "lib/submit/access.h"
#include "lib/tls/context.h"

namespace estafette::esmtpd {

// Binds every `listen` address (SO_REUSEPORT when processes > 1), one socket per address in
// config order. esmtpd calls it before it drops privileges (port 25 needs root); throws
// std::system_error naming the address.
std::vector<base::UniqueFd> bind_listeners(const config::Config& config, std::size_t processes);

// The listening sockets estafetted bound for us (--listen-fds), one per `listen` address in
// config order: checked to be listening sockets, made non-blocking and close-on-exec. Throws
// std::runtime_error when the count does not match or one is not a listening socket.
std::vector<base::UniqueFd> adopt_listeners(const config::Config& config,
                                            const std::vector<int>& fds);

// A dead or vanished client is found by TCP itself, also while its session waits (a commit, a
// filter): keepalive probes after kKeepaliveIdle s of silence, and TCP_USER_TIMEOUT = `timeout`
// (smtpd_timeout) for data it does not acknowledge. Set on a listening socket: every accepted
// socket inherits them (Linux), so it costs nothing per connection. Failures are logged.
inline constexpr int kKeepaliveIdle = 60, kKeepaliveInterval = 15, kKeepaliveProbes = 4;
void set_peer_liveness(int fd, std::chrono::seconds timeout);

// The TLS context of the config's certificates, or null when none is configured. esmtpd loads it
// before it drops privileges (the key may be root's); throws tls::Error naming the file.
std::shared_ptr<const tls::ServerContext> load_tls(const config::Config& config);

// The auth backend of `auth_backend` (null when none): the passwd file read now (throws
// config::ConfigError naming the file and line), or Dovecot's socket (connected on first use).
std::unique_ptr<auth::Backend> make_auth_backend(event::Loop& loop, const config::Config& config);

class Server final {
 public:
  // `listeners`: from bind_listeners(config, processes).
  // `lookup`: the RCPT check that may block, and its threads, queue and timeout (tests inject
  // slow ones). `tls`: from load_tls(config); null: loaded here when certificates are configured.
  Server(event::Loop& loop, const config::Config& config, std::vector<base::UniqueFd> listeners,
         std::size_t processes = 1, int submit_fd = -1,
         RecipientLookups::Lookup lookup = RecipientLookups::expand,
         RecipientLookups::Options lookup_options = {},
         std::shared_ptr<const tls::ServerContext> tls = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Stops accepting; returns once no connection waits for a commit (called on SIGTERM).
  void shutdown();
  // Stops accepting and lets every session end by itself (estafetted started a newer esmtpd to
  // take the listening sockets, `estafette reload`); calls `done` once none is left (at once
  // when none is open). Sessions stay bounded by their timeouts and session_deadline.
  void drain(std::function<void()> done);
  std::size_t sessions() const { return connections_.size(); }
  std::size_t max_sessions() const { return max_sessions_; }
  // SIGHUP: reload the routing maps (aliases, locals, hosted domains), the TLS certificates
  // and keys and the auth passwd file (from the same files, as the user esmtpd runs as); a
  // broken file is logged with the reason and the previous maps or context stay. Sessions in
  // progress keep theirs.
  void reload();

 private:
  // `listener`: the one it came in on; null: a local submission (counts as submission).
  void on_connection(base::UniqueFd fd, const sockaddr_storage& addr,
                     const config::Listener* listener);
  void schedule_stats();
  void schedule_tls_rotation();
  void reload_tls(const char* what);  // logs `what` when it worked

  event::Loop& loop_;
  const config::Config& config_;
  std::size_t max_sessions_;
  std::shared_ptr<const routing::Router> router_;  // swapped by reload(); RCPT and records use it
  std::shared_ptr<const tls::ServerContext> tls_;  // null: no certificate; swapped by reload()
  smtp::ServerPolicy policy_;
  std::unique_ptr<metrics::Writer> metrics_;  // before the committer, whose thread counts too
  std::unique_ptr<queue::Backend> backend_;
  std::unique_ptr<queue::Committer> committer_;
  dns::Resolver resolver_;
  Admission admission_;
  CheckCounters counters_;
  filters::FilterSet filters_;
  MessageMemory memory_;  // messages held in memory by every session (filtered ones)
  event::TimerId stats_timer_ = 0;
  event::TimerId tls_rotation_timer_ = 0;
  CourierdLink courierd_;
  RecipientLookups recipient_lookups_;
  std::unique_ptr<auth::Backend> auth_;  // null: no auth_backend
  // sender_login_map (null: none); reload() swaps it. Sessions ask it at MAIL.
  std::shared_ptr<const auth::SenderLoginMap> sender_logins_;
  std::unique_ptr<ConnectionContext> context_;
  std::vector<base::UniqueFd> listeners_;
  base::UniqueFd submit_listener_;
  submit::SubmitAccess submit_access_;  // submit_allowed_users, resolved at start
  std::string submit_path_;  // set when this process bound the socket itself: unlinked at shutdown
  // One per listener (TCP and submission); destroyed before their fds are closed.
  std::vector<std::unique_ptr<event::Acceptor>> acceptors_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::uint64_t next_number_ = 1;
  void finish_drain();
  static constexpr auto kDrainNoticeWait = std::chrono::seconds(30);
  std::function<void()> drained_;              // drain(): called when the last connection is gone
  event::Clock::time_point drain_deadline_{};  // set when the last session has ended
  event::TimerId drain_timer_ = 0;
};

}  // namespace estafette::esmtpd
