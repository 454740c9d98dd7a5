// hop_count.h: mail loop detection by hop count: how many Received: header fields a message
// carries in its header section (Postfix's hopcount_limit; esmtpd's and estafette-local's
// `max_hops`). Each MTA a message passes adds one, so a message that loops between MTAs (ours
// or others) grows until it reaches the limit and is refused or bounced instead of going round
// for ever.
// Pure code, any thread. HopCounter follows one message fed in pieces of any size, in wire form
// (CRLF) or plain form (LF); only the header section is looked at (up to the first empty line),
// so the body costs one comparison per piece. Nothing fails: a malformed header counts what it can.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace estafette::smtp {

class HopCounter final {
 public:
  void feed(std::string_view bytes);
  // Received: fields seen so far ("Received:", any case, optional white space before ':').
  std::size_t received() const { return received_; }
  bool header_done() const { return done_; }
  void reset() { *this = HopCounter{}; }

 private:
  static constexpr std::size_t kMaxName = 16;  // longer field names are not "Received"
  void end_name();

  std::size_t received_ = 0;
  bool done_ = false;
  bool line_start_ = true;
  bool skip_line_ = false;  // the field name of this line is decided: wait for its LF
  std::string name_;        // the start of this line, up to its ':' (at most kMaxName bytes)
};

// The Received: fields in the header section of a whole message (wire or plain form).
std::size_t count_received(std::string_view message);

}  // namespace estafette::smtp
