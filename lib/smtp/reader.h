// reader.h: incremental input readers of the SMTP server: CommandReader splits the command
// stream into lines, DataReader follows the DATA phase up to its CRLF.CRLF end.
// Pure code, no I/O: the I/O layer (esmtpd, on the session's event loop) feeds whatever bytes
// it read; results do not depend on how the input is split. Both readers stop exactly at the
// end of a line / of the data, so the I/O layer can hand the rest of its buffer to the other
// reader:
//
//   while (!buf.empty()) {
//     if (session.in_data()) {
//       buf.remove_prefix(data_reader.feed(buf));
//       if (data_reader.done()) act(session.on_data_end(data_reader.status(), data_reader.size()));
//     } else {
//       auto r = command_reader.feed(buf, line);
//       buf.remove_prefix(r.consumed);
//       if (r.line_ready) act(session.on_line(line.text, line.status));  // may BeginData
//     }
//   }
//
// Problems are reported as statuses, never by exceptions; memory stays bounded by the limits.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace estafette::smtp {

enum class LineStatus { Ok, TooLong, BareLineEnding };
// TooManyHeaders, HeaderTooBig: over HeaderLimits; Nul: a NUL byte anywhere in the message;
// NoStorage: the I/O layer refused the message (refuse(), e.g. over its memory budget).
enum class DataStatus {
  Ok,
  TooBig,
  BareLineEnding,
  LineTooLong,
  TooManyHeaders,
  HeaderTooBig,
  Nul,
  NoStorage,
};

// The message header's limits, checked as the bytes arrive (before anything is built from
// them): header fields (a "name:" line and its continuation lines, as filters/message_edit.h
// parses them) at most max_count, each at most max_field_size bytes with its CRLFs. 0: no limit.
struct HeaderLimits {
  std::size_t max_count = 0;
  std::size_t max_field_size = 0;
};

inline constexpr std::size_t kDefaultMaxCommandLine = 2048;    // incl. CRLF; RFC minimum 512
inline constexpr std::size_t kDefaultMaxDataLine = 64 * 1024;  // incl. CRLF; RFC minimum 1000

struct Line {
  std::string text;  // without the line ending; truncated (undefined content) when TooLong
  LineStatus status = LineStatus::Ok;
};

// Command lines end in CRLF. A bare LF also ends a line, but that line is reported with
// BareLineEnding (so an LF-only client gets an error instead of a hang); a bare CR inside a
// line marks it BareLineEnding too. A line longer than max_line (including CRLF) is reported
// once, at its end, with TooLong; its excess bytes are discarded. TooLong wins over
// BareLineEnding.
class CommandReader final {
 public:
  struct FeedResult {
    std::size_t consumed = 0;  // bytes of `data` used; the rest belongs to the next feed
    bool line_ready = false;   // a complete line was stored in `out`
  };

  explicit CommandReader(std::size_t max_line = kDefaultMaxCommandLine);

  // Consumes bytes up to and including the end of at most one line.
  FeedResult feed(std::string_view data, Line& out);

  // True when a partial line is buffered (e.g. to detect a connection closed mid-line).
  bool has_partial() const { return pending_cr_ || !text_.empty() || status_ != LineStatus::Ok; }

 private:
  void finish_line(Line& out);

  std::size_t max_text_;  // max_line minus the CRLF
  std::string text_;
  LineStatus status_ = LineStatus::Ok;
  bool pending_cr_ = false;
};

// The DATA phase, starting with the first byte after the 354 reply. Message bytes are passed
// to the sink in wire form (dot-stuffed, CRLF line ends, exactly as received) in pieces of any
// size; the terminating ".\r\n" is not passed, the CRLF before it is. Only CRLF "." CRLF ends
// the data: a bare LF or CR never starts a line. The first problem found sets the status
// (BareLineEnding, TooBig beyond max_size message bytes, LineTooLong beyond max_line bytes
// including CRLF, Nul at a NUL byte, TooManyHeaders/HeaderTooBig over `headers`, NoStorage
// from refuse()); from then on nothing more is passed to the sink, but the reader keeps going
// until the real end so that the session stays in sync with the client.
class DataReader final {
 public:
  using Sink = std::function<void(std::string_view)>;

  DataReader(Sink sink, std::size_t max_size, std::size_t max_line = kDefaultMaxDataLine,
             HeaderLimits headers = {});
  DataReader(const DataReader&) = delete;
  DataReader& operator=(const DataReader&) = delete;

  // Consumes bytes up to and including the terminating ".\r\n"; returns the count. Returns 0
  // once done().
  std::size_t feed(std::string_view data);

  bool done() const { return state_ == State::kDone; }
  DataStatus status() const { return status_; }
  std::size_t size() const { return size_; }  // message bytes (wire form), even past max_size

  // Starts a new DATA phase with the same sink and limits.
  void reset();
  // Sets `status` (when none is set yet): nothing more goes to the sink; the data is still
  // read to its end. The sink may call it.
  void refuse(DataStatus status) { fail(status); }

 private:
  enum class State { kLineStart, kMid, kMidCr, kDot, kDotCr, kDone };

  void fail(DataStatus status) {
    if (status_ == DataStatus::Ok) status_ = status;
  }
  void accept(char c);
  void mid(char c);
  void header_byte(char c);

  Sink sink_;
  std::size_t max_size_;
  std::size_t max_line_;
  State state_ = State::kLineStart;
  DataStatus status_ = DataStatus::Ok;
  std::size_t size_ = 0;
  std::size_t line_len_ = 0;
  HeaderLimits header_limits_;
  bool in_header_ = true;   // still in the message header
  bool in_name_ = false;    // in a field's name (before its colon)
  std::size_t fields_ = 0;  // header fields so far
  std::size_t field_size_ = 0;
  std::string out_;  // bytes for the sink, collected during one feed()
};

}  // namespace estafette::smtp
