// paths.h: where Estafette's programs are. Every program is installed (and built) side by side,
// so a daemon finds its siblings next to its own executable, falling back to the configured
// libexec directory; ESTAFETTE_LIBEXEC in the environment overrides both (tests).
#pragma once

#include <string>

namespace estafette::base {

// The absolute path of the sibling program `name` (e.g. "estafette-esmtpclient").
std::string program_path(const std::string& name);

// Makes a path absolute against the current directory, without resolving symlinks.
std::string absolute_path(const std::string& path);

// mkdir -p with the given mode; returns false (errno set) on failure.
bool make_dirs(const std::string& path, unsigned mode = 0700);

}  // namespace estafette::base
