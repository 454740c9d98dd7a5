// recipient_lookups.h: the RCPT checks that may block -- the mailbox check of local_mailboxes =
// existing (stat) and system (getpwnam through NSS, which may ask LDAP or NIS) -- run on a few
// threads of their own, so that a slow NSS delays only the sessions that wait for it, never the
// loop that every session of the process shares.
//
// The threads, bounds and lifetimes are event::BlockingPool's (lib/event/blocking_pool.h): submit
// and destroy on the loop thread; `lookup` runs on a worker thread (it must be thread-safe;
// Router is immutable, and each request holds its own Router, released on the worker as soon as
// the lookup is done); done() runs on the loop thread, never inside submit(). A full queue makes
// submit() refuse (the session answers 451 4.3.0 at once); a lookup over `timeout` or one that
// throws gets done(Failed) (451 4.4.3).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "lib/event/blocking_pool.h"
#include "lib/routing/router.h"
#include "lib/smtp/server_session.h"

namespace estafette::esmtpd {

class RecipientLookups final {
 public:
  // The blocking part: by default the Router's expansion with its mailbox check.
  using Lookup = std::function<smtp::RecipientVerdict(const routing::Router& router,
                                                      const std::string& address)>;
  using Outcome = event::BlockingPool::Outcome;  // Failed: timed out, or the lookup threw
  using Done = std::function<void(Outcome outcome, const smtp::RecipientVerdict& verdict)>;
  using Options = event::BlockingPool::Options;

  static smtp::RecipientVerdict expand(const routing::Router& router, const std::string& address);

  RecipientLookups(event::Loop& loop, Options options, Lookup lookup = expand);

  // Loop thread. False (done is never called) when max_queued requests wait already.
  bool submit(std::shared_ptr<const routing::Router> router, std::string address, Done done);
  std::size_t pending() const { return pool_.pending(); }  // submitted, done not yet called

 private:
  Lookup lookup_;
  event::BlockingPool pool_;  // last: its threads call lookup_
};

}  // namespace estafette::esmtpd
