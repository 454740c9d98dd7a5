#include "lib/smtp/reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace estafette::smtp {

namespace {
// The first CR or LF at or after from, or data.size(). Two memchr() calls instead of
// find_first_of(), which calls memchr() once per byte with the two-byte set.
std::size_t next_line_break(std::string_view data, std::size_t from) {
  const char* start = data.data() + from;
  std::size_t n = data.size() - from;
  if (const void* cr = std::memchr(start, '\r', n)) n = static_cast<const char*>(cr) - start;
  if (const void* lf = std::memchr(start, '\n', n)) n = static_cast<const char*>(lf) - start;
  return from + n;
}
// The first CR, LF or NUL at or after from, or data.size().
std::size_t next_special(std::string_view data, std::size_t from) {
  std::size_t end = next_line_break(data, from);
  if (const void* nul = std::memchr(data.data() + from, '\0', end - from))
    end = static_cast<std::size_t>(static_cast<const char*>(nul) - data.data());
  return end;
}
}  // namespace

CommandReader::CommandReader(std::size_t max_line) : max_text_(max_line > 2 ? max_line - 2 : 0) {}

void CommandReader::finish_line(Line& out) {
  out.text.swap(text_);
  out.status = status_;
  text_.clear();
  status_ = LineStatus::Ok;
  pending_cr_ = false;
}

CommandReader::FeedResult CommandReader::feed(std::string_view data, Line& out) {
  std::size_t i = 0;
  auto append = [this](std::string_view bytes) {
    if (status_ == LineStatus::TooLong) return;
    if (text_.size() + bytes.size() > max_text_) {
      status_ = LineStatus::TooLong;
      text_.clear();
      return;
    }
    text_.append(bytes);
  };
  while (i < data.size()) {
    if (pending_cr_) {
      pending_cr_ = false;
      if (data[i] == '\n') {
        finish_line(out);
        return {i + 1, true};
      }
      if (status_ == LineStatus::Ok) status_ = LineStatus::BareLineEnding;
      append("\r");
    }
    std::size_t end = next_line_break(data, i);
    if (end == data.size()) {
      append(data.substr(i));
      return {data.size(), false};
    }
    append(data.substr(i, end - i));
    i = end + 1;
    if (data[end] == '\n') {
      if (status_ == LineStatus::Ok) status_ = LineStatus::BareLineEnding;
      finish_line(out);
      return {i, true};
    }
    pending_cr_ = true;
  }
  return {data.size(), false};
}

DataReader::DataReader(Sink sink, std::size_t max_size, std::size_t max_line, HeaderLimits headers)
    : sink_(std::move(sink)), max_size_(max_size), max_line_(max_line), header_limits_(headers) {
  reset();
}

void DataReader::reset() {
  state_ = State::kLineStart;
  status_ = DataStatus::Ok;
  size_ = 0;
  line_len_ = 0;
  // Without header limits nothing is counted: the header takes the fast path too.
  in_header_ = header_limits_.max_count != 0 || header_limits_.max_field_size != 0;
  in_name_ = false;
  fields_ = 0;
  field_size_ = 0;
  out_.clear();
}

// One byte of the message header (line_len_ counts it already): counts the fields and their
// sizes. A line that is neither a field ("name:", name of printable ASCII) nor a continuation of
// one starts the body, as in filters::parse_message; so does the empty line.
void DataReader::header_byte(char c) {
  if (line_len_ == 1) {
    if (c == '\r' || ((c == ' ' || c == '\t') && fields_ == 0)) {
      in_header_ = false;
      return;
    }
    if (c != ' ' && c != '\t') {
      in_name_ = true;
      field_size_ = 0;
    }
  }
  if (in_name_) {
    if (c == ':' && line_len_ > 1) {
      in_name_ = false;
      if (++fields_ > header_limits_.max_count && header_limits_.max_count != 0) {
        fail(DataStatus::TooManyHeaders);
        in_header_ = false;  // nothing more to count: the rest takes the fast path
        return;
      }
    } else if (c == ':' || c <= 32 || c >= 127) {
      in_header_ = false;  // not a field: the body starts here
      return;
    }
  }
  if (++field_size_ > header_limits_.max_field_size && header_limits_.max_field_size != 0) {
    fail(DataStatus::HeaderTooBig);
    in_header_ = false;
  }
}

// One message byte, in order.
void DataReader::accept(char c) {
  ++size_;
  ++line_len_;
  if (size_ > max_size_) fail(DataStatus::TooBig);
  if (line_len_ > max_line_) fail(DataStatus::LineTooLong);
  if (in_header_ && status_ == DataStatus::Ok) header_byte(c);
  if (status_ == DataStatus::Ok) out_.push_back(c);
}

// A byte in the middle of a line.
void DataReader::mid(char c) {
  if (c == '\r') {
    accept(c);
    state_ = State::kMidCr;
    return;
  }
  if (c == '\n') fail(DataStatus::BareLineEnding);
  if (c == '\0') fail(DataStatus::Nul);  // not in SMTP text (RFC 5321 2.3.8, RFC 6152)
  accept(c);
  state_ = State::kMid;
}

std::size_t DataReader::feed(std::string_view data) {
  std::size_t i = 0;
  while (i < data.size() && state_ != State::kDone) {
    char c = data[i++];
    switch (state_) {
      case State::kLineStart:
        line_len_ = 0;
        if (c == '.') {
          state_ = State::kDot;
        } else {
          mid(c);
        }
        break;
      case State::kDot:
        if (c == '\r') {
          state_ = State::kDotCr;
        } else {
          accept('.');
          mid(c);
        }
        break;
      case State::kDotCr:
        if (c == '\n') {
          state_ = State::kDone;
        } else {
          accept('.');
          accept('\r');
          fail(DataStatus::BareLineEnding);
          mid(c);
        }
        break;
      case State::kMidCr:
        if (c == '\n') {
          accept(c);
          state_ = State::kLineStart;
        } else {
          fail(DataStatus::BareLineEnding);
          mid(c);
        }
        break;
      case State::kMid: {
        if (c == '\r' || c == '\n' || c == '\0' || in_header_) {
          mid(c);  // the header goes byte by byte: header_byte() sees each
          break;
        }
        // Fast path: the run of ordinary bytes up to the next CR, LF or NUL.
        std::size_t begin = i - 1;
        std::size_t end = next_special(data, i);
        std::size_t run = end - begin;
        if (status_ == DataStatus::Ok) {
          // Pass what fits within both limits; the byte after it (if any) sets the status.
          std::size_t fits = std::min({run, max_size_ - size_, max_line_ - line_len_});
          out_.append(data.substr(begin, fits));
          size_ += fits;
          line_len_ += fits;
          if (fits < run) accept(data[begin + fits]);
          i = begin + fits + (fits < run ? 1 : 0);
        } else {
          size_ += run;
          line_len_ += run;
          i = end;
        }
        break;
      }
      case State::kDone:
        break;
    }
  }
  if (!out_.empty()) {
    sink_(out_);
    out_.clear();
  }
  return i;
}

}  // namespace estafette::smtp
