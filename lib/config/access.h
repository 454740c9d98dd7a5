// access.h: esmtpd's access rules, Courier smtpaccess style with CIDR networks. Pure; any thread.
//   # network       action[,option...]                       [reply text for deny]
//   127.0.0.0/8     allow,RELAYCLIENT
//   192.0.2.0/24    deny                                     Mail from your network is refused
//   10.1            allow,dnsbl=off,ident=off               (Courier's dotted prefix = 10.1.0.0/16)
//   2001:db8::/32   allow,rdns=off,BOFHCHECKDNS=off
// The most specific network (longest prefix) that contains the client decides; with none, the
// client is allowed with the global settings. Options: RELAYCLIENT (may relay to any domain) and
// per-check overrides rdns, dnsbl, ident, BOFHCHECKDNS = on|off.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/cidr.h"

namespace estafette::config {

struct AccessRule {
  Cidr network;
  bool allow = true;
  bool relay_client = false;
  std::optional<bool> rdns, dnsbl, ident, sender_dns;  // unset: the global setting
  std::string reply;                                   // deny: text after the options
  std::string where;                                   // "file:line", for logs
};

class AccessRules final {
 public:
  // Throws ConfigError ("name:line: reason") on a malformed line.
  static AccessRules parse(const std::string& text, const std::string& name);
  // The most specific rule containing ip, or nullptr.
  const AccessRule* lookup(std::string_view ip) const;
  std::size_t size() const { return rules_.size(); }

 private:
  std::vector<AccessRule> rules_;  // most specific first
};

}  // namespace estafette::config
