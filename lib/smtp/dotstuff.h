// dotstuff.h: SMTP transparency (RFC 5321 4.5.2) between the wire form of a message (lines
// ending in CRLF, lines starting with "." prefixed by another ".") and its plain form.
// Pure code, any thread; an Unstuffer holds the state of one message and accepts the input
// split at any byte. Nothing here fails: malformed input is converted as well as it can be.
#pragma once

#include <string>
#include <string_view>

namespace estafette::smtp {

// Streaming wire -> plain conversion: the first "." of every line that starts with "." is
// removed (as Postfix and RFC 5321 4.5.2 do). With to_lf, each CRLF becomes LF (a CR not
// followed by LF is kept). Lines start at the beginning of the input and after each LF.
class Unstuffer final {
 public:
  explicit Unstuffer(bool to_lf = false) : to_lf_(to_lf) {}

  void feed(std::string_view wire, std::string& out);
  // Flushes a CR held back at the end of the input (only possible with to_lf).
  void finish(std::string& out);

 private:
  bool to_lf_;
  bool line_start_ = true;
  bool pending_cr_ = false;
};

// Appends the plain form of a complete wire-form message (without the terminating ".\r\n").
void unstuff_append(std::string_view wire, std::string& out);

// Plain -> wire form for messages we compose (bounces): every bare LF or bare CR becomes CRLF,
// lines starting with "." get another ".", and a non-empty result always ends with CRLF. The
// terminating ".\r\n" is not added.
std::string stuff(std::string_view plain);

}  // namespace estafette::smtp
