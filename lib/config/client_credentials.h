// client_credentials.h: the client_credentials file, AUTH user names and passwords for
// smarthosts and routes (Postfix's smtp_sasl_password_maps). One line per destination:
//   # destination            user           password (the rest of the line)
//   [smtp.example.net]:587   relay@example  s3cret words
//   mail.example.org:465     bob            pa55
// The destination is named as in esmtproutes/destinations ("[host]:port", "host:port", or a
// domain for mail delivered to its MX hosts). The file holds secrets: load_client_credentials()
// refuses one that is not a regular file owned by root (or by the reading user) or that group or
// others may read or write, so a leaked copy is the admin's doing, never ours. esmtpclient reads
// it as root before it drops privileges. Pure apart from the load; any thread.
// Errors: ConfigError "name:line: reason" or "path: reason".
#pragma once

#include <map>
#include <string>

namespace estafette::config {

struct Credentials {
  std::string user;
  std::string password;
  bool operator==(const Credentials&) const = default;
};

struct CredentialTable {
  std::map<std::string, Credentials> entries;  // key as DestinationTable's (lower case)
  const Credentials* find(const std::string& destination_key) const;
};

CredentialTable parse_client_credentials(const std::string& text, const std::string& name);
CredentialTable load_client_credentials(const std::string& path);

}  // namespace estafette::config
