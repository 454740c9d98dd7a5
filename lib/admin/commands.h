// commands.h: the admin requests to courierd: `estafette mailq` / `sendmail -bp`, `estafette
// flush` / `sendmail -q`, and `estafette hold|release|cancel|delete`. Each sends one request
// over courierd's socket and prints the answer to `out` (errors to `err`). Throws CourierdDown
// when courierd is not running and std::runtime_error on a timeout or a malformed reply
// (callers exit 75).
#pragma once

#include <cstdio>
#include <string>

#include "lib/config/config.h"
#include "lib/ipc/messages.h"

namespace estafette::admin {

// The queue as courierd holds it, then a per-destination summary by age; --json as one document.
int mailq(const config::Config& config, bool json, std::FILE* out);
// target: "" = everything; a queue id (no '.', '[' or ':'); otherwise a domain or destination.
int flush(const config::Config& config, const std::string& target, std::FILE* out);

// What a queue operation's reply means for the user: the line to print, whether it goes to
// stderr, and the exit code (0 done, 1 no such message, 75 courierd could not record it).
// Pure. `target` is the queue id, or "" with all.
struct QueueOpOutcome {
  std::string text;  // one line, with its newline
  bool error = false;
  int exit_code = 0;
};
QueueOpOutcome describe_queue_op(const ipc::QueueOpRequest& request,
                                 const ipc::QueueOpReply& reply);

// hold/release (a queue id, or all), cancel/delete (a queue id).
int queue_op(const config::Config& config, const ipc::QueueOpRequest& request, std::FILE* out,
             std::FILE* err);

}  // namespace estafette::admin
