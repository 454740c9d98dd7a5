// reply_parser.h: incremental parser of SMTP replies (RFC 5321 4.2) for the client side.
// Pure, no I/O; one parser per connection, used on that connection's thread. Bytes are fed as
// they arrive (split anywhere); next() returns each complete reply, multi-line replies
// ("250-...", "250 ...") joined into one Reply. A malformed line (not three digits followed by
// " ", "-" or the line end), a continuation line with another code, or a reply longer than the
// size limit puts the parser into a sticky error state: the connection is then unusable.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace estafette::smtp {

inline constexpr std::size_t kMaxReplySize = 64 * 1024;

struct Reply {
  int code = 0;
  std::string enhanced;            // RFC 3463 code of the first line ("2.1.0"), or ""
  std::vector<std::string> lines;  // text after "250-" / "250 ", enhanced code removed

  int klass() const { return code / 100; }  // 2, 3, 4 or 5
  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }
  // The lines joined with a space (for logs and DSNs).
  std::string text() const;
  // "550 5.1.1 text": the whole reply on one line.
  std::string to_string() const;
  bool operator==(const Reply&) const = default;
};

class ReplyParser final {
 public:
  enum class Error { None, Malformed, CodeMismatch, TooLong };

  explicit ReplyParser(std::size_t max_reply = kMaxReplySize) : max_reply_(max_reply) {}
  ReplyParser(const ReplyParser&) = delete;
  ReplyParser& operator=(const ReplyParser&) = delete;

  void feed(std::string_view bytes);
  // The next complete reply, or nullopt (need more bytes, or error() is set).
  std::optional<Reply> next();
  Error error() const { return error_; }
  std::string error_text() const;
  // Bytes received but not yet returned as part of a reply.
  bool has_partial() const { return start_ < buffer_.size() || !current_.lines.empty(); }

 private:
  void fail(Error e);

  std::size_t max_reply_;
  std::string buffer_;
  std::size_t start_ = 0;
  Reply current_;                 // lines of the reply being assembled
  std::size_t current_size_ = 0;  // bytes of those lines
  Error error_ = Error::None;
};

}  // namespace estafette::smtp
