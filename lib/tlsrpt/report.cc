#include "lib/tlsrpt/report.h"

#include <Poco/DeflatingStream.h>
#include <Poco/InflatingStream.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <ctime>
#include <exception>
#include <functional>
#include <sstream>
#include <stdexcept>

#include "lib/auth/base64.h"
#include "lib/base/dates.h"
#include "lib/smtp/address.h"

namespace estafette::tlsrpt {
namespace {

constexpr std::string_view kVersion = "v=TLSRPTv1";

bool is_wsp(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with_version(std::string_view record) {
  if (!record.starts_with(kVersion)) return false;
  std::string_view rest = trim(record.substr(kVersion.size()));
  return rest.empty() || rest.front() == ';';
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The mailbox of a mailto: URI body (RFC 6068): %XX decoded, "?headers" dropped.
std::optional<std::string> mailto_address(std::string_view body) {
  body = body.substr(0, body.find('?'));
  std::string out;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '%') {
      out += body[i];
      continue;
    }
    if (i + 2 >= body.size()) return std::nullopt;
    int hi = hex(body[i + 1]), lo = hex(body[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  auto mailbox = smtp::parse_mailbox(out);
  if (!mailbox || mailbox->domain.starts_with("[")) return std::nullopt;
  return mailbox->str();
}

std::string utc(std::int64_t t, const char* format) {
  return base::utc_text(t, format);
}

}  // namespace

RuaResult parse_txt_record(std::string_view record) {
  RuaResult r;
  if (!starts_with_version(record)) {
    r.reason = "no v=TLSRPTv1 record";
    return r;
  }
  std::string_view rest = record.substr(kVersion.size());
  bool have_rua = false;
  while (!rest.empty()) {
    std::size_t semi = rest.find(';');
    std::string_view field = trim(rest.substr(0, semi));
    rest.remove_prefix(semi == std::string_view::npos ? rest.size() : semi + 1);
    if (field.empty()) continue;
    if (!field.starts_with("rua=")) continue;  // unknown fields are ignored
    if (have_rua) {
      r.reason = "more than one rua field";
      return r;
    }
    have_rua = true;
    std::string_view uris = field.substr(4);
    while (!uris.empty()) {
      std::size_t comma = uris.find(',');
      std::string_view uri = trim(uris.substr(0, comma));
      uris.remove_prefix(comma == std::string_view::npos ? uris.size() : comma + 1);
      if (r.mailto.size() + r.https.size() >= kMaxRua) break;
      std::string lower = smtp::to_lower(uri.substr(0, 8));
      if (lower.starts_with("mailto:")) {
        if (auto address = mailto_address(uri.substr(7))) r.mailto.push_back(*address);
      } else if (lower.starts_with("https://") && uri.size() <= kMaxText) {
        r.https.emplace_back(uri);
      }
    }
  }
  if (!have_rua) {
    r.reason = "no rua field";
    return r;
  }
  if (r.mailto.empty() && r.https.empty()) {
    r.reason = "no usable rua URI";
    return r;
  }
  r.ok = true;
  return r;
}

RuaResult parse_txt_records(const std::vector<std::string>& records) {
  const std::string* found = nullptr;
  std::size_t count = 0;
  for (const auto& record : records) {
    if (!starts_with_version(record)) continue;
    ++count;
    found = &record;
  }
  if (count != 1) {
    RuaResult r;
    r.reason =
        count == 0 ? "no v=TLSRPTv1 TXT record" : std::to_string(count) + " v=TLSRPTv1 TXT records";
    return r;
  }
  return parse_txt_record(*found);
}

std::string report_filename(const ReportInfo& info, std::string_view domain) {
  return info.submitter + "!" + std::string(domain) + "!" + std::to_string(info.day_start) + "!" +
         std::to_string(info.day_start + 86399) + ".json.gz";
}

std::string report_id(const ReportInfo& info, std::string_view domain) {
  return utc(info.day_start, "%Y-%m-%dT%H:%M:%SZ") + "_" + std::string(domain) + "@" +
         info.submitter;
}

std::string report_json(const Aggregate& aggregate, std::string_view domain,
                        const ReportInfo& info) {
  Poco::JSON::Object report;
  report.set("organization-name", info.organization);
  Poco::JSON::Object::Ptr range = new Poco::JSON::Object;
  range->set("start-datetime", utc(info.day_start, "%Y-%m-%dT%H:%M:%SZ"));
  range->set("end-datetime", utc(info.day_start + 86399, "%Y-%m-%dT%H:%M:%SZ"));
  report.set("date-range", range);
  report.set("contact-info", info.contact);
  report.set("report-id", report_id(info, domain));
  Poco::JSON::Array::Ptr policies = new Poco::JSON::Array;
  for (const auto& [policy, counts] : aggregate.policies()) {
    if (policy.domain != domain) continue;
    Poco::JSON::Object::Ptr p = new Poco::JSON::Object;
    Poco::JSON::Object::Ptr what = new Poco::JSON::Object;
    what->set("policy-type", std::string(to_string(policy.type)));
    Poco::JSON::Array::Ptr strings = new Poco::JSON::Array;
    for (const auto& s : policy.strings) strings->add(s);
    what->set("policy-string", strings);
    what->set("policy-domain", policy.domain);
    Poco::JSON::Array::Ptr mx = new Poco::JSON::Array;
    for (const auto& m : policy.mx_hosts) mx->add(m);
    what->set("mx-host", mx);
    p->set("policy", what);
    Poco::JSON::Object::Ptr summary = new Poco::JSON::Object;
    summary->set("total-successful-session-count", static_cast<Poco::UInt64>(counts.successes));
    summary->set("total-failure-session-count", static_cast<Poco::UInt64>(counts.failures));
    p->set("summary", summary);
    if (!counts.details.empty()) {
      Poco::JSON::Array::Ptr details = new Poco::JSON::Array;
      for (const auto& [f, n] : counts.details) {
        Poco::JSON::Object::Ptr d = new Poco::JSON::Object;
        d->set("result-type", std::string(to_string(f.result)));
        if (!f.sending_ip.empty()) d->set("sending-mta-ip", f.sending_ip);
        if (!f.receiving_mx.empty()) d->set("receiving-mx-hostname", f.receiving_mx);
        if (!f.receiving_ip.empty()) d->set("receiving-ip", f.receiving_ip);
        if (!f.additional.empty()) d->set("additional-information", f.additional);
        d->set("failed-session-count", static_cast<Poco::UInt64>(n));
        details->add(d);
      }
      p->set("failure-details", details);
    }
    policies->add(p);
  }
  report.set("policies", policies);
  std::ostringstream out;
  report.stringify(out);
  return out.str();
}

std::string gzip(std::string_view data) {
  std::ostringstream out;
  {
    Poco::DeflatingOutputStream deflater(out, Poco::DeflatingStreamBuf::STREAM_GZIP);
    deflater.write(data.data(), static_cast<std::streamsize>(data.size()));
    deflater.close();
  }
  return out.str();
}

std::string gunzip(std::string_view data, std::size_t max_size) {
  if (!data.starts_with("\x1f\x8b")) throw std::runtime_error("not gzip data");
  try {
    std::istringstream in{std::string(data)};
    Poco::InflatingInputStream inflater(in, Poco::InflatingStreamBuf::STREAM_GZIP);
    std::string out;
    char buffer[8192];
    while (inflater.read(buffer, sizeof buffer) || inflater.gcount() > 0) {
      out.append(buffer, static_cast<std::size_t>(inflater.gcount()));
      if (out.size() > max_size) throw std::runtime_error("inflates beyond the limit");
    }
    if (inflater.bad()) throw std::runtime_error("corrupt gzip data");
    return out;
  } catch (const std::runtime_error&) {
    throw;
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("not gzip data: ") + e.what());
  }
}

std::string report_message(const ReportInfo& info, std::string_view domain, std::string_view rua,
                           std::string_view json, std::string_view date) {
  const std::string id = report_id(info, domain);
  const std::string boundary = "tlsrpt-" + std::to_string(info.day_start) + "-" +
                               std::to_string(std::hash<std::string_view>{}(domain));
  std::string m;
  m += "From: <" + info.contact + ">\r\n";
  m += "To: <" + std::string(rua) + ">\r\n";
  m += "Date: " + std::string(date) + "\r\n";
  m += "Subject: Report Domain: " + std::string(domain) + " Submitter: " + info.submitter +
       " Report-ID: <" + id + ">\r\n";
  m += "TLS-Report-Domain: " + std::string(domain) + "\r\n";
  m += "TLS-Report-Submitter: " + info.submitter + "\r\n";
  m += "Message-ID: <" + std::to_string(info.day_start) + "." + std::string(domain) + "." +
       std::to_string(std::hash<std::string_view>{}(rua)) + "@" + info.submitter + ">\r\n";
  m += "Auto-Submitted: auto-generated\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"" + boundary +
       "\"\r\n\r\n";
  m += "This is a MIME-formatted message.\r\n\r\n";
  m += "--" + boundary + "\r\n";
  m += "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
  m += "This is an aggregate TLS report (RFC 8460) from " + info.submitter + " for mail to " +
       std::string(domain) + " on " + utc(info.day_start, "%Y-%m-%d") + " (UTC).\r\n\r\n";
  m += "--" + boundary + "\r\n";
  m += "Content-Type: application/tlsrpt+gzip\r\n";
  m += "Content-Transfer-Encoding: base64\r\n";
  m += "Content-Disposition: attachment;\r\n\tfilename=\"" + report_filename(info, domain) +
       "\"\r\n\r\n";
  const std::string encoded = auth::base64_encode(gzip(json));
  for (std::size_t i = 0; i < encoded.size(); i += 76) m += encoded.substr(i, 76) + "\r\n";
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

}  // namespace estafette::tlsrpt
