#include "esmtpd/admission.h"

#include <cerrno>
#include <ctime>
#include <stdexcept>

#include "lib/base/paths.h"
#include "lib/checks/checks.h"

namespace estafette::esmtpd {

namespace {
std::string table_path(const std::string& run_dir) {
  if (!base::make_dirs(run_dir))
    throw std::runtime_error("cannot create " + run_dir + ": " + base::errno_text(errno));
  return run_dir + "/esmtpd.sessions";
}
}  // namespace

Admission::Admission(const config::Config& config, const std::string& run_dir)
    : config_(config), table_(table_path(run_dir), config.ipv6_prefix_length) {
  for (const auto& spec : config.dnsbl) {
    auto filter = checks::AnswerFilter::parse(spec.filter);
    if (!filter) throw config::ConfigError(checks::dnsbl_filter_error(spec.where, spec.filter));
    lists_.push_back({spec.zone, *filter, spec.weight, spec.reply});
  }
}

const checks::Settings* Admission::settings_for(bool rdns, bool dnsbl, bool ident) {
  dnsbl = dnsbl && !lists_.empty();
  if (!rdns && !dnsbl && !ident) return nullptr;
  auto& slot = variants_[(rdns ? 1 : 0) | (dnsbl ? 2 : 0) | (ident ? 4 : 0)];
  if (!slot) {
    slot = std::make_unique<checks::Settings>();
    slot->rdns = rdns;
    if (dnsbl) slot->dnsbl = lists_;
    slot->ident = ident;
    slot->ident_timeout = config_.ident_timeout;
  }
  return slot.get();
}

Admitted Admission::admit(const std::string& ip) {
  Admitted a;
  a.rule = config_.access.lookup(ip);
  const auto* rule = a.rule;
  if (rule && !rule->allow) {
    a.allowed = false;
    a.refusal = "554 5.7.1 " +
                (rule->reply.empty() ? "Access denied for [" + ip + "]" : rule->reply) + "\r\n";
    return a;
  }
  a.relay_client = (rule && rule->relay_client) || config::any_contains(config_.relay_clients, ip);
  // Like Postfix's anvil exceptions for mynetworks: our own clients are not limited.
  if (!a.relay_client && (config_.max_per_ip > 0 || config_.max_per_c > 0)) {
    auto now = table_.counts(ip);
    if (config_.max_per_ip > 0 && now.address >= config_.max_per_ip) {
      a.allowed = false;
      a.refusal = "421 4.7.0 Too many connections from [" + ip + "], try again later\r\n";
      return a;
    }
    if (config_.max_per_c > 0 && now.network >= config_.max_per_c) {
      a.allowed = false;
      a.refusal = "421 4.7.0 Too many connections from your network, try again later\r\n";
      return a;
    }
  }
  a.slot = table_.add(ip);
  auto pick = [&](const std::optional<bool>& override, bool global) {
    return override ? *override : global;
  };
  a.sender_dns =
      !a.relay_client && pick(rule ? rule->sender_dns : std::nullopt, config_.sender_dns_check);
  a.checks = settings_for(pick(rule ? rule->rdns : std::nullopt, config_.rdns_check),
                          pick(rule ? rule->dnsbl : std::nullopt, true),
                          pick(rule ? rule->ident : std::nullopt, config_.ident_check));
  return a;
}

namespace {
std::uint32_t now_seconds() {
  return static_cast<std::uint32_t>(std::time(nullptr));
}
}  // namespace

void Admission::auth_failed(const std::string& ip) {
  if (config_.auth_fail_limit == 0) return;
  table_.add_auth_failure(ip, now_seconds(),
                          static_cast<std::uint32_t>(config_.auth_fail_window.count()));
}

bool Admission::auth_blocked(const std::string& ip) const {
  if (config_.auth_fail_limit == 0 || ip.empty()) return false;
  return table_.auth_failures(ip, now_seconds(),
                              static_cast<std::uint32_t>(config_.auth_fail_window.count())) >=
         config_.auth_fail_limit;
}

}  // namespace estafette::esmtpd
