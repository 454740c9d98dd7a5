#include "esmtpd/recipient_lookups.h"

#include <exception>
#include <memory>
#include <stdexcept>

namespace estafette::esmtpd {

smtp::RecipientVerdict RecipientLookups::expand(const routing::Router& router,
                                                const std::string& address) {
  auto e = router.expand(address, routing::MailboxCheck::Now);
  return smtp::RecipientVerdict{e.ours, e.reply};
}

RecipientLookups::RecipientLookups(event::Loop& loop, Options options, Lookup lookup)
    : lookup_(std::move(lookup)), pool_(loop, options, "esmtpd") {}

bool RecipientLookups::submit(std::shared_ptr<const routing::Router> router, std::string address,
                              Done done) {
  auto verdict = std::make_shared<smtp::RecipientVerdict>();
  return pool_.submit(
      [this, verdict, router = std::move(router), address]() mutable {
        try {
          *verdict = lookup_(*router, address);
        } catch (const std::exception& e) {
          throw std::runtime_error("recipient lookup <" + address + ">: " + e.what());
        }
        router.reset();  // a reloaded Router goes as soon as no lookup needs it
      },
      [verdict, done = std::move(done)](Outcome outcome) {
        done(outcome, outcome == Outcome::Answered ? *verdict : smtp::RecipientVerdict{});
      });
}

}  // namespace estafette::esmtpd
