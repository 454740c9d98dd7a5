#include "lib/mtasts/http_response.h"

#include <algorithm>
#include <charconv>

namespace estafette::mtasts {
namespace {

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Printable ASCII of at most 200 bytes: header values that go into a log line.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += c >= ' ' && c < 0x7f ? c : '?';
  return out;
}

}  // namespace

HttpResponse::HttpResponse(std::size_t max_body) : max_body_(max_body) {}

HttpResponse::State HttpResponse::fail(std::string why) {
  state_ = State::Failed;
  reason_ = std::move(why);
  body_.clear();
  return state_;
}

HttpResponse::State HttpResponse::feed(std::string_view bytes) {
  if (state_ == State::Head) {
    std::size_t before = head_.size();
    head_.append(bytes.substr(0, kMaxHead + 4 - std::min(before, kMaxHead + 4)));
    // Only the new bytes (and the 3 before them) can complete the blank line that ends the head.
    std::size_t from = before < 3 ? 0 : before - 3;
    std::size_t end = head_.find("\r\n\r\n", from);
    std::size_t skip = 4;
    std::size_t lf = head_.find("\n\n", from);
    if (lf != std::string::npos && (end == std::string::npos || lf < end)) {
      end = lf;
      skip = 2;
    }
    if (end == std::string::npos || end > kMaxHead) {
      if (head_.size() > kMaxHead) return fail("response head larger than 16 KiB");
      return state_;
    }
    std::size_t used = end + skip - before;  // > 0: the end was not in the earlier bytes
    std::string head = head_.substr(0, end);
    head_.clear();
    head_.shrink_to_fit();
    bytes.remove_prefix(used);
    parse_head(head);
    if (state_ != State::Body) return state_;
  }
  if (state_ == State::Body) take_body(bytes);
  return state_;
}

void HttpResponse::parse_head(std::string_view head) {
  std::size_t nl = head.find('\n');
  std::string_view status_line = trim(head.substr(0, nl));
  head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ') {
    fail("not an HTTP/1.x response");
    return;
  }
  std::string_view code = status_line.substr(9, 3);
  auto [end, ec] = std::from_chars(code.data(), code.data() + 3, status_);
  if (ec != std::errc() || end != code.data() + 3 || status_ < 100 ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    fail("malformed status line");
    return;
  }
  std::optional<std::size_t> length;
  bool chunked = false;
  std::string content_type, location;
  while (!head.empty()) {
    nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line[0] == ' ' || line[0] == '\t') {
      fail("malformed header line");  // obsolete line folding included (RFC 9112 5.2)
      return;
    }
    std::string name = lower(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (name == "content-length") {
      std::size_t n = 0;
      auto [e, err] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (err != std::errc() || e != value.data() + value.size() || value.empty() ||
          (length && *length != n)) {
        fail("malformed Content-Length");
        return;
      }
      length = n;
    } else if (name == "transfer-encoding") {
      std::string v = lower(value);
      if (v != "chunked") {  // identity, gzip, ...: nothing we decode
        fail("unsupported Transfer-Encoding " + printable(value));
        return;
      }
      chunked = true;
    } else if (name == "content-type" && content_type.empty()) {
      content_type = lower(value);
    } else if (name == "location" && location.empty()) {
      location = printable(value);
    }
  }
  if (status_ >= 300 && status_ < 400) {
    fail("HTTP " + std::to_string(status_) + " redirect" +
         (location.empty() ? "" : " to " + location) + " refused (RFC 8461 3.3)");
    return;
  }
  if (status_ != 200) {
    fail("HTTP " + std::to_string(status_) + " (only 200 is a policy)");
    return;
  }
  std::string_view media = content_type;
  media = trim(media.substr(0, media.find(';')));
  if (media != "text/plain") {
    fail("media type " + (content_type.empty() ? std::string("(none)") : printable(content_type)) +
         " is not text/plain");
    return;
  }
  if (chunked) {
    framing_ = Framing::Chunked;  // wins over a Content-Length (RFC 9112 6.3)
  } else if (length) {
    if (*length > max_body_) {
      fail("body of " + std::to_string(*length) + " bytes is larger than " +
           std::to_string(max_body_));
      return;
    }
    framing_ = Framing::Length;
    remaining_ = *length;
  }
  state_ = State::Body;
  if (framing_ == Framing::Length && remaining_ == 0) state_ = State::Done;
}

void HttpResponse::take_body(std::string_view& bytes) {
  if (framing_ == Framing::Chunked) {
    take_chunked(bytes);
    return;
  }
  std::size_t take = bytes.size();
  if (framing_ == Framing::Length) take = std::min(take, remaining_);
  if (body_.size() + take > max_body_) {
    fail("body larger than " + std::to_string(max_body_) + " bytes");
    return;
  }
  body_.append(bytes.substr(0, take));
  bytes.remove_prefix(take);
  if (framing_ == Framing::Length) {
    remaining_ -= take;
    if (remaining_ == 0) state_ = State::Done;
  }
}

bool HttpResponse::take_line(std::string_view& bytes, std::string& line) {
  std::size_t nl = bytes.find('\n');
  std::size_t take = nl == std::string_view::npos ? bytes.size() : nl + 1;
  if (line_.size() + take > 1024) {
    fail("chunk framing line longer than 1024 bytes");
    return false;
  }
  line_.append(bytes.substr(0, take));
  bytes.remove_prefix(take);
  if (nl == std::string_view::npos) return false;
  line = line_.substr(0, line_.size() - 1);
  if (line.ends_with('\r')) line.pop_back();
  line_.clear();
  return true;
}

void HttpResponse::take_chunked(std::string_view& bytes) {
  while (state_ == State::Body && !bytes.empty()) {
    std::string line;
    switch (chunk_) {
      case Chunk::Size: {
        if (!take_line(bytes, line)) break;
        std::string_view size = trim(std::string_view(line).substr(0, line.find(';')));
        std::size_t n = 0;
        auto [e, err] = std::from_chars(size.data(), size.data() + size.size(), n, 16);
        if (size.empty() || err != std::errc() || e != size.data() + size.size()) {
          fail("malformed chunk size");
          return;
        }
        if (n > max_body_ - body_.size()) {
          fail("body larger than " + std::to_string(max_body_) + " bytes");
          return;
        }
        remaining_ = n;
        chunk_ = n == 0 ? Chunk::Trailer : Chunk::Data;
        break;
      }
      case Chunk::Data: {
        std::size_t take = std::min(bytes.size(), remaining_);
        body_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        remaining_ -= take;
        if (remaining_ == 0) chunk_ = Chunk::DataEnd;
        break;
      }
      case Chunk::DataEnd:
        if (!take_line(bytes, line)) break;
        if (!line.empty()) {
          fail("chunk longer than its size");
          return;
        }
        chunk_ = Chunk::Size;
        break;
      case Chunk::Trailer:
        if (!take_line(bytes, line)) break;
        if (line.empty()) state_ = State::Done;  // trailer fields before it are ignored
        break;
    }
  }
}

HttpResponse::State HttpResponse::finish() {
  if (state_ == State::Head) return fail("connection closed before the end of the response head");
  if (state_ == State::Body) {
    if (framing_ == Framing::Close) {
      state_ = State::Done;
    } else {
      return fail("connection closed before the end of the body");
    }
  }
  return state_;
}

}  // namespace estafette::mtasts
