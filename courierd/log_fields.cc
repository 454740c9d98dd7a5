#include "courierd/log_fields.h"

#include <algorithm>
#include <cstdio>

#include "courierd/wall_clock.h"
#include "lib/smtp/address.h"
#include "lib/smtp/esmtp_params.h"

namespace estafette::courierd {

namespace {

constexpr std::size_t kMaxField = 512;
constexpr std::size_t kMaxReply = 1000;

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// "X.Y.Z" with X one digit and Y, Z of one to three digits: its length, else 0.
std::size_t enhanced_code_length(std::string_view s) {
  if (s.size() < 5 || !is_digit(s[0]) || s[1] != '.') return 0;
  std::size_t i = 2;
  for (int part = 0; part < 2; ++part) {
    std::size_t start = i;
    while (i < s.size() && is_digit(s[i]) && i - start < 4) ++i;
    if (i == start || i - start > 3) return 0;
    if (part == 0) {
      if (i >= s.size() || s[i] != '.') return 0;
      ++i;
    }
  }
  if (i < s.size() && s[i] != ' ' && s[i] != '\r' && s[i] != '\n') return 0;
  return i;
}

}  // namespace

std::string log_quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\r') continue;
    if (c == '\n') c = ' ';
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  while (out.size() > 1 && out.back() == ' ') out.pop_back();
  return out + "\"";
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", s < 0 ? 0.0 : s);
  return buf;
}

Delays split_delays(std::int64_t arrival, Time dispatched, Time now, std::uint64_t setup_ms,
                    std::uint64_t transfer_ms) {
  Delays d;
  d.queue = std::max<std::int64_t>(0, ms_of(dispatched) - arrival * 1000);
  const std::int64_t in_module = std::max<std::int64_t>(0, (now - dispatched).count());
  d.setup = static_cast<std::int64_t>(std::min<std::uint64_t>(setup_ms, in_module));
  d.transfer = static_cast<std::int64_t>(std::min<std::uint64_t>(transfer_ms, in_module - d.setup));
  d.before = in_module - d.setup - d.transfer;
  return d;
}

Delays queue_delays(std::int64_t arrival, Time now) {
  Delays d;
  d.queue = std::max<std::int64_t>(0, ms_of(now) - arrival * 1000);
  return d;
}

std::string delay_seconds(std::int64_t ms) {
  if (ms < 0) ms = 0;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%02lld", static_cast<long long>(ms / 1000),
                static_cast<long long>((ms % 1000) / 10));
  return buf;
}

std::string delays_text(const Delays& d) {
  return delay_seconds(d.queue) + "/" + delay_seconds(d.before) + "/" + delay_seconds(d.setup) +
         "/" + delay_seconds(d.transfer);
}

std::string dsn_code(std::string_view reply, base::DeliveryStatus status) {
  const char want = status == base::DeliveryStatus::Delivered  ? '2'
                    : status == base::DeliveryStatus::TempFail ? '4'
                                                               : '5';
  // "250 2.0.0 ok" or "250-2.0.0 ok": the code after the three-digit reply code.
  if (reply.size() > 4 && is_digit(reply[0]) && is_digit(reply[1]) && is_digit(reply[2]) &&
      (reply[3] == ' ' || reply[3] == '-')) {
    std::string_view rest = reply.substr(4);
    if (std::size_t n = enhanced_code_length(rest); n > 0 && rest[0] == want)
      return std::string(rest.substr(0, n));
  }
  return std::string(1, want) + ".0.0";
}

std::string orig_to_of(std::string_view rcpt, std::string_view orcpt) {
  if (orcpt.empty()) return "";
  auto o = smtp::parse_orcpt(orcpt);
  if (!o || o->address.empty() || smtp::to_lower(o->type) != "rfc822") return "";
  if (smtp::to_lower(o->address) == smtp::to_lower(rcpt)) return "";
  return log_text(o->address);
}

std::string log_text(std::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxField));
  for (char c : text.substr(0, kMaxField)) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  return out;
}

std::string attempt_line(const AttemptLine& l) {
  std::string out = "id=" + std::string(l.id) + " to=<" + log_text(l.rcpt) + ">";
  if (!l.orig_to.empty()) out += " orig_to=<" + log_text(l.orig_to) + ">";
  out += " relay=" + log_text(l.relay) + " delay=" + delay_seconds(l.delays.total()) +
         " delays=" + delays_text(l.delays) + " dsn=" + std::string(l.dsn) + l.extra +
         " status=" + std::string(l.status) + " (";
  std::string reply;
  for (char c : l.reply.substr(0, kMaxReply)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') continue;
    reply.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  while (!reply.empty() && reply.back() == ' ') reply.pop_back();
  return out + reply + ")";
}

}  // namespace estafette::courierd
