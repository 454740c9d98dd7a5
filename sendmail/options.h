// options.h: estafette-sendmail's command line, the subset of sendmail(8)'s that mail user
// agents and scripts use. Pure (no I/O); called from main() only.
//   -f SENDER / -r SENDER   envelope sender ("" or "<>": the null sender)
//   -F NAME                 full name for a From: header we add
//   -t                      recipients from To:/Cc:/Bcc: (Bcc: removed), plus the arguments
//   -i, -oi                 a line with a single "." does not end the message
//   -bm (default), -bs      deliver a message read from stdin / speak SMTP on stdin and stdout
//   -bp                     list the queue (runs `estafette mailq`)
//   -bi, -I                 check the aliases, reload a running Estafette (`estafette newaliases`)
//   -q[TIME], -qRSITE, -qIID  run the queue now (as `estafette flush`): everything, the mail for
//                           SITE, or one message; a TIME interval is ignored (courierd schedules)
//   -C FILE, -c FILE        the Estafette configuration
//   ignored: -v, -m, -n, -U, -G, -od*, -oe*, -om, -o<anything else>, and -B -N -R -V -L -h with
//   their argument
// Called as `mailq` the mode is -bp, as `newaliases` -bi (argv[0]'s last component, as
// Postfix's and Exim's sendmail do); any other name is sendmail.
// Options are getopt-style: "-fsender" or "-f sender", flags may be grouped ("-ti"); the first
// argument that is not an option, or "--", ends them. Errors are returned as text.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace estafette::sendmail {

enum class Mode { Deliver, Smtp, ListQueue, Flush, NewAliases };

struct Options {
  Mode mode = Mode::Deliver;
  std::optional<std::string> sender;  // -f / -r as given (angle brackets removed)
  std::string full_name;              // -F
  bool extract_recipients = false;    // -t
  bool ignore_dots = false;           // -i / -oi
  std::string config_path;            // -C / -c; empty: the default
  std::vector<std::string> recipients;
  std::string flush_target;  // -qR / -qI: what to flush; "" = everything
};

struct ParsedOptions {
  std::optional<Options> options;  // nullopt: error says why
  std::string error;
};

// args: argv without argv[0]; program: argv[0] (its directory is ignored).
ParsedOptions parse_options(const std::vector<std::string>& args,
                            const std::string& program = "sendmail");

}  // namespace estafette::sendmail
