// recipient_lookups.h: the RCPT checks that may block -- the mailbox check of local_mailboxes =
// existing (stat) and system (getpwnam through NSS, which may ask LDAP or NIS) -- run on a few
// threads of their own, so that a slow NSS delays only the sessions that wait for it, never the
// loop that every session of the process shares.
//
// Threads: construct, submit() and destroy on the loop thread; `lookup` runs on a worker thread
// (it must be thread-safe; Router is immutable, and each request holds its own Router); done()
// runs on the loop thread (from a Waker or a timer), never inside submit().
// Bounds: at most `max_queued` requests wait for a worker; submit() refuses more (the session
// answers 451 4.3.0 at once). A request not answered within `timeout` gets done(TimedOut) (451
// 4.4.3); its worker's late answer is dropped, and a queued request whose time is over is never
// started. So a stuck NSS holds at most `threads` threads and `max_queued` small requests.
// Ownership: the caller keeps its own object alive or wraps done with a CallbackGuard. The loop
// must outlive this object; destruction waits for the lookups in progress (at most one per
// thread) and calls no pending done.
// Errors: a lookup that throws is answered done(Failed) at once (a temporary failure).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "lib/event/loop.h"
#include "lib/routing/router.h"
#include "lib/smtp/server_session.h"

namespace estafette::esmtpd {

class RecipientLookups final {
 public:
  // The blocking part: by default the Router's expansion with its mailbox check.
  using Lookup = std::function<smtp::RecipientVerdict(const routing::Router& router,
                                                      const std::string& address)>;
  enum class Outcome { Answered, Failed };  // Failed: timed out, or the lookup threw
  using Done = std::function<void(Outcome outcome, const smtp::RecipientVerdict& verdict)>;
  struct Options {
    std::size_t threads = 2;
    std::size_t max_queued = 64;
    std::chrono::milliseconds timeout{10000};
  };

  static smtp::RecipientVerdict expand(const routing::Router& router, const std::string& address);

  RecipientLookups(event::Loop& loop, Options options, Lookup lookup = expand);
  ~RecipientLookups();
  RecipientLookups(const RecipientLookups&) = delete;
  RecipientLookups& operator=(const RecipientLookups&) = delete;

  // Loop thread. False (done is never called) when max_queued requests wait already.
  bool submit(std::shared_ptr<const routing::Router> router, std::string address, Done done);
  std::size_t pending() const { return waiting_.size(); }  // submitted, done not yet called

 private:
  struct Job {
    std::uint64_t id;
    std::shared_ptr<const routing::Router> router;
    std::string address;
    event::Clock::time_point deadline;
  };
  struct Answer {
    std::uint64_t id;
    bool ok;
    smtp::RecipientVerdict verdict;
  };
  struct Waiting {
    Done done;
    event::TimerId timer;
  };
  void work();     // worker threads
  void deliver();  // loop thread
  void answer(std::uint64_t id, Outcome outcome, const smtp::RecipientVerdict& verdict);

  event::Loop& loop_;
  Options options_;
  Lookup lookup_;
  event::Waker waker_;
  std::uint64_t next_id_ = 1;                           // loop thread only
  std::unordered_map<std::uint64_t, Waiting> waiting_;  // loop thread only
  std::mutex mutex_;
  std::condition_variable wanted_;
  std::deque<Job> queue_;             // guarded by mutex_
  std::vector<Answer> answers_;       // guarded by mutex_
  bool stopping_ = false;             // guarded by mutex_
  std::vector<std::thread> workers_;  // last: started when everything else is ready
};

}  // namespace estafette::esmtpd
