// commands.h: the admin requests to courierd: `estafette mailq` / `sendmail -bp`, `estafette
// flush` / `sendmail -q`, and `estafette hold|release|cancel|delete`. Each sends one request
// over courierd's socket and prints the answer to `out` (errors to `err`). Throws CourierdDown
// when courierd is not running and std::runtime_error on a timeout or a malformed reply
// (callers exit 75).
#pragma once

#include <cstdio>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// The requests of `estafette hold|release|cancel|delete OPERAND...`: queue ids, "-" for queue
// ids read from `ids` (whitespace-separated; at most kMaxQueueOpIds, each at most 64 printable
// bytes), or ALL (--all) alone, which is one request that courierd carries out at once. nullopt:
// not such a command, no operand, ALL with ids, or a malformed id (*why says which).
inline constexpr std::size_t kMaxQueueOpIds = 100000;
std::optional<std::vector<ipc::QueueOpRequest>> queue_op_requests(
    std::string_view cmd, const std::vector<std::string>& operands, std::istream& ids,
    std::string* why);

// hold/release/cancel/delete: each request in turn; prints each outcome. Exit code: 75 when
// one failed, else 1 when a message was not in the queue, else 0. Throws when courierd does
// not answer.
int queue_op(const config::Config& config, const std::vector<ipc::QueueOpRequest>& requests,
             std::FILE* out, std::FILE* err);

}  // namespace estafette::admin
