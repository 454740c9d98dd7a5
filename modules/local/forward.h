// forward.h: a system user's ~/.forward (local_mailboxes = system), which estafette-local reads
// at delivery time as that user (esmtpd may run unprivileged and never reads home directories).
// Syntax as sendmail's and Postfix's: entries separated by commas or newlines, '#' comment
// lines, "quoted" entries (a command holding a comma):
//   \alice                      the user's own Maildir (so is "alice" or alice@<local domain>)
//   "|/usr/bin/procmail -t"     a program, run as the user (program.h), if the admin allows it
//   bob@example.org, carol      forward: re-injected through esmtpd's submission socket
// The file is opened and read with the user's rights (as Postfix's local(8) does: the caller
// switches to the user's ids), and used only when it is a regular file (opened with O_NOFOLLOW:
// no symlink) owned by the user or root, with no other hard link, and not writable by group or
// others; otherwise (or when the user may not read it) it is ignored (logged) and mail goes to
// the Maildir as before. Errors name the file and a line number, never the file's text.
// parse_forward, forward_file_problem, forward_loop and combine_results are pure (table tests);
// read_forward_file and resubmit do blocking I/O on the caller's thread.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/ipc/messages.h"

namespace estafette::local {

// More Received: lines than this and a .forward bounces the message as a loop (Postfix's
// hopcount_limit).
inline constexpr std::size_t kMaxReceived = 50;
// A longer .forward is ignored: nobody needs one this long, and we read it whole.
inline constexpr std::size_t kMaxForwardSize = 64 * 1024;

struct ForwardEntry {
  enum class Kind { Mailbox, Program, Address };
  Kind kind = Kind::Mailbox;
  std::string value;  // the command (Program) or the qualified, lower-cased address (Address)
  bool operator==(const ForwardEntry&) const = default;
};

struct ForwardList {
  std::vector<ForwardEntry> entries;
  std::string error;  // non-empty: "name:line: reason", and entries is empty
};

// Parses the .forward of `user` (a lower-case local part) whose mail came to user@`domain`;
// `name` is the file's path for errors. An unqualified address takes `domain`; user@D is the
// user's own mailbox when is_local(D). Entries keep their order, duplicates are dropped.
ForwardList parse_forward(std::string_view text, const std::string& name, const std::string& user,
                          const std::string& domain,
                          const std::function<bool(std::string_view)>& is_local);

// Why a .forward with this status must be ignored for the user `uid`, or "" when it is safe.
std::string forward_file_problem(const struct stat& st, uid_t uid);

struct ForwardFile {
  enum class State { Absent, Ignored, Read, Error };
  State state = State::Absent;
  std::string text;    // Read
  std::string reason;  // Ignored or Error
};
// Opens `path` with O_NOFOLLOW, checks it with forward_file_problem on the open file (no race
// with a rename) and reads it; the caller acts as the user (base::ActingAs). A symlink, an
// unsafe file or one the user may not read (EACCES) is Ignored; any other error but ENOENT is an
// Error (the delivery is retried).
ForwardFile read_forward_file(const std::string& path, uid_t uid);

// "" or why forwarding this message (plain form, LF line ends) for `recipient` would loop: more
// than kMaxReceived Received: header lines, or a Delivered-To: naming the recipient.
std::string forward_loop(std::string_view plain, std::string_view recipient);

// One result for the recipient from its entries' results: PermFail when any entry failed
// permanently (the first such reply), else TempFail when any failed temporarily, else Delivered.
ipc::RcptResult combine_results(const std::string& recipient,
                                const std::vector<ipc::RcptResult>& results);

struct Resubmission {
  std::string socket_path;  // esmtpd's <state_dir>/run/submit.sock
  std::string helo;
  std::string sender;  // the original envelope sender ("" = null sender)
  std::vector<std::string> recipients;
  std::string_view wire;  // CRLF, dot-stuffed, without the final ".\r\n"
  std::chrono::seconds timeout{300};
};
// One SMTP transaction on the submission socket (lib/submit/client.h), so that forwarded mail
// takes the same queue and filters as any other. Delivered once esmtpd has queued it; a 5xx to
// the sender, a recipient or the message is PermFail; anything else is TempFail.
ipc::RcptResult resubmit(const Resubmission& r);

}  // namespace estafette::local
