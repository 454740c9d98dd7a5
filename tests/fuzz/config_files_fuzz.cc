// config_files_fuzz.cc: libFuzzer harness for the parsers of the files an admin or a user
// writes: aliases (lib/routing/aliases.h, with :include: files served from memory), a user's
// .forward (modules/local/forward.h: written by any local user, read for root's
// estafette-local), estafette.conf (lib/config/config.h), esmtproutes, smtpaccess
// (lib/config/access.h), dnsbl (with lib/checks' answer filters), and the routing domain and
// mailbox lists (lib/routing/router.h). The first byte picks the parser, the rest is the file.
// Checks: a parser either returns a value that keeps its contract or throws ConfigError (any
// other exception or a crash is a bug); lookups in what it returned do not crash and agree with
// what was parsed; abort()s on any violation.
#include <sys/stat.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "lib/checks/checks.h"
#include "lib/config/access.h"
#include "lib/config/config.h"
#include "lib/routing/aliases.h"
#include "lib/routing/router.h"
#include "modules/local/forward.h"

namespace {

using namespace estafette;

void check(bool ok) {
  if (!ok) std::abort();
}

bool lower_case(std::string_view s) {
  for (char c : s)
    if (std::isupper(static_cast<unsigned char>(c))) return false;
  return true;
}

void aliases(const std::string& text) {
  // :include: files: "/etc/estafette/lists/<n>" is the same text again (nesting, loops),
  // anything else is missing.
  routing::FileReader reader = [&text](const std::string& path,
                                       std::string* error) -> std::optional<routing::FileContent> {
    if (path.rfind("/etc/estafette/lists/", 0) == 0) return routing::FileContent{text, 1000};
    *error = "no such file";
    return std::nullopt;
  };
  auto map = routing::AliasMap::parse(text, "/etc/estafette/aliases", 0, reader);
  for (const auto& [key, alias] : map.entries()) {
    check(!key.empty() && lower_case(key) && !alias.targets.empty() && !alias.where.empty());
    check(map.find(key) == &alias);
    for (const auto& t : alias.targets) {
      check(!t.value.empty());
      if (t.kind == routing::AliasTarget::Kind::Address) check(lower_case(t.value));
    }
  }
}

void forward(const std::string& text) {
  auto list = local::parse_forward(text, "/home/joe/.forward", "joe", "example.org",
                                   [](std::string_view d) { return d == "example.org"; });
  check(list.error.empty() || list.entries.empty());
  for (std::size_t i = 0; i < list.entries.size(); ++i) {
    const auto& e = list.entries[i];
    if (e.kind == local::ForwardEntry::Kind::Address) {
      check(lower_case(e.value) && e.value.find('@') != std::string::npos);
    } else if (e.kind == local::ForwardEntry::Kind::Program) {
      check(!e.value.empty());
    }
    for (std::size_t j = 0; j < i; ++j) check(!(list.entries[j] == e));
  }
}

void access(const std::string& text) {
  auto rules = config::AccessRules::parse(text, "smtpaccess");
  for (const char* ip : {"127.0.0.1", "10.1.2.3", "192.0.2.255", "::1", "2001:db8::1",
                         "::ffff:10.1.2.3", "0.0.0.0", "not an address"}) {
    if (const auto* r = rules.lookup(ip)) check(r->network.contains(ip) && !r->where.empty());
  }
}

void dnsbl(const std::string& text) {
  for (const auto& spec : config::parse_dnsbl(text, "dnsbl")) {
    check(!spec.zone.empty() && !spec.where.empty());
    auto filter = checks::AnswerFilter::parse(spec.filter);
    check(filter.has_value() == checks::dnsbl_filter_error(spec.where, spec.filter).empty());
    if (filter) {
      filter->matches("127.0.0.2");
      filter->matches("127.0.0");
      check(filter->matches("127.0.0.2") == filter->matches("127.0.0.2"));
    }
    checks::dnsbl_query_name("192.0.2.1", spec.zone);
    checks::dnsbl_query_name("2001:db8::1", spec.zone);
  }
  // The filter syntax on its own: the whole input as one filter.
  if (auto filter = checks::AnswerFilter::parse(text)) filter->matches("127.1.2.3");
}

void routes(const std::string& text) {
  config::Routes routes;
  config::parse_routes(text, "esmtproutes", routes);
  for (const auto& [domain, hop] : routes.exact) check(routes.lookup(domain).has_value());
  routes.lookup("a.b.example");
}

void conf(const std::string& text) {
  // parse_config reads the files a setting names: never devices that do not end.
  for (const char* device : {"/dev", "/proc", "/sys"})
    if (text.find(device) != std::string::npos) return;
  config::parse_config(text, "estafette.conf", "/nonexistent-fuzz-dir");
}

void domains(const std::string& text) {
  auto set = routing::parse_domains(text, "locals");
  for (const auto& d : set.exact()) check(set.contains(d));
  routing::parse_mailbox_map(text, "hosted_mailboxes", "/var/mail");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 7) {
      case 0:
        aliases(text);
        break;
      case 1:
        forward(text);
        break;
      case 2:
        access(text);
        break;
      case 3:
        dnsbl(text);
        break;
      case 4:
        routes(text);
        break;
      case 5:
        conf(text);
        break;
      default:
        domains(text);
        break;
    }
  } catch (const config::ConfigError&) {
    // the expected way to refuse a file
  }
  return 0;
}
