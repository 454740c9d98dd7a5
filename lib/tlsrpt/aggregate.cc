#include "lib/tlsrpt/aggregate.h"

#include "lib/base/dates.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <exception>
#include <sstream>
#include <utility>

namespace estafette::tlsrpt {
namespace {

constexpr std::array<std::pair<PolicyType, const char*>, 3> kPolicyTypes = {{
    {PolicyType::Tlsa, "tlsa"},
    {PolicyType::Sts, "sts"},
    {PolicyType::NoPolicyFound, "no-policy-found"},
}};

constexpr std::array<std::pair<ResultType, const char*>, 11> kResultTypes = {{
    {ResultType::StarttlsNotSupported, "starttls-not-supported"},
    {ResultType::CertificateHostMismatch, "certificate-host-mismatch"},
    {ResultType::CertificateExpired, "certificate-expired"},
    {ResultType::CertificateNotTrusted, "certificate-not-trusted"},
    {ResultType::ValidationFailure, "validation-failure"},
    {ResultType::TlsaInvalid, "tlsa-invalid"},
    {ResultType::DnssecInvalid, "dnssec-invalid"},
    {ResultType::DaneRequired, "dane-required"},
    {ResultType::StsPolicyFetchError, "sts-policy-fetch-error"},
    {ResultType::StsPolicyInvalid, "sts-policy-invalid"},
    {ResultType::StsWebpkiInvalid, "sts-webpki-invalid"},
}};

// The journal's shape is flat: an object holding arrays of strings or of flat objects. Anything
// nested deeper is refused before the JSON parser sees it (its object tree recurses).
bool shallow(std::string_view line) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : line) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > 3) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

Poco::JSON::Array::Ptr string_array(const std::vector<std::string>& strings) {
  Poco::JSON::Array::Ptr a = new Poco::JSON::Array;
  for (const auto& s : strings) a->add(s);
  return a;
}

// A string member within bounds, else nullopt.
std::optional<std::string> text_member(const Poco::JSON::Object& o, const std::string& key) {
  if (!o.has(key)) return std::string();
  Poco::Dynamic::Var v = o.get(key);
  if (!v.isString()) return std::nullopt;
  std::string s = v.extract<std::string>();
  if (s.size() > kMaxText || bounded_text(s) != s) return std::nullopt;
  return s;
}

std::optional<std::uint64_t> count_member(const Poco::JSON::Object& o, const std::string& key) {
  if (!o.has(key)) return 0;
  Poco::Dynamic::Var v = o.get(key);
  if (!v.isInteger()) return std::nullopt;
  if (v.isSigned()) {
    Poco::Int64 n = v.convert<Poco::Int64>();
    if (n < 0) return std::nullopt;
    if (static_cast<std::uint64_t>(n) > kMaxCount) return std::nullopt;
    return static_cast<std::uint64_t>(n);
  }
  Poco::UInt64 n = v.convert<Poco::UInt64>();
  if (n > kMaxCount) return std::nullopt;
  return n;
}

std::optional<std::vector<std::string>> strings_member(const Poco::JSON::Object& o,
                                                       const std::string& key) {
  std::vector<std::string> out;
  if (!o.has(key)) return out;
  Poco::JSON::Array::Ptr a = o.getArray(key);
  if (!a || a->size() > kMaxStrings) return std::nullopt;
  for (std::size_t i = 0; i < a->size(); ++i) {
    Poco::Dynamic::Var v = a->get(static_cast<unsigned>(i));
    if (!v.isString()) return std::nullopt;
    std::string s = v.extract<std::string>();
    if (s.size() > kMaxText || bounded_text(s) != s) return std::nullopt;
    out.push_back(std::move(s));
  }
  return out;
}

void cut(std::vector<std::string>& strings) {
  if (strings.size() > kMaxStrings) strings.resize(kMaxStrings);
  for (auto& s : strings) s = bounded_text(s);
}

Policy bounded(const Policy& p) {
  Policy b = p;
  b.domain = bounded_text(b.domain);
  cut(b.strings);
  cut(b.mx_hosts);
  return b;
}

}  // namespace

const char* to_string(PolicyType type) {
  for (const auto& [t, name] : kPolicyTypes)
    if (t == type) return name;
  return "no-policy-found";
}

std::optional<PolicyType> parse_policy_type(std::string_view text) {
  for (const auto& [t, name] : kPolicyTypes)
    if (text == name) return t;
  return std::nullopt;
}

const char* to_string(ResultType type) {
  for (const auto& [t, name] : kResultTypes)
    if (t == type) return name;
  return "validation-failure";
}

std::optional<ResultType> parse_result_type(std::string_view text) {
  for (const auto& [t, name] : kResultTypes)
    if (text == name) return t;
  return std::nullopt;
}

std::string utc_day(std::int64_t unix_time) {
  return base::utc_text(unix_time, "%Y-%m-%d");
}

std::string bounded_text(std::string_view text) {
  std::string out(text.substr(0, kMaxText));
  for (char& c : out)
    if (c < 0x20 || c > 0x7e) c = '?';
  return out;
}

Counts* Aggregate::slot(const Policy& policy) {
  Policy key = bounded(policy);
  auto it = policies_.find(key);
  if (it != policies_.end()) return &it->second;
  if (policies_.size() >= limits_.policies) return nullptr;
  return &policies_[std::move(key)];
}

void Aggregate::add_success(const Policy& policy, std::uint64_t sessions) {
  Counts* c = slot(policy);
  if (!c) {
    dropped_ += sessions;
    return;
  }
  c->successes += sessions;
}

void Aggregate::add_failure(const Policy& policy, const Failure& failure, std::uint64_t sessions) {
  Counts* c = slot(policy);
  if (!c) {
    dropped_ += sessions;
    return;
  }
  c->failures += sessions;
  Failure key{failure.result, bounded_text(failure.sending_ip), bounded_text(failure.receiving_mx),
              bounded_text(failure.receiving_ip), bounded_text(failure.additional)};
  auto it = c->details.find(key);
  if (it != c->details.end()) {
    it->second += sessions;
  } else if (c->details.size() < limits_.details) {
    c->details.emplace(std::move(key), sessions);
  } else {
    ++dropped_;  // counted in the total, without a row of its own
  }
}

std::vector<std::string> Aggregate::domains() const {
  std::vector<std::string> out;
  for (const auto& [policy, counts] : policies_)
    if (out.empty() || out.back() != policy.domain) out.push_back(policy.domain);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string Aggregate::journal() const {
  std::string out;
  for (const auto& [policy, counts] : policies_) {
    Poco::JSON::Object line;
    line.set("type", std::string(to_string(policy.type)));
    line.set("domain", policy.domain);
    line.set("strings", string_array(policy.strings));
    line.set("mx", string_array(policy.mx_hosts));
    line.set("ok", static_cast<Poco::UInt64>(counts.successes));
    line.set("fail", static_cast<Poco::UInt64>(counts.failures));
    Poco::JSON::Array::Ptr details = new Poco::JSON::Array;
    for (const auto& [f, n] : counts.details) {
      Poco::JSON::Object::Ptr d = new Poco::JSON::Object;
      d->set("result", std::string(to_string(f.result)));
      d->set("sip", f.sending_ip);
      d->set("mx", f.receiving_mx);
      d->set("rip", f.receiving_ip);
      d->set("info", f.additional);
      d->set("n", static_cast<Poco::UInt64>(n));
      details->add(d);
    }
    line.set("details", details);
    std::ostringstream text;
    line.stringify(text);
    out += text.str();
    out += '\n';
  }
  return out;
}

std::size_t Aggregate::merge_journal(std::string_view text) {
  std::size_t refused = 0;
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty()) continue;
    if (line.size() > kMaxJournalLine || !shallow(line)) {
      ++refused;
      continue;
    }
    try {
      Poco::JSON::Parser parser;
      Poco::Dynamic::Var parsed = parser.parse(std::string(line));
      Poco::JSON::Object::Ptr o = parsed.extract<Poco::JSON::Object::Ptr>();
      if (!o) throw std::runtime_error("not an object");
      Policy p;
      auto type = text_member(*o, "type");
      auto ptype = type ? parse_policy_type(*type) : std::nullopt;
      auto domain = text_member(*o, "domain");
      auto strings = strings_member(*o, "strings");
      auto mx = strings_member(*o, "mx");
      auto ok = count_member(*o, "ok");
      auto fail = count_member(*o, "fail");
      if (!ptype || !domain || domain->empty() || !strings || !mx || !ok || !fail)
        throw std::runtime_error("bad policy");
      p.type = *ptype;
      p.domain = *domain;
      p.strings = std::move(*strings);
      p.mx_hosts = std::move(*mx);
      std::vector<std::pair<Failure, std::uint64_t>> details;
      std::uint64_t detailed = 0;
      if (o->has("details")) {
        Poco::JSON::Array::Ptr a = o->getArray("details");
        if (!a || a->size() > limits_.details) throw std::runtime_error("bad details");
        for (std::size_t i = 0; i < a->size(); ++i) {
          Poco::JSON::Object::Ptr d = a->getObject(static_cast<unsigned>(i));
          if (!d) throw std::runtime_error("bad detail");
          auto result = text_member(*d, "result");
          auto rtype = result ? parse_result_type(*result) : std::nullopt;
          auto sip = text_member(*d, "sip");
          auto dmx = text_member(*d, "mx");
          auto rip = text_member(*d, "rip");
          auto info = text_member(*d, "info");
          auto n = count_member(*d, "n");
          if (!rtype || !sip || !dmx || !rip || !info || !n || *n == 0)
            throw std::runtime_error("bad detail");
          details.push_back({Failure{*rtype, *sip, *dmx, *rip, *info}, *n});
          detailed += *n;
        }
      }
      if (detailed > *fail) throw std::runtime_error("more failure rows than failures");
      if (*ok == 0 && *fail == 0) throw std::runtime_error("no sessions");
      if (*ok) add_success(p, *ok);
      for (const auto& [f, n] : details) add_failure(p, f, n);
      if (*fail > detailed) {
        // Failures beyond the rows the writer kept: in the total only.
        if (Counts* c = slot(p))
          c->failures += *fail - detailed;
        else
          dropped_ += *fail - detailed;
      }
    } catch (const std::exception&) {  // Poco's exceptions too
      ++refused;
    }
  }
  return refused;
}

}  // namespace estafette::tlsrpt
