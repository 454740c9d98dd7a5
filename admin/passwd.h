// passwd.h: `estafette passwd [--file PATH] [--stdin] [--scheme crypt|scram-sha-256] [--delete]
// USER`: sets (adds or replaces)
// or removes USER's entry in the `file:` auth backend's passwd file (lib/auth/passwd_update.h
// writes it atomically, keeping every other line, refusing a symlink).
//
// The password is read twice from the controlling terminal (/dev/tty) with echo off (termios,
// restored on return and on SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGTSTP, after which the signal is
// raised again), or as one line from standard input with --stdin. It is hashed with yescrypt
// (SHA-512-crypt where libcrypt lacks it), or with --scheme scram-sha-256 made a SCRAM-SHA-256
// secret in Dovecot's form (4096 PBKDF2 rounds, random salt: SCRAM-SHA-256, PLAIN and LOGIN
// then work for the user), never written, printed or logged, and wiped from
// memory after use. Blocking; the main thread of the estafette tool only (it sets signal
// handlers while it reads). Returns the exit code: 0 done, 1 refused or failed (the reason on
// `err`: no terminal, passwords differ, empty, a bad user name, a symlink, I/O), 2 usage.
#pragma once

#include <cstdio>
#include <string>

namespace estafette::admin {

struct PasswdOptions {
  std::string file;  // the passwd file (auth_backend = file:PATH)
  std::string user;
  bool from_stdin = false;
  bool remove = false;  // --delete
  bool scram = false;   // --scheme scram-sha-256 (default: crypt)
};

inline constexpr std::size_t kMaxPasswordLength = 1024;

int passwd(const PasswdOptions& options, std::FILE* out, std::FILE* err);

}  // namespace estafette::admin
