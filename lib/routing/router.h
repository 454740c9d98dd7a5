// router.h: where an address goes, in one place for esmtpd (RCPT), courierd (destinations,
// bounces) and estafette-local (mailboxes). Built from the config and the files it names:
//   locals            more local domains, one per line (Courier's `locals`)
//   hosteddomains     virtual domains, one per line: user@domain has a mailbox only when
//                     `hosted_mailboxes` lists it
//   hosted_mailboxes  "user@domain: mailbox" (a directory under maildir_root, or absolute)
//   aliases           aliases.h
// A Router is immutable once loaded; reload builds a new one and swaps it in (the old one stays
// when the new files are broken). Lookups are hash-map lookups; the only file-system access is
// the mailbox check of local_mailboxes = existing (stat) and system (getpwnam), which a caller
// on an event loop defers (MailboxCheck) to a thread of its own (esmtpd/recipient_lookups.h).
// Errors: load() throws config::ConfigError "file:line: reason" (alias loops included); lookups
// never throw, they return SMTP replies.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lib/config/config.h"
#include "lib/routing/aliases.h"

namespace estafette::routing {

inline constexpr std::size_t kMaxAliasDepth = 20;

// A set of lower-case domains; ".example.com" entries stand for every subdomain.
class DomainSet final {
 public:
  void add(std::string domain);
  void merge(const DomainSet& other);
  bool contains(std::string_view domain) const;
  std::size_t size() const { return exact_.size() + suffix_.size(); }
  const std::unordered_set<std::string>& exact() const { return exact_; }

 private:
  std::unordered_set<std::string> exact_;
  std::unordered_set<std::string> suffix_;  // without the leading dot
};

// Per domain entry (as written: "example.com" or ".example.com"), its own `transport=`.
using TransportMap = std::unordered_map<std::string, config::Transport>;

// `locals` / `hosteddomains`: one domain per line (comments with '#'), optionally followed by
// `transport=maildir|lmtp:unix:/path|lmtp:inet:host:port` (into `transports` when given; a bad
// one throws ConfigError). `ignored` (when given) gets "file:line: why" for what a line holds
// but nothing uses: other words after the domain (Courier's alias domain), a domain listed twice.
DomainSet parse_domains(const std::string& text, const std::string& name,
                        std::vector<std::string>* ignored = nullptr,
                        TransportMap* transports = nullptr);
// `hosted_mailboxes`: "user@domain: mailbox" (or white space instead of ':'), keys lower-cased;
// a relative mailbox is taken under `root`. `where` (when given) gets each key's "file:line".
std::unordered_map<std::string, std::string> parse_mailbox_map(
    const std::string& text, const std::string& name, const std::string& root,
    std::unordered_map<std::string, std::string>* where = nullptr);

// A program delivery from an alias: "|command", run as `uid` (the alias file's owner; 0 means
// the configured program_user). Only the command travels in the queue and to the module, as the
// claim "this alias names this program"; the uid never does: estafette-local gets it from its
// own read of the alias files (Router::program_of), so whoever writes a queue record cannot
// choose a command or a user.
struct Program {
  uid_t uid = 0;
  std::string command;
};

// One recipient after alias expansion.
struct Target {
  std::string address;             // the final address, or for a program the alias address
  std::optional<Program> program;  // set: deliver to this program, not to `address`
};

// Whether expand() may check the mailbox of a local address on the file system / in NSS
// (local_mailboxes = existing: stat; system: getpwnam), which can block for as long as NSS does.
enum class MailboxCheck {
  Now,    // check it here (estafette-local, courierd, tests)
  Defer,  // do not: when the answer needs the check, return Expansion::deferred (esmtpd's loop)
  Skip,   // do not: take the mailbox as existing (esmtpd's record, after RCPT checked it)
};

struct Expansion {
  bool deferred = false;        // MailboxCheck::Defer and the check is needed: nothing else set
  std::string reply;            // non-empty: refuse the address with this SMTP reply
  bool ours = false;            // a local/hosted address or an alias: no relay permission needed
  std::vector<Target> targets;  // when reply is empty
};

struct Mailbox {
  std::string reply;         // non-empty: no such mailbox (5.1.1) or a bad name
  std::string path;          // the Maildir directory
  bool create = false;       // local_mailboxes = create: make it on first delivery
  std::optional<uid_t> uid;  // system users: deliver as this user
  gid_t gid = 0;
  std::string home;  // system users: the home directory (for ~/.forward)
  std::string user;  // system users: the login name
  // The domain's transport is LMTP: no path; the LMTP server checks the user at delivery.
  bool lmtp = false;
};

class Router final {
 public:
  // Only the config's own settings (local_domains), no files: what load() adds to.
  explicit Router(const config::Config& config);
  // Reads every file the config names. Throws config::ConfigError with file:line.
  static std::shared_ptr<const Router> load(const config::Config& config,
                                            const FileReader& read = disk_reader());

  bool is_local_domain(std::string_view domain) const;   // local_domains + locals
  bool is_hosted_domain(std::string_view domain) const;  // hosteddomains
  // How mail for a mailbox of `domain` is delivered: its own line's `transport=` (or its
  // closest ".parent" line's), else local_transport; nullptr when the domain is not ours.
  // Under LMTP, mailbox() accepts every local part: the LMTP server answers for it.
  const config::Transport* transport_of(std::string_view domain) const;
  // Aliases, then the mailbox check of each final local/hosted address. Remote addresses come
  // back as they are (ours = false unless an alias matched). An address without a domain (the
  // bare <postmaster> of RFC 5321 4.5.1) is taken in default_domain() first, so its targets
  // get that domain too ("postmaster: root" gives root@<default domain>, never "root@").
  // The mailbox check is the only part that may block; see MailboxCheck.
  Expansion expand(const std::string& address, MailboxCheck check = MailboxCheck::Now) const;
  // True when mailbox(address) would touch the file system or NSS (stat, getpwnam).
  bool mailbox_needs_io(const std::string& address) const;
  // The first local_domains entry that is not a ".suffix", else the host name, else localhost.
  std::string default_domain() const;
  // Where a final (already expanded) local or hosted address is delivered.
  Mailbox mailbox(const std::string& address) const;
  // The program that the alias `address` itself names with exactly `command` (the alias that
  // holds the "|command" target, as Target::address gives it), with the uid from this Router's
  // own read of the files; nullopt when that alias names no such program or programs are off.
  // Queue records written before the uid left them ("UID COMMAND") match too: the uid in
  // them is ignored, never used.
  std::optional<Program> program_of(const std::string& address, std::string_view command) const;

  std::size_t alias_count() const { return aliases_.size(); }

  // `estafette check-config --strict`, as "file:line: why" in the files' order: each alias
  // whose targets reach a local or hosted address without a mailbox (mailbox() refuses it:
  // "postmaster: root" under local_mailboxes = system) or cannot be delivered at all (a program
  // while allow_program_delivery = no), then the lines of locals and hosteddomains that load()
  // accepted but ignores. Looks mailboxes up (stat, getpwnam): never on an event loop.
  std::vector<std::string> strict_warnings() const;
  const config::Config& config() const { return config_; }

 private:
  const Alias* find_alias(const std::string& address) const;
  // "" or a reply; appends the targets of `address` at `depth`.
  std::string expand_into(const std::string& address, bool no_expand, std::size_t depth,
                          MailboxCheck check, std::vector<Target>& out,
                          std::unordered_set<std::string>& seen) const;
  // Throws ConfigError at the first alias that can reach itself.
  void check_loops() const;

  config::Config config_;  // a copy: the Router outlives reloads of whoever built it
  DomainSet locals_;
  DomainSet hosted_;
  std::unordered_map<std::string, std::string> hosted_mailboxes_;
  TransportMap transports_;  // from locals and hosteddomains lines with `transport=`
  AliasMap aliases_;
  std::vector<std::string> ignored_lines_;  // from parse_domains, for strict_warnings()
};

// The recipients of a queue record after expansion: each address expanded (an address that
// does not expand -- unknown by now -- is kept as it is, so that delivery bounces it), duplicates
// dropped, programs as (recipient index -> command; the recipient is the alias that names it).
struct ExpandedRecipients {
  std::vector<std::string> recipients;
  std::map<std::size_t, std::string> programs;
  // Per recipient, the index of the address it came from (for its DSN: NOTIFY and ORCPT).
  std::vector<std::size_t> origin;
};
// `check`: Now or Skip (the targets are the same either way, except that an address whose
// mailbox check fails is kept as given rather than qualified with the default domain).
ExpandedRecipients expand_recipients(const Router& router,
                                     const std::vector<std::string>& addresses,
                                     MailboxCheck check = MailboxCheck::Now);

// The mailbox directory name of a local part: unquoted and lower-cased, or nullopt when it is
// empty, starts with '.', or holds '/' or control characters.
std::optional<std::string> mailbox_name(std::string_view recipient);

}  // namespace estafette::routing
