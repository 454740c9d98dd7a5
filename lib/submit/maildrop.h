// lib/submit/maildrop.h: mail kept while the MTA is down (Postfix's maildrop). When esmtpd's
// submission socket does not answer, estafette-sendmail writes the composed message into
// <state>/maildrop/ (created by estafetted: root's, mode 1733, so anyone may create a file there
// and nobody may list the directory or take another user's file), and estafette-pickup (root)
// submits each file later as the user who owns it (pickup/pickup.h).
//
// One file per message, written by write_maildrop(): "estafette-maildrop 1", the envelope
// ("S sender", one "R recipient" per recipient, "B 8BITMIME" when the body has 8-bit bytes),
// "D <n>", n bytes of the message as it goes after DATA (CRLF, dot-stuffed, no final "."), then
// "E" and nothing else, every line ending in LF. The owner of the file (st_uid) says who
// submitted it; nothing in the file does. parse_maildrop() trusts nothing in it: each line is
// bounded, addresses have no control characters or angle brackets, the counts and the size are
// bounded, a truncated or extended file is an error.
// format/parse are pure; write_maildrop does blocking I/O. Any thread. Errors are returned as
// text.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/config/config.h"

namespace estafette::submit {

inline std::string maildrop_dir(const config::Config& config) {
  return config.state_dir + "/maildrop";
}

// estafetted, at start: creates <state>/maildrop if needed (no symlink followed) and makes it
// the caller's (root's), mode 1733, whatever it was. Throws std::runtime_error.
void open_maildrop(const config::Config& config);

struct MaildropEntry {
  std::string sender;  // "" is the null sender
  std::vector<std::string> recipients;
  bool eight_bit = false;
  std::string wire;  // for DATA: CRLF, dot-stuffed, without the final ".\r\n"
};

struct MaildropLimits {
  std::size_t max_wire = 10 << 20;  // max_message_size plus room for the headers sendmail adds
  std::size_t max_recipients = 1000;
};

constexpr std::size_t kMaildropMaxLine = 1000;  // a record line, without its LF

// What estafette-pickup accepts and estafette-sendmail writes: the message as sendmail may
// read it (max_message_size plus 64 KiB), at most 10000 recipients.
inline MaildropLimits maildrop_limits(const config::Config& config) {
  return {config.max_message_size + 64 * 1024, 10000};
}

std::string format_maildrop(const MaildropEntry& entry);

struct ParsedMaildrop {
  std::optional<MaildropEntry> entry;  // nullopt: error says why
  std::string error;
};

ParsedMaildrop parse_maildrop(std::string_view file, const MaildropLimits& limits);

// A name estafette-pickup takes: not empty, at most 128 bytes of [A-Za-z0-9._-], not starting
// with "." (write_maildrop's temporary names do).
bool is_maildrop_name(std::string_view name);

// Writes `entry` into `dir` durably: a new file ".tmp.NAME" (O_EXCL, O_NOFOLLOW, mode 0600),
// fsync, renamed to NAME, directory fsync. The directory must belong to root or to the caller
// and, when others may write it, have the sticky bit (else someone else could read or replace
// the file). Returns "" (and the final name in *name) or why it failed (nothing left behind).
std::string write_maildrop(const std::string& dir, const MaildropEntry& entry,
                           std::string* name = nullptr);

}  // namespace estafette::submit
