// paths.h: where Estafette's programs are. Every program is installed (and built) side by side,
// so a daemon finds its siblings next to its own executable, falling back to the configured
// libexec directory; ESTAFETTE_LIBEXEC in the environment overrides both (tests).
#pragma once

#include <string>
#include <vector>

namespace estafette::base {

// The absolute path of the sibling program `name` (e.g. "estafette-esmtpclient").
std::string program_path(const std::string& name);

// The absolute path of an sbin program (`estafette`, `estafetted`) for a program that may be in
// bindir (estafette-sendmail): the installed sbindir when this program is installed, else its
// sibling in the build tree (program_path).
std::string sbin_program_path(const std::string& name);

// True when this program runs from the directory `make install` put it in (bindir, sbindir or
// libexecdir/estafette, compared after resolving symlinks): then it reads the installed config
// by default (config::default_config_path). A build tree or a DESTDIR copy is not installed.
bool running_installed();

// Pure part of running_installed: whether `exe_dir` is one of `install_dirs` (all resolved).
bool is_install_dir(const std::string& exe_dir, const std::vector<std::string>& install_dirs);

// Makes a path absolute against the current directory, without resolving symlinks.
std::string absolute_path(const std::string& path);

// mkdir -p with the given mode; returns false (errno set) on failure.
bool make_dirs(const std::string& path, unsigned mode = 0700);

}  // namespace estafette::base
