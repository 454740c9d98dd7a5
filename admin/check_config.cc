#include "admin/check_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include "filters/start_checks.h"
#include "lib/auth/passwd_file.h"
#include "lib/auth/sender_login_map.h"
#include "lib/base/fd.h"
#include "lib/base/privileges.h"
#include "lib/config/client_credentials.h"
#include "lib/config/config.h"
#include "lib/routing/router.h"
#include "lib/tls/context.h"

#include <ctime>

namespace estafette::admin {

CheckResult check_config(const std::string& path, bool strict) {
  CheckResult r;
  r.source = path.empty() ? config::Config{}.source : path;
  config::Config c;
  try {
    c = config::load_config(path);
  } catch (const std::exception& e) {  // ConfigError, or a file that cannot be read
    r.errors.push_back(e.what());
    return r;
  }
  r.source = c.source;
  r.warnings = c.warnings;
  if (strict)
    for (auto& w : config::ignored_settings(c)) r.warnings.push_back(std::move(w));
  r.errors = filters::start_errors(c);
  try {  // the routing files, as esmtpd, courierd and estafette-local load them
    auto router = routing::Router::load(c);
    if (strict)
      for (auto& w : router->strict_warnings()) r.warnings.push_back(std::move(w));
  } catch (const std::exception& e) {
    r.errors.push_back(e.what());
  }
  if (!c.sender_login_map.path.empty()) {
    std::string error;
    if (!auth::load_sender_login_map(c.sender_login_map.path, &error)) r.errors.push_back(error);
  }
  if (c.auth_backend.starts_with("file:")) {  // as esmtpd loads it: "PATH: line N: why"
    std::string error;
    if (!auth::PasswdFile::load(c.auth_backend.substr(5), &error))
      r.errors.push_back("auth_backend: " + error);
  }
  if (!c.tls_cert_files.empty()) {
    try {
      auto tls = tls::ServerContext::load(tls::server_settings(c));
      std::time_t now = std::time(nullptr);
      for (const auto& cert : tls->certificates()) {
        auto left = cert.not_after - now;
        if (left <= 0)
          r.warnings.push_back(cert.file + ": the certificate has expired");
        else if (left < std::chrono::duration_cast<std::chrono::seconds>(kExpiryWarning).count())
          r.warnings.push_back(cert.file + ": the certificate expires in " +
                               std::to_string(left / 86400) + " days");
      }
    } catch (const config::ConfigError& e) {  // relay_clientcerts: file:line already
      r.errors.push_back(e.what());
    } catch (const std::exception& e) {
      r.errors.push_back(c.source + ": tls_cert_file: " + e.what());
    }
  }
  // esmtpclient's side: its CA file, and the credentials it reads as root (same checks).
  try {
    tls::ClientContext::load(tls::client_settings(c));
  } catch (const std::exception& e) {
    r.errors.push_back(c.source + ": tls_ca_file: " + e.what());
  }
  if (!c.client_credentials.empty()) {
    try {
      config::load_client_credentials(c.client_credentials);
    } catch (const std::exception& e) {
      r.errors.push_back(std::string("client_credentials: ") + e.what());
    }
  }
  // Every daemon opens the log file at start (and appends as root before dropping): a missing
  // directory or one that cannot be written stops them all.
  if (!c.log_file.empty()) {
    auto given = c.given.find("log_file");
    std::string where = (given != c.given.end() ? given->second : c.source) + ": log_file: ";
    std::string dir = c.log_file.substr(0, c.log_file.rfind('/'));
    if (dir.empty()) dir = "/";
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      r.errors.push_back(where + "no directory " + dir + " for " + c.log_file);
    else if (::access(c.log_file.c_str(), F_OK) == 0 ? ::access(c.log_file.c_str(), W_OK) != 0
                                                     : ::access(dir.c_str(), W_OK) != 0)
      r.errors.push_back(where + "cannot write " + c.log_file + ": " + base::errno_text(errno));
  }
  // The daemons look the user up when they start; a missing one stops them.
  if (!c.user.empty() && !base::find_account(c.user)) {
    auto given = c.given.find("user");
    r.errors.push_back((given != c.given.end() ? given->second : c.source) +
                       ": user: no such user '" + c.user + "'");
  }
  return r;
}

}  // namespace estafette::admin
