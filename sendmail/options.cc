#include "sendmail/options.h"

#include <cctype>

#include <string_view>

namespace estafette::sendmail {

namespace {

ParsedOptions fail(std::string why) {
  return {std::nullopt, std::move(why)};
}

std::string strip_angles(std::string_view s) {
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
  return std::string(s);
}

// Options taking an argument.
bool takes_argument(char c) {
  return std::string_view("fFrCcBNRVLhbo").find(c) != std::string_view::npos;
}

}  // namespace

ParsedOptions parse_options(const std::vector<std::string>& args, const std::string& program) {
  Options o;
  const std::string_view name = std::string_view(program).substr(program.rfind('/') + 1);
  if (name == "mailq") o.mode = Mode::ListQueue;
  if (name == "newaliases") o.mode = Mode::NewAliases;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string_view a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;
    for (std::size_t k = 1; k < a.size(); ++k) {
      char c = a[k];
      std::string value;
      if (c == 'q') {  // its value is the rest of the word, if any: -q, -q30m, -qRsite, -qIid
        value = std::string(a.substr(k + 1));
        k = a.size();
      } else if (takes_argument(c)) {
        if (k + 1 < a.size()) {
          value = std::string(a.substr(k + 1));
        } else if (i + 1 < args.size()) {
          value = args[++i];
        } else {
          return fail(std::string("option -") + c + " requires an argument");
        }
        k = a.size();  // the rest of the word was the value
      }
      switch (c) {
        case 'f':
        case 'r':
          o.sender = strip_angles(value);
          break;
        case 'F':
          o.full_name = value;
          break;
        case 't':
          o.extract_recipients = true;
          break;
        case 'i':
          o.ignore_dots = true;
          break;
        case 'C':
        case 'c':
          if (value.empty()) return fail("option -C requires a file name");
          o.config_path = value;
          break;
        case 'b':
          if (value == "m")
            o.mode = Mode::Deliver;
          else if (value == "s")
            o.mode = Mode::Smtp;
          else if (value == "p")
            o.mode = Mode::ListQueue;
          else if (value == "i")
            o.mode = Mode::NewAliases;
          else
            return fail("mode -b" + value + " is not supported (only -bm, -bs, -bp and -bi)");
          break;
        case 'q':
          o.mode = Mode::Flush;
          if (value.size() > 1 && (value[0] == 'R' || value[0] == 'I'))
            o.flush_target = value.substr(1);
          else if (!value.empty() && !std::isdigit(static_cast<unsigned char>(value[0])))
            return fail("option -q" + value + " is not supported (-q, -qTIME, -qRSITE, -qIID)");
          break;
        case 'I':
          o.mode = Mode::NewAliases;
          break;
        case 'o':
          if (value == "i") o.ignore_dots = true;
          break;  // -odi, -odb, -oem, -oep, -om, ...: nothing to do for us
        case 'B':
        case 'N':
        case 'R':
        case 'V':
        case 'L':
        case 'h':
        case 'v':
        case 'm':
        case 'n':
        case 'U':
        case 'G':
          break;
        default:
          return fail(std::string("unknown option -") + c);
      }
    }
  }
  for (; i < args.size(); ++i) {
    if (args[i].empty()) return fail("empty recipient address");
    o.recipients.push_back(args[i]);
  }
  return {std::move(o), ""};
}

}  // namespace estafette::sendmail
