// sink.h: estafette-bench sink: a fast SMTP sink on one epoll loop (lib/event) that counts what
// arrives. Plaintext and STARTTLS (lib/tls's server context and stream, a certificate given on
// the command line); each connection's conversation is a SinkSession.
// One per process, on the thread that calls run(). It owns its listener, connections and TLS
// context. run() returns after SIGTERM/SIGINT or once --count messages arrived; summary() is
// the stable key=value line. Errors: the constructor throws (std::system_error for the
// listener, tls::Error for the certificate, std::runtime_error for --record-ids); a broken
// connection is closed and counted, never fatal.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <unordered_map>

#include "bench/kit/options.h"
#include "bench/kit/timing.h"
#include "lib/base/fd.h"
#include "lib/event/acceptor.h"
#include "lib/event/loop.h"
#include "lib/tls/context.h"

namespace estafette::bench {

class Sink final {
 public:
  struct Counts {
    std::uint64_t messages = 0;  // answered 250
    std::uint64_t rejected = 0;  // answered with --fail
    std::uint64_t bytes = 0;
    std::uint64_t sessions = 0;  // connections accepted
    std::uint64_t tls_sessions = 0;
    std::uint64_t tls_resumed = 0;
    std::uint64_t errors = 0;    // connections that broke (reset, TLS failure)
    double first = 0, last = 0;  // wall clock (epoch s) of the first and last message
  };

  explicit Sink(const SinkOptions& options);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  std::uint16_t port() const { return port_; }
  void run();
  const Counts& counts() const { return counts_; }
  // "sink: messages=N rejected=N bytes=N sessions=N tls_sessions=N tls_resumed=N errors=N
  //  first=EPOCH last=EPOCH"
  std::string summary() const;

 private:
  class Connection;
  void accept(base::UniqueFd fd);
  void close(int fd);
  void on_message(bool accepted, std::size_t bytes, std::string_view id);

  SinkOptions options_;
  event::Loop loop_;
  base::UniqueFd listener_;
  std::uint16_t port_ = 0;
  std::unique_ptr<event::Acceptor> acceptor_;
  std::shared_ptr<const tls::ServerContext> tls_;
  std::ofstream ids_;
  std::unique_ptr<TimeRecorder> times_;
  Counts counts_;
  std::unique_ptr<StatsFile> stats_;  // after counts_: it reads them
  std::unordered_map<int, std::unique_ptr<Connection>> connections_;
};

}  // namespace estafette::bench
