// http_response.h: the HTTP/1.1 response to the policy fetch's GET (RFC 9112), parsed as it
// arrives, for MTA-STS's rules (RFC 8461 3.3): only status 200 (a redirect is refused, not
// followed), media type text/plain, a body of at most `max_body` bytes framed by Content-Length,
// chunked transfer coding, or the end of the connection.
// Pure: bytes in, state out; input may be split at any byte. Any thread, one owner. The head is
// bounded (kMaxHead bytes); nothing grows beyond max_body + kMaxHead. Errors: State::Failed with
// a one-line reason() ("HTTP 301 redirect to https://... refused (RFC 8461 3.3)", "body larger
// than 65536 bytes", "malformed chunk size", ...).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace estafette::mtasts {

class HttpResponse final {
 public:
  static constexpr std::size_t kMaxHead = 16 * 1024;
  enum class State { Head, Body, Done, Failed };

  explicit HttpResponse(std::size_t max_body);

  // Takes the next bytes; the state after them. Bytes after Done are ignored.
  State feed(std::string_view bytes);
  // The server closed the connection: a close-delimited body is complete, anything else is cut.
  State finish();

  State state() const { return state_; }
  int status() const { return status_; }
  const std::string& body() const { return body_; }
  const std::string& reason() const { return reason_; }

 private:
  enum class Framing { Length, Chunked, Close };
  enum class Chunk { Size, Data, DataEnd, Trailer };
  State fail(std::string why);
  void parse_head(std::string_view head);
  void take_body(std::string_view& bytes);
  void take_chunked(std::string_view& bytes);
  // A line of chunked framing (size or trailer) from bytes; false until a whole one is here.
  bool take_line(std::string_view& bytes, std::string& line);

  std::size_t max_body_;
  State state_ = State::Head;
  std::string head_;
  int status_ = 0;
  Framing framing_ = Framing::Close;
  std::size_t remaining_ = 0;  // Length: body bytes to come; Chunked: of this chunk
  Chunk chunk_ = Chunk::Size;
  std::string line_;
  std::string body_;
  std::string reason_;
};

}  // namespace estafette::mtasts
