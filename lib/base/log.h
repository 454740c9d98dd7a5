// log.h: process logging through POCO. One line per event, "key=value" fields.
// setup_logging() is called once by main() before any loop starts; afterwards loggers are
// used from the loop thread (POCO channels are thread-safe, so worker threads may log too).
#pragma once

#include <Poco/Logger.h>

#include <string>
#include <string_view>

namespace estafette::base {

struct LogSettings {
  std::string program;  // "esmtpd", "courierd", ... (the syslog ident and line prefix)
  std::string file;     // log file path; empty = stderr
  bool syslog = false;  // also to syslog (facility mail)
  std::string level = "information";  // POCO level name: debug, information, notice, warning, error
};

// Configures the root logger; throws std::runtime_error on a bad setting.
void setup_logging(const LogSettings& settings);

// text as one quoted log field value: "..." with \\, \", \r, \n, \t and other control bytes as
// \xNN, so that a multi-line SMTP reply or a peer's text stays on its line and cannot fake fields.
std::string log_quote(std::string_view text);

// The logger for one area of a program, e.g. log("esmtpd").
inline Poco::Logger& log(const std::string& name) {
  return Poco::Logger::get(name);
}

}  // namespace estafette::base
