// aliases.h: the `aliases` file, Courier/sendmail style, parsed into a hash map so a lookup costs
// O(1) however long the file is. Pure apart from reading `:include:` files through the caller's
// FileReader; any thread.
//
//   # comment
//   postmaster: root
//   staff: alice, bob@example.org, "|/usr/local/bin/archive --all", :include:lists/staff
//   list@hosted.example: carol,
//     dave                      <- a line starting with white space continues the previous one
//   alice: \alice, alice@elsewhere.example   <- "\name": deliver, no further alias lookup
//
// Keys are `local` (any local domain) or `local@domain`, case-insensitive. Targets are addresses
// (an unqualified one takes the domain of the address being expanded), programs ("|command",
// quoted when it holds a comma) and `:include:PATH` (relative to the including file's directory;
// its lines hold targets, separated by commas or newlines; includes nest, at most 10 deep). A
// missing include file, an include loop, an empty target list or a duplicate key is a ConfigError
// "file:line: reason". Alias loops are found by the Router, which knows which domains are local.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace estafette::routing {

struct AliasTarget {
  enum class Kind { Address, Program };
  Kind kind = Kind::Address;
  std::string value;       // the address (lower-cased), or the command after '|'
  bool no_expand = false;  // "\name": deliver to the mailbox, do not look the name up again
  uid_t owner = 0;         // owner of the file the target came from (programs run as it)
  bool operator==(const AliasTarget&) const = default;
};

struct Alias {
  std::vector<AliasTarget> targets;
  std::string where;  // "file:line" of the key
};

// A file's text and its owner, for :include:.
struct FileContent {
  std::string text;
  uid_t owner = 0;
};
// Reads a file by absolute path; nullopt with *error set when it cannot.
using FileReader =
    std::function<std::optional<FileContent>(const std::string& path, std::string* error)>;
// The real file system (std::ifstream + stat).
FileReader disk_reader();

class AliasMap final {
 public:
  // key: "local" or "local@domain", already lower-cased. nullptr when absent.
  const Alias* find(const std::string& key) const;
  std::size_t size() const { return entries_.size(); }
  const std::unordered_map<std::string, Alias>& entries() const { return entries_; }

  // Parses an aliases file; `name` is its path (errors and relative includes), `owner` its owner.
  static AliasMap parse(const std::string& text, const std::string& name, uid_t owner,
                        const FileReader& read);

 private:
  std::unordered_map<std::string, Alias> entries_;
};

// Splits a target list ("a, b, \"|cmd, x\", |cmd2") into items, trimmed; exposed for tests.
// A quoted item keeps no quotes. Fails (nullopt) on an unterminated quote.
std::optional<std::vector<std::string>> split_targets(std::string_view list);

}  // namespace estafette::routing
