// safe_dir.h: opening (and creating) directories by a walk that never follows a symbolic link
// and trusts no directory another user controls, for code running as root below directories
// that others may own or write (estafette-local's Maildirs, estafetted's state directories).
//
// Each component is opened with openat(O_NOFOLLOW | O_DIRECTORY) relative to its parent's fd,
// created first with mkdirat when asked, so a symlink anywhere on the path (planted before the
// walk or swapped in during it) stops the walk (ELOOP or ENOTDIR) instead of being followed. With
// `trusted`, every directory on the way, "/" included, must belong to root or to the walking
// process's effective uid, and must not be writable by group or others unless it has the sticky
// bit (like /tmp): whoever can write a directory on the path can replace what is below it.
// A component that fails the check is EPERM.
//
// Any thread (the checks use the effective uid of the calling process); blocking system calls.
// Errors: an invalid fd with errno set and `error` (when given) naming the component and why.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "lib/base/fd.h"

namespace estafette::base {

struct DirWalk {
  bool create = false;  // mkdirat() a missing component (mode), then fsync its parent
  mode_t mode = 0700;   // of the directories created
  bool trusted = true;  // owner and mode checks above
};

// Opens the absolute directory `path` (a relative one is taken from the current directory).
UniqueFd open_dir(std::string_view path, const DirWalk& how, std::string* error = nullptr);

// Opens `relative` (one or more components, no "..") below the open directory dir_fd; `shown` is
// dir_fd's path, for errors.
UniqueFd open_dir_at(int dir_fd, std::string_view shown, std::string_view relative,
                     const DirWalk& how, std::string* error = nullptr);

// "" when the directory with this status may be trusted by a process of effective uid `euid`
// (the rule above), else why not. Pure.
std::string untrusted_dir(uid_t owner, mode_t mode, uid_t euid);

}  // namespace estafette::base
