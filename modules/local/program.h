// program.h: estafette-local's delivery to a program ("|command" in aliases, only with
// allow_program_delivery = yes): /bin/sh -c COMMAND in a process group of its own, as `user`
// (never root; with its uid, primary gid and supplementary groups), with the message on stdin
// (Return-Path:/Delivered-To: first, LF line ends), in the user's home directory (or /), with
// SENDER, RECIPIENT, USER, HOME and a fixed PATH.
// Output (stdout and stderr) is kept up to 4 KiB, for the reply.
// Exit status, as sendmail and Postfix's local(8) map it: 0 delivered; 75 (EX_TEMPFAIL) a
// temporary failure (retried); any other status or a signal a permanent failure (bounced) whose
// reply carries the program's first output line. Past `timeout` the whole process group is
// killed and the delivery is retried.
// Blocking, on the caller's thread (estafette-local delivers one message at a time).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>

#include "lib/ipc/messages.h"

namespace estafette::local {

struct ProgramRun {
  std::string command;
  uid_t uid = 0;  // 0 is replaced by fallback_user: programs never run as root
  std::string fallback_user = "nobody";
  std::chrono::milliseconds timeout{60000};
  std::string sender;
  std::string recipient;
};

ipc::RcptResult run_program(const ProgramRun& run, std::string_view message);

// The reply for a finished program (pure, for tests): status as from waitpid.
ipc::RcptResult program_result(int wait_status, bool timed_out, std::string_view output);

}  // namespace estafette::local
