#include "bench/kit/sink_session.h"

#include <algorithm>
#include <cctype>

namespace estafette::bench {

namespace {
constexpr std::size_t kMaxLine = 4096;
constexpr std::size_t kMaxCapturedHeaders = 16 * 1024;

bool verb_is(std::string_view line, std::string_view verb) {
  if (line.size() < verb.size()) return false;
  for (std::size_t i = 0; i < verb.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(line[i])) != verb[i]) return false;
  }
  return line.size() == verb.size() || line[verb.size()] == ' ';
}
}  // namespace

SinkSession::SinkSession(const Options& options, OnMessage on_message)
    : options_(options), on_message_(std::move(on_message)) {}

void SinkSession::tls_started() {
  tls_ = true;
  in_data_ = have_rcpt_ = false;
  line_.clear();
}

SinkSession::Action SinkSession::feed(std::string_view bytes, std::string& out) {
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (!in_data_) {
      auto nl = bytes.find('\n', pos);
      if (nl == std::string_view::npos) {
        line_.append(bytes.substr(pos));
        pos = bytes.size();
        if (line_.size() > kMaxLine) {
          out += "500 5.5.6 line too long\r\n";
          line_.clear();
        }
        break;
      }
      std::string_view line;
      if (line_.empty()) {
        line = bytes.substr(pos, nl - pos);
      } else {
        line_.append(bytes.substr(pos, nl - pos));
        line = line_;
      }
      pos = nl + 1;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      Action action = Action::None;
      if (line.size() > kMaxLine) {
        out += "500 5.5.6 line too long\r\n";
      } else {
        action = command(line, out);
      }
      line_.clear();
      if (action != Action::None) return action;
      continue;
    }
    // Data mode. At a line start, "." CR LF ends the message; a partial one waits in line_.
    if (line_start_) {
      std::string_view rest = bytes.substr(pos);
      if (!line_.empty()) {
        std::size_t take = std::min(rest.size(), 3 - line_.size());
        if (auto nl = rest.substr(0, take).find('\n'); nl != std::string_view::npos) take = nl + 1;
        line_.append(rest.substr(0, take));
        pos += take;
        if (line_ == ".\r\n") {
          line_.clear();
          end_message(out);
          continue;
        }
        if (line_.size() < 3 && std::string_view(".\r\n").starts_with(line_)) break;
        // Not the end: those bytes are message content; go on after them.
        message_bytes_ += line_.size();
        if (options_.capture_ids && in_headers_) headers_ += line_;
        line_start_ = line_.back() == '\n';
        line_.clear();
        continue;
      }
      if (rest.starts_with(".\r\n")) {
        pos += 3;
        end_message(out);
        continue;
      }
      if (rest.size() < 3 && std::string_view(".\r\n").starts_with(rest)) {
        line_.assign(rest);
        break;
      }
      if (in_headers_ && (rest.starts_with("\r\n") || rest.starts_with("\n"))) in_headers_ = false;
    }
    auto nl = bytes.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? bytes.size() : nl + 1;
    if (options_.capture_ids && in_headers_ && headers_.size() < kMaxCapturedHeaders) {
      headers_.append(bytes.substr(pos, end - pos));
    }
    message_bytes_ += end - pos;
    line_start_ = nl != std::string_view::npos;
    pos = end;
  }
  return Action::None;
}

void SinkSession::end_message(std::string& out) {
  bool accepted = options_.fail_reply.empty();
  if (accepted) {
    out += "250 2.0.0 Ok: queued\r\n";
  } else {
    out += options_.fail_reply;
    out += "\r\n";
  }
  std::string id;
  if (options_.capture_ids) id = message_id_of(headers_);
  on_message_(accepted, message_bytes_, id);
  in_data_ = have_rcpt_ = false;
  message_bytes_ = 0;
  headers_.clear();
}

SinkSession::Action SinkSession::command(std::string_view line, std::string& out) {
  if (verb_is(line, "EHLO")) {
    out += "250-sink.bench.estafette.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n";
    if (options_.offer_starttls && !tls_) out += "250-STARTTLS\r\n";
    out += "250 ENHANCEDSTATUSCODES\r\n";
    have_rcpt_ = false;
  } else if (verb_is(line, "HELO")) {
    out += "250 sink.bench.estafette.test\r\n";
  } else if (verb_is(line, "MAIL")) {
    out += "250 2.1.0 Ok\r\n";
    have_rcpt_ = false;
  } else if (verb_is(line, "RCPT")) {
    out += "250 2.1.5 Ok\r\n";
    have_rcpt_ = true;
  } else if (verb_is(line, "DATA")) {
    if (!have_rcpt_) {
      out += "503 5.5.1 Error: need RCPT command\r\n";
    } else {
      out += "354 End data with <CR><LF>.<CR><LF>\r\n";
      in_data_ = true;
      line_start_ = in_headers_ = true;
      message_bytes_ = 0;
    }
  } else if (verb_is(line, "RSET")) {
    out += "250 2.0.0 Ok\r\n";
    have_rcpt_ = false;
  } else if (verb_is(line, "NOOP")) {
    out += "250 2.0.0 Ok\r\n";
  } else if (verb_is(line, "QUIT")) {
    out += "221 2.0.0 Bye\r\n";
    return Action::Close;
  } else if (verb_is(line, "STARTTLS")) {
    if (!options_.offer_starttls || tls_) {
      out += "502 5.5.1 STARTTLS not offered\r\n";
    } else {
      out += "220 2.0.0 Ready to start TLS\r\n";
      return Action::StartTls;
    }
  } else {
    out += "502 5.5.2 Error: command not recognized\r\n";
  }
  return Action::None;
}

std::string message_id_of(std::string_view headers) {
  std::size_t pos = 0;
  while (pos < headers.size()) {
    auto nl = headers.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? headers.size() : nl + 1;
    std::string_view line = headers.substr(pos, end - pos);
    if (line.size() >= 11) {
      std::string name(line.substr(0, 11));
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (name == "message-id:") {
        std::string value(line.substr(11));
        // Folded continuation lines belong to it.
        while (end < headers.size() && (headers[end] == ' ' || headers[end] == '\t')) {
          auto next = headers.find('\n', end);
          std::size_t stop = next == std::string_view::npos ? headers.size() : next + 1;
          value.append(headers.substr(end, stop - end));
          end = stop;
        }
        std::string clean;
        for (char c : value) {
          if (c != '\r' && c != '\n') clean += c;
        }
        auto first = clean.find_first_not_of(" \t");
        auto last = clean.find_last_not_of(" \t");
        return first == std::string::npos ? "" : clean.substr(first, last - first + 1);
      }
    }
    pos = end;
  }
  return "";
}

}  // namespace estafette::bench
