// import_postfix.h: `estafette import-postfix [POSTFIX_DIR] OUT_DIR`: reads a Postfix
// configuration (main.cf and the hash:/texthash: source tables it names) and writes an
// Estafette configuration that routes mail as that Postfix would: OUT_DIR/estafette.conf and,
// beside it, aliases, esmtproutes, hosteddomains, hosted_mailboxes and dnsbl, as needed, and
// import-report.txt, one line per Postfix setting: what it became, or why it was not
// translated.
//
// The parsers (parse_main_cf, parse_table, expand) and the translation (translate) are pure:
// files come in through a Reader and leave as text in an Import, so tests run them on tables of
// strings. import_postfix() is the I/O around them: it reads with bounds (kMaxMainCfSize,
// kMaxTableSize, kMaxLineLength), refuses an OUT_DIR that holds anything or lies in POSTFIX_DIR,
// and writes only there (never into POSTFIX_DIR, never to the running system). Errors in the
// input are ImportError with "file:line: reason". Any thread.
#pragma once

#include <cstddef>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace estafette::admin::postfix {

inline constexpr std::size_t kMaxMainCfSize = 1 << 20;     // main.cf
inline constexpr std::size_t kMaxTableSize = 64 << 20;     // one lookup table's source
inline constexpr std::size_t kMaxLineLength = 64 << 10;    // a logical line, continued
inline constexpr int kMaxExpansionDepth = 20;              // $a -> $b -> ... ($a -> $a)
inline constexpr std::size_t kMaxExpansionSize = 1 << 20;  // one expanded value

struct ImportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// main.cf: name = value, a line starting with white space continues the one above, '#' lines
// are comments (only whole lines: "a = b # c" keeps "# c", as Postfix does). A name given
// twice: the last wins.
struct Param {
  std::string value;  // as written, not expanded
  int line = 0;
};
struct MainCf {
  std::string file;
  std::map<std::string, Param> params;
};
MainCf parse_main_cf(const std::string& text, const std::string& file);

// What Postfix's defaults depend on: the system's host name (myhostname's default) and the
// directory main.cf is in (config_directory).
struct System {
  std::string hostname;
  std::string config_directory = "/etc/postfix";
};

// Postfix's default for a parameter main.cf leaves unset (postconf -d of Postfix 3.7, the
// Debian 12 one, for the parameters the import reads), nullopt for one it does not know.
std::optional<std::string> default_value(const std::string& name, const System& system);

// The value of `name` with $name, ${name} and $(name) expanded, recursively (at most
// kMaxExpansionDepth deep, kMaxExpansionSize long), ${name?text} and ${name:text} as Postfix
// (text when name is non-empty, or empty); $$ is a '$'. Unset names take default_value(); a
// name Postfix does not know expands to "" and is added to `unknown` when given.
std::string expand(const MainCf& cf, const std::string& name, const System& system,
                   std::vector<std::string>* unknown = nullptr);

// A lookup table's source (what postmap or postalias read): "key value" lines, or
// "key: value" lines for an aliases file; white space at a line's start continues the one
// above, '#' lines are comments. Keys are lower-cased (postmap does). A key twice: the first
// wins (postmap warns and keeps the first).
struct TableEntry {
  std::string key;
  std::string value;
  int line = 0;
};
struct Table {
  std::string file;
  std::vector<TableEntry> entries;
};
Table parse_table(const std::string& text, const std::string& file, bool aliases_format);

// Reads a file for the translation: its text, or nullopt with *error set.
using Reader = std::function<std::optional<std::string>(const std::string& path, std::size_t max,
                                                        std::string* error)>;

// The outcome of a translation: the files to write (name in OUT_DIR -> text; estafette.conf
// always) and the report, one line per Postfix setting read (translated or not, and why).
struct Import {
  std::map<std::string, std::string> files;
  std::vector<std::string> translated;      // "NAME = VALUE -> what it became"
  std::vector<std::string> not_translated;  // "NAME = VALUE: why"
  std::string report() const;               // both lists, as import-report.txt holds them
};

// main.cf and the tables it names (read through `read`) -> Import.
// Throws ImportError for input that cannot be read or parsed (file:line: reason).
Import translate(const MainCf& cf, const System& system, const Reader& read);

// The command: reads POSTFIX_DIR/main.cf, translates, writes OUT_DIR (made when missing;
// refused when not empty), prints the report to `out`. Exit 0, 1 with the reason on `err`.
int import_postfix(const std::string& postfix_dir, const std::string& out_dir, std::FILE* out,
                   std::FILE* err);

}  // namespace estafette::admin::postfix
