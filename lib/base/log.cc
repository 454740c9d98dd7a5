#include "lib/base/log.h"

#include <Poco/AutoPtr.h>
#include <Poco/ConsoleChannel.h>
#include <Poco/FileChannel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/PatternFormatter.h>
#include <Poco/SplitterChannel.h>
#include <Poco/SyslogChannel.h>

#include <cstdlib>
#include <stdexcept>

namespace estafette::base {

void setup_logging(const LogSettings& settings) {
  using Poco::AutoPtr;
  // Local time stamps call tzset(), which with TZ unset stat()s /etc/localtime on every log
  // line (6% of esmtpd's time in a profile); a fixed TZ is read once. Before any thread starts.
  if (!std::getenv("TZ")) ::setenv("TZ", ":/etc/localtime", 0);
  AutoPtr<Poco::SplitterChannel> splitter(new Poco::SplitterChannel);
  // "<time> [<pid>] <area>: <text>": the pid tells processes of one program apart (several
  // esmtpd and esmtpclient processes log to one file). POCO reads "[...]" right after a field
  // as its width, so "%s[%P]" would print no pid at all.
  AutoPtr<Poco::PatternFormatter> file_format(
      new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%i [%P] %s: %t"));
  file_format->setProperty("times", "local");
  if (settings.file.empty()) {
    AutoPtr<Poco::Channel> console(new Poco::ConsoleChannel);
    splitter->addChannel(AutoPtr<Poco::Channel>(new Poco::FormattingChannel(file_format, console)));
  } else {
    AutoPtr<Poco::FileChannel> file(new Poco::FileChannel(settings.file));
    // Each line reaches the file at once (tail -f, tests); a write per line, no fsync.
    file->setProperty("flush", "true");
    // Opened now, not at the first line: a daemon that drops privileges keeps writing to a
    // log file only root may open, and a bad path is reported at start.
    try {
      file->open();
    } catch (const Poco::Exception& e) {
      throw std::runtime_error("log_file " + settings.file + ": " + e.displayText());
    }
    splitter->addChannel(AutoPtr<Poco::Channel>(new Poco::FormattingChannel(file_format, file)));
  }
  if (settings.syslog) {
    AutoPtr<Poco::SyslogChannel> sys(new Poco::SyslogChannel(
        settings.program, Poco::SyslogChannel::SYSLOG_PID, Poco::SyslogChannel::SYSLOG_MAIL));
    AutoPtr<Poco::PatternFormatter> sys_format(new Poco::PatternFormatter("%s: %t"));
    splitter->addChannel(AutoPtr<Poco::Channel>(new Poco::FormattingChannel(sys_format, sys)));
  }
  int level = 0;
  try {
    level = Poco::Logger::parseLevel(settings.level);
  } catch (const Poco::Exception&) {
    throw std::runtime_error("unknown log level '" + settings.level + "'");
  }
  Poco::Logger::root().setChannel(splitter);
  Poco::Logger::root().setLevel(level);
  Poco::Logger::setLevel("", level);
}

std::string log_quote(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\x";
          out += kHex[u >> 4];
          out += kHex[u & 15];
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace estafette::base
