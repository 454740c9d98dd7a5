#include "bench/kit/options.h"

#include <charconv>
#include <functional>
#include <map>

namespace estafette::bench {

namespace {

std::uint64_t parse_number(std::string_view option, std::string_view text, std::uint64_t min,
                           std::uint64_t max) {
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || value < min ||
      value > max) {
    throw UsageError(std::string(option) + ": expected a number from " + std::to_string(min) +
                     " to " + std::to_string(max) + ", got \"" + std::string(text) + "\"");
  }
  return value;
}

bool parse_on_off(std::string_view option, std::string_view text) {
  if (text == "on" || text == "yes") return true;
  if (text == "off" || text == "no") return false;
  throw UsageError(std::string(option) + ": expected on or off, got \"" + std::string(text) + "\"");
}

// Options with a value (--name VALUE or --name=VALUE) and flags (--name), dispatched by table.
struct Table {
  std::map<std::string, std::function<void(const std::string&)>, std::less<>> valued;
  std::map<std::string, std::function<void()>, std::less<>> flags;

  void parse(const std::vector<std::string>& args) const {
    for (std::size_t i = 0; i < args.size(); ++i) {
      std::string name = args[i];
      std::optional<std::string> inline_value;
      if (auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name.resize(eq);
      }
      if (auto f = flags.find(name); f != flags.end() && !inline_value) {
        f->second();
        continue;
      }
      auto v = valued.find(name);
      if (v == valued.end()) throw UsageError("unknown option " + args[i]);
      if (inline_value) {
        v->second(*inline_value);
      } else if (i + 1 < args.size()) {
        v->second(args[++i]);
      } else {
        throw UsageError(name + ": needs a value");
      }
    }
  }
};

}  // namespace

double parse_rate(std::string_view option, std::string_view text) {
  constexpr double kMax = 1000000;
  auto digits = [](std::string_view t) {
    return !t.empty() && t.find_first_not_of("0123456789") == std::string_view::npos;
  };
  auto dot = text.find('.');
  bool well_formed = dot == std::string_view::npos
                         ? digits(text)
                         : digits(text.substr(0, dot)) && digits(text.substr(dot + 1));
  double value = 0;
  if (well_formed) {
    auto [end, error] =
        std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
    well_formed = error == std::errc() && end == text.data() + text.size();
  }
  if (!well_formed || !(value > 0) || value > kMax) {
    throw UsageError(std::string(option) +
                     ": expected messages per second above 0 and at most 1000000 (like 50 or "
                     "2.5), got \"" +
                     std::string(text) + "\"");
  }
  return value;
}

HostPort parse_host_port(std::string_view text) {
  HostPort result;
  std::string_view port;
  if (text.starts_with('[')) {
    auto close = text.find("]:");
    if (close == std::string_view::npos)
      throw UsageError("expected [HOST]:PORT, got " + std::string(text));
    result.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      throw UsageError("expected HOST:PORT, got \"" + std::string(text) + "\"");
    }
    result.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (result.host.empty()) throw UsageError("no host in \"" + std::string(text) + "\"");
  result.port = static_cast<std::uint16_t>(parse_number("port", port, 1, 65535));
  return result;
}

bool valid_reply_text(std::string_view reply) {
  if (reply.size() < 3 || reply[0] < '2' || reply[0] > '5') return false;
  if (reply[1] < '0' || reply[1] > '9' || reply[2] < '0' || reply[2] > '9') return false;
  if (reply.size() > 3 && reply[3] != ' ') return false;
  for (char c : reply) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string expand_recipient(std::string_view to, std::uint64_t n, std::uint64_t hosts) {
  std::string out;
  out.reserve(to.size() + 16);
  for (std::size_t i = 0; i < to.size(); ++i) {
    std::string_view rest = to.substr(i);
    if (rest.starts_with("{n}") || rest.starts_with("{h}")) {
      out += std::to_string(rest[1] == 'n' ? n : n % hosts);
      i += 2;
    } else {
      out += to[i];
    }
  }
  return out;
}

SinkOptions parse_sink_options(const std::vector<std::string>& args) {
  SinkOptions o;
  bool have_listen = false;
  Table table;
  table.valued["--listen"] = [&](const std::string& v) {
    o.listen = parse_host_port(v);
    have_listen = true;
  };
  table.valued["--fail"] = [&](const std::string& v) {
    if (!valid_reply_text(v)) throw UsageError("--fail: expected a reply like \"451 4.3.0 text\"");
    o.fail_reply = v;
  };
  table.valued["--record-ids"] = [&](const std::string& v) { o.record_ids = v; };
  table.valued["--tls-cert"] = [&](const std::string& v) { o.tls_cert = v; };
  table.valued["--tls-key"] = [&](const std::string& v) { o.tls_key = v; };
  table.valued["--count"] = [&](const std::string& v) {
    o.count = parse_number("--count", v, 1, UINT64_MAX);
  };
  table.valued["--record-times"] = [&](const std::string& v) { o.record_times = v; };
  table.valued["--stats"] = [&](const std::string& v) { o.stats = v; };
  table.valued["--stats-interval"] = [&](const std::string& v) {
    o.stats_interval_ms = parse_number("--stats-interval", v, 10, 60000);
  };
  table.parse(args);
  if (!have_listen) throw UsageError("sink: --listen HOST:PORT is required");
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    throw UsageError("sink: --tls-cert and --tls-key go together");
  }
  return o;
}

SourceOptions parse_source_options(const std::vector<std::string>& args) {
  SourceOptions o;
  bool have_target = false, have_messages = false;
  Table table;
  table.valued["--target"] = [&](const std::string& v) {
    o.target = parse_host_port(v);
    have_target = true;
  };
  table.valued["--messages"] = [&](const std::string& v) {
    o.messages = parse_number("--messages", v, 1, UINT64_MAX);
    have_messages = true;
  };
  table.valued["--concurrency"] = [&](const std::string& v) {
    o.concurrency = parse_number("--concurrency", v, 1, 100000);
  };
  table.valued["--size"] = [&](const std::string& v) {
    o.size = parse_number("--size", v, 100, 100 * 1024 * 1024);
  };
  table.valued["--per-session"] = [&](const std::string& v) {
    o.per_session = parse_number("--per-session", v, 1, UINT64_MAX);
  };
  table.valued["--rate"] = [&](const std::string& v) { o.rate = parse_rate("--rate", v); };
  table.valued["--pipelining"] = [&](const std::string& v) {
    o.pipelining = parse_on_off("--pipelining", v);
  };
  table.valued["--helo"] = [&](const std::string& v) { o.helo = v; };
  table.valued["--from"] = [&](const std::string& v) { o.from = v; };
  table.valued["--to"] = [&](const std::string& v) { o.to = v; };
  table.valued["--hosts"] = [&](const std::string& v) {
    o.hosts = parse_number("--hosts", v, 1, 1000000);
  };
  table.valued["--timeout"] = [&](const std::string& v) {
    o.timeout_s = parse_number("--timeout", v, 1, 86400);
  };
  table.valued["--tls-max"] = [&](const std::string& v) {
    if (v != "1.2" && v != "1.3") throw UsageError("--tls-max: expected 1.2 or 1.3");
    o.tls_max = v == "1.2" ? 12 : 13;
  };
  table.flags["--starttls"] = [&] { o.starttls = true; };
  table.flags["--tls-resume"] = [&] { o.starttls = o.tls_resume = true; };
  table.flags["--handshake-only"] = [&] { o.starttls = o.handshake_only = true; };
  table.valued["--record-sends"] = [&](const std::string& v) { o.record_sends = v; };
  table.valued["--stats"] = [&](const std::string& v) { o.stats = v; };
  table.valued["--stats-interval"] = [&](const std::string& v) {
    o.stats_interval_ms = parse_number("--stats-interval", v, 10, 60000);
  };
  table.parse(args);
  if (!have_target) throw UsageError("source: --target HOST:PORT is required");
  if (!have_messages) throw UsageError("source: --messages N is required");
  if (o.handshake_only) o.per_session = 1;
  if (o.rate > 0 && o.per_session != 1) {
    // An open-loop session would have to idle between its messages' due times: not offered.
    throw UsageError("source: --rate gives each message a session: --per-session must be 1");
  }
  for (const std::string* s : {&o.helo, &o.from, &o.to}) {
    if (s->empty() || s->find_first_of("\r\n <>") != std::string::npos) {
      throw UsageError("source: --helo, --from and --to take one word without <>, CR or LF");
    }
  }
  return o;
}

}  // namespace estafette::bench
