// admission.h: what esmtpd decides about a client when it connects, before its session starts:
// the access rule that matches it (smtpaccess), the session limits (MAXPERIP, MAXPERC; the total
// is the Server's), and which connection checks run for it (the global settings, overridden by
// the rule); later, whether it may still try AUTH. Loop thread of one esmtpd process.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>

#include "esmtpd/session_table.h"
#include "lib/checks/checks.h"
#include "lib/config/config.h"

namespace estafette::esmtpd {

struct Admitted {
  bool allowed = true;
  std::string refusal;  // when not allowed: the whole reply line with CRLF (then close)
  bool relay_client = false;
  bool sender_dns = false;                   // BOFHCHECKDNS for this client
  const checks::Settings* checks = nullptr;  // nullptr: no check for this client
  SessionTable::Slot slot;                   // counts the session while it lives
  const config::AccessRule* rule = nullptr;  // for the log
};

class Admission final {
 public:
  // Throws config::ConfigError for a bad DNS list (its file:line) and std::runtime_error when
  // the session table cannot be opened.
  // The session table lives in run_dir (created if missing).
  Admission(const config::Config& config, const std::string& run_dir);

  Admitted admit(const std::string& ip);
  void sweep() { table_.sweep(); }
  // The brute-force limit (auth_fail_limit in auth_fail_window), across esmtpd processes.
  void auth_failed(const std::string& ip);
  bool auth_blocked(const std::string& ip) const;

 private:
  const checks::Settings* settings_for(bool rdns, bool dnsbl, bool ident);

  const config::Config& config_;
  SessionTable table_;
  std::vector<checks::DnsList> lists_;
  std::array<std::unique_ptr<checks::Settings>, 8> variants_;  // by rdns|dnsbl|ident bits
};

}  // namespace estafette::esmtpd
