// lib/submit/client.h: estafette-sendmail's side of SMTP on the local submission socket: one
// transaction (EHLO, MAIL, RCPT..., DATA, QUIT) that succeeds only when every recipient is accepted
// and esmtpd answers 250 after DATA (the message is then durable in the queue), and the -bs proxy
// between stdin/stdout and the socket. Exit codes are sysexits(3) values.
// connect_submit(), submit() and proxy() do blocking I/O on the calling thread (estafette-local
// uses them too, to forward for ~/.forward); exit_code_for() and LineEndFixer are pure.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "lib/base/exit_codes.h"
#include "lib/base/fd.h"
#include "lib/smtp/reply_parser.h"

namespace estafette::submit {

// sysexits.h values (lib/base/exit_codes.h).
using base::kExConfig;
using base::kExDataErr;
using base::kExIoErr;
using base::kExNoUser;
using base::kExOk;
using base::kExProtocol;
using base::kExSoftware;
using base::kExTempFail;
using base::kExUnavailable;
using base::kExUsage;

enum class Stage { Greeting, Ehlo, Mail, Rcpt, Data, DataEnd };

// The exit code for a reply that is not the expected one at `stage`: 4xx -> EX_TEMPFAIL; 5xx to
// RCPT -> EX_NOUSER, to MAIL or to the message -> EX_DATAERR, to the greeting or EHLO ->
// EX_UNAVAILABLE, to DATA -> EX_PROTOCOL; any other code -> EX_PROTOCOL.
int exit_code_for(Stage stage, const smtp::Reply& reply);

struct Submission {
  std::string helo;
  std::string sender;
  std::vector<std::string> recipients;
  std::string_view wire;  // CRLF, dot-stuffed, without the final ".\r\n"
  bool eight_bit = false;
  // How long to wait for the greeting (0: `timeout`). estafette-sendmail waits less than the
  // rest and keeps the message in the maildrop when no greeting comes (lib/submit/maildrop.h).
  std::chrono::seconds greeting_timeout{0};
};

struct SubmitResult {
  int exit_code = kExOk;
  std::string error;             // for stderr when exit_code != 0
  std::string queue_id;          // from "250 ... queued as ID"
  Stage stage = Stage::DataEnd;  // when exit_code != 0: the step that failed
};

// A blocking connection to the submission socket at `path` (connect bounded by `timeout`), or
// an invalid fd with errno set.
base::UniqueFd connect_submit(const std::string& path, std::chrono::seconds timeout);

// Runs the transaction on a connected, blocking socket; every read and write is bounded by
// `timeout` (a timeout or a lost connection -> EX_TEMPFAIL).
SubmitResult submit(int fd, const Submission& submission, std::chrono::seconds timeout);

// -bs: copies stdin (fd in) to the socket, with each bare LF made CRLF, and the socket to stdout
// (fd out), until esmtpd closes the connection; stdin's end is passed on as a half-close.
// Returns an exit code.
int proxy(int in, int out, int sock);

// Bare LF -> CRLF for a stream split anywhere; everything else passes unchanged.
class LineEndFixer final {
 public:
  std::string feed(std::string_view bytes);

 private:
  bool last_cr_ = false;
};

}  // namespace estafette::submit
