// sender_login_map.h: which SASL logins may use which MAIL FROM addresses (the
// `sender_login_map` setting), a Postfix smtpd_sender_login_maps file read as a hash: table:
//
//   # comment
//   alice@example.com    alice
//   sales@example.com    alice, bob       <- several owners: commas and/or blanks
//   @example.org         carol            <- every address in example.org without its own line
//   info@example.org     dave,
//     erin                                <- a line starting with white space continues the last
//
// Lookup as Postfix does for a hash: table: the whole address first, then @domain; the first
// key found decides (an address's own line overrides its domain's). Keys and senders compare
// case-insensitively (Postfix folds hash: keys to lower case; a local part too, so that
// "Alice@" cannot dodge "alice@"'s line). A local part alone as a key (Postfix's "user" form,
// only for its local domains) is not supported and is an error, as is a key without '@'.
// Logins compare exactly: the passwd file's user names are case-sensitive.
//
// The null sender (MAIL FROM:<>) is never listed and never owned; Postfix does not check it
// (reject_sender_login_mismatch skips it), so the caller decides what it means.
//
// Pure apart from load() reading the file; the map is immutable after parsing and may be shared
// between threads (load_sender_login_map gives a shared_ptr to swap in on SIGHUP). Errors:
// nullopt / nullptr with *error = "FILE:LINE: reason" (or "FILE: reason" for the file itself).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace estafette::auth {

class SenderLoginMap final {
 public:
  // `name` is the file name used in error messages.
  static std::optional<SenderLoginMap> parse(std::string_view text, std::string_view name,
                                             std::string* error);

  // The logins that own sender (address line, else @domain line); nullptr when not listed.
  const std::vector<std::string>* owners(std::string_view sender) const;
  // Whether the map says anything about sender.
  bool lists(std::string_view sender) const { return owners(sender) != nullptr; }
  // Whether login is one of sender's owners. False for an unlisted sender.
  bool owns(std::string_view login, std::string_view sender) const;

  std::size_t size() const { return owners_.size(); }  // keys

 private:
  std::unordered_map<std::string, std::vector<std::string>> owners_;  // lower-case key
};

// Reads path (a regular file of at most 16 MiB) and parses it: the loader for start-up and
// SIGHUP (a failed reload keeps the old map). nullptr with *error on failure.
std::shared_ptr<const SenderLoginMap> load_sender_login_map(const std::string& path,
                                                            std::string* error);

}  // namespace estafette::auth
