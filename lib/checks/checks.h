// checks.h: the connection checks esmtpd runs for every client, all at once at connect and all
// asynchronous on the process's event loop: forward-confirmed reverse DNS, DNS black/allow lists
// (weighted, postscreen style) and an RFC 1413 IDENT query. No threads, no blocking call; each
// check is bounded by its own timeout (the resolver's timeout x tries, ident_timeout), so a dead
// DNS server or identd delays only the session that waits for it.
// Loop thread only. A ConnectionChecks calls `done` once, later on the loop (never inside
// start()), when every check has an answer; destroying it cancels everything it started and
// guarantees `done` never runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/dns/resolver.h"
#include "lib/event/loop.h"

namespace estafette::checks {

// --- forward-confirmed reverse DNS
enum class RdnsStatus {
  Off,          // not asked for
  Confirmed,    // a PTR name whose A/AAAA records include the client address
  Unconfirmed,  // PTR names exist, none resolves back to the client address
  NoPtr,        // NXDOMAIN / no PTR records
  TempFail,     // a lookup failed temporarily and nothing confirmed: never rejects by itself
};
const char* to_string(RdnsStatus status);

struct RdnsResult {
  RdnsStatus status = RdnsStatus::Off;
  std::string name = "unknown";        // the confirmed name, lower-case, no trailing dot
  std::vector<std::string> ptr_names;  // as answered (at most Settings::max_ptr_names looked at)
};

// --- DNS lists
// An answer filter, postscreen syntax: "127.0.0.2", "127.0.0.[2..11]", "127.0.[0..255].[1;3;5]"
// (each octet a number, a range [a..b] or a list [a;b;c]); an empty filter matches any answer.
class AnswerFilter final {
 public:
  static std::optional<AnswerFilter> parse(std::string_view text);  // nullopt when malformed
  bool matches(std::string_view ipv4) const;
  bool empty() const { return octets_.empty(); }
  const std::string& text() const { return text_; }

 private:
  std::vector<std::vector<std::pair<int, int>>> octets_;  // per octet: inclusive ranges
  std::string text_;
};

// The error for a DNS list's answer filter that does not parse, naming where it was configured
// ("file:line: bad answer filter '...' (expected ...)"), or "" when it parses. esmtpd stops on
// it at start; `estafette check-config` reports it (filters/start_checks.h).
std::string dnsbl_filter_error(std::string_view where, std::string_view filter);

struct DnsList {
  std::string zone;     // "bl1.test"
  AnswerFilter filter;  // which A answers count as listed (empty: any 127.0.0.0/8 answer)
  int weight = 1;       // negative: an allow-list
  std::string reply;    // text for the client; "*" = the list's TXT record; "" = a default text
};

struct DnsListHit {
  std::string zone;
  int weight = 0;
  std::vector<std::string> answers;  // the matching A answers
  std::string reply;                 // resolved text (TXT, fixed or the default)
};

struct DnsblResult {
  int score = 0;                        // sum of the weights of the lists that listed the client
  std::vector<DnsListHit> hits;         // lists that listed the client (with a matching answer)
  std::vector<std::string> tempfailed;  // zones whose lookup failed temporarily (not counted)
  bool blocked(int threshold) const { return threshold > 0 && score >= threshold; }
  // The reply of the hit with the largest positive weight (first listed on a tie); "" if none.
  std::string reply_text() const;
};

// "2.0.0.127.bl1.test" for 127.0.0.2; nibble form for IPv6; "" for a malformed address.
std::string dnsbl_query_name(std::string_view ip, std::string_view zone);

// --- IDENT (RFC 1413)
enum class IdentStatus {
  Off,      // not asked for
  Ok,       // USERID reply: user is set
  NoUser,   // an ERROR reply (NO-USER, HIDDEN-USER, ...)
  Refused,  // connection refused: no identd (ends the query at once)
  Timeout,  // no complete answer within ident_timeout
  Error,    // a malformed reply, wrong ports, or a socket error
};
const char* to_string(IdentStatus status);

struct IdentResult {
  IdentStatus status = IdentStatus::Off;
  std::string user;  // printable ASCII only, at most 64 characters (sanitised)
  std::string os;    // "UNIX", ...
};

// Parses one reply line (without CRLF) to the query "<client_port> , <server_port>":
// "6195, 25 : USERID : UNIX : joe" -> Ok/joe; "6195, 25 : ERROR : NO-USER" -> NoUser;
// anything else, or other ports -> Error. Pure.
IdentResult parse_ident_reply(std::string_view line, std::uint16_t client_port,
                              std::uint16_t server_port);

// --- all checks of one connection
struct Settings {
  bool rdns = true;
  std::size_t max_ptr_names = 5;  // PTR names forward-checked; the rest ignored
  std::vector<DnsList> dnsbl;     // all looked up at once (A, and TXT for "*" lists when listed)
  bool ident = true;
  std::chrono::milliseconds ident_timeout{10000};
  std::uint16_t ident_port = 113;  // the client's identd port (another one only in tests)
};

struct Endpoints {
  std::string client_ip;  // "127.0.0.2", "::1"
  std::uint16_t client_port = 0;
  std::string server_ip;  // our address on this connection: the ident query starts from it
  std::uint16_t server_port = 0;
};

struct Results {
  RdnsResult rdns;
  DnsblResult dnsbl;
  IdentResult ident;
  std::chrono::milliseconds elapsed{0};  // from start() to the last answer
};

class ConnectionChecks final {
 public:
  ConnectionChecks(event::Loop& loop, dns::Resolver& resolver, const Settings& settings,
                   Endpoints endpoints, std::function<void()> done);
  ~ConnectionChecks();
  ConnectionChecks(const ConnectionChecks&) = delete;
  ConnectionChecks& operator=(const ConnectionChecks&) = delete;

  void start();  // starts every enabled check; `done` follows later even if none is enabled
  bool finished() const { return finished_; }
  const Results& results() const { return results_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Results results_;
  bool finished_ = false;
};

}  // namespace estafette::checks
