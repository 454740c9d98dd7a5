#include "admin/mta_sts.h"

#include <fcntl.h>
#include <unistd.h>

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Logger.h>
#include <Poco/PatternFormatter.h>

#include <ctime>
#include <exception>
#include <optional>

#include "admin/user_dir.h"
#include "lib/base/dates.h"
#include "lib/config/resolver_options.h"
#include "lib/dns/resolver.h"
#include "lib/event/loop.h"
#include "lib/mtasts/policy_source.h"
#include "lib/tls/context.h"

namespace estafette::admin {
namespace {

std::string utc(std::int64_t t) {
  return base::utc_text(t, "%Y-%m-%dT%H:%M:%SZ");
}

void print(const mtasts::Decision& d, std::FILE* out) {
  std::fprintf(out, "domain: %s\n", d.domain.c_str());
  if (d.source == mtasts::Decision::Source::None) {
    std::fprintf(out, "policy: none\nreason: %s\n", d.note.c_str());
    return;
  }
  std::fprintf(out, "policy: %s\nsource: %s\nid: %s\nmax_age: %u\nexpires: %s\n",
               mtasts::to_string(d.mode), mtasts::to_string(d.source), d.id.c_str(),
               d.policy.max_age, utc(d.expires).c_str());
  for (const auto& mx : d.policy.mx) std::fprintf(out, "mx: %s\n", mx.c_str());
  if (!d.note.empty()) std::fprintf(out, "note: %s\n", d.note.c_str());
}

}  // namespace

int mta_sts(const config::Config& config, const std::string& name, bool cached_only, std::FILE* out,
            std::FILE* err) {
  auto domain = mtasts::normalize_domain(name);
  if (!domain) {
    std::fprintf(err, "estafette mta-sts: not a domain name: %s\n", name.c_str());
    return 2;
  }
  // The outcome goes to `out`; the library's log lines to standard error, only when they warn
  // (a fetch that failed, a cache file that is ignored).
  Poco::AutoPtr<Poco::FormattingChannel> channel(new Poco::FormattingChannel(
      new Poco::PatternFormatter("estafette mta-sts: %t"), new Poco::ConsoleChannel));
  Poco::Logger& logger = Poco::Logger::get("mta-sts");
  logger.setChannel(channel);
  logger.setLevel(Poco::Message::PRIO_WARNING);
  mtasts::Decision decision;
  try {
    if (auto problem = enter_user_dir(config, "mta-sts")) {
      std::fprintf(err, "estafette mta-sts: %s\n", problem->c_str());
      return 2;
    }
    mtasts::PolicyCache cache(config.mta_sts_dir(), config.mta_sts_cache_size);
    event::Loop loop;
    dns::Resolver resolver(loop, config::resolver_options(config));
    tls::ClientSettings settings;
    settings.ca_file = config.tls_ca_file;
    settings.session_cache_size = 0;
    mtasts::SourceOptions options;
    options.fetch.timeout = config.mta_sts_timeout;
    mtasts::PolicySource source(loop, resolver, tls::ClientContext::load(settings), cache, options);
    if (cached_only) {
      decision = source.cached(*domain);
    } else {
      auto lookup = source.lookup(*domain, [&](const mtasts::Decision& d) {
        decision = d;
        loop.stop();
      });
      loop.run();
    }
  } catch (const std::exception& e) {
    std::fprintf(err, "estafette mta-sts: %s\n", e.what());
    return 2;
  }
  print(decision, out);
  if (decision.source != mtasts::Decision::Source::None) return 0;
  return decision.failed ? 3 : 1;
}

}  // namespace estafette::admin
