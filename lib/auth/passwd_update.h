// passwd_update.h: writing the `file:` auth backend's passwd file (passwd_file.h) for
// `estafette passwd`: set, replace or remove one user's entry and keep every other line (other
// users, comments, blank lines, a user's fields after the hash) byte for byte.
//
// edit_passwd_text is pure. update_passwd_file does the file system part, blocking: it takes an
// exclusive flock on the file's directory (two concurrent runs do not lose an update), refuses a
// symlink or anything but a regular file at the path, writes a temporary file in the same
// directory (O_EXCL), gives it the old file's mode and owner (0640 and the caller's ids for a
// new file), fsyncs it, renames it over the path and fsyncs the directory: readers see the old
// file or the new one, never a partial one, also after a crash. The result must parse with
// PasswdFile::parse, or nothing is written. Errors: std::runtime_error "PATH: reason" (no
// password or hash in any message). Any thread; not on an event loop.
#pragma once

#include <string>
#include <string_view>

namespace estafette::auth {

enum class PasswdChange { Added, Replaced, Deleted, NotFound };

// `text` with user's entry's hash set to *hash (the fields after the hash kept) or a new
// "user:hash" line appended (after a newline if the text lacks a final one); with hash ==
// nullptr, user's line removed. *change says which happened (NotFound: delete of an unknown
// user; text returned unchanged). user must be valid_passwd_user.
std::string edit_passwd_text(std::string_view text, std::string_view user, const std::string* hash,
                             PasswdChange* change);

// The same on the file at path (see above). Throws std::runtime_error.
PasswdChange update_passwd_file(const std::string& path, std::string_view user,
                                const std::string* hash);

}  // namespace estafette::auth
