// commands.h: the admin requests to courierd: `estafette mailq` / `sendmail -bp`, `estafette
// flush` / `sendmail -q`, `estafette hold|release|cancel|delete`, and their selections. Each sends
// one request over courierd's socket and prints the answer to `out` (errors to `err`). Throws
// CourierdDown when courierd is not running and std::runtime_error on a timeout or a malformed
// reply (callers exit 75).
#pragma once

#include <cstdint>
#include <cstdio>
#include <istream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
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

// Selections (`estafette hold|release|cancel|delete|flush --sender ADDR ...`): the messages
// that match every option given, selected and acted on in one request inside courierd.
// --older-than's value: a positive whole number and a unit s, m, h or d ("90s", "30m", "2h",
// "3d"), in seconds; nullopt for anything else or above ipc::kMaxOlderThanSeconds. Pure.
std::optional<std::uint64_t> parse_duration(std::string_view text);
// Whether `arg` is one of the options below (each takes a value).
bool is_selection_option(std::string_view arg);
// The selection the (option, value) pairs give: --sender ADDR (exact; "<>" the null sender,
// "<addr>" is addr), --rcpt-domain DOMAIN, --destination DEST (a destination key as mailq shows
// it), --older-than DURATION, --reason TEXT (part of a last temporary error). nullopt with *why
// for an unknown or repeated option or a malformed value. Pure.
std::optional<ipc::QueueSelection> parse_selection(
    const std::vector<std::pair<std::string, std::string>>& options, std::string* why);

// The line for one message a selection applied to, and the closing outcome: the count and the
// exit code (0 something matched, 1 nothing did, 75 courierd could not record it). Pure.
std::string describe_selected(ipc::QueueOp op, const ipc::QueueSelected& message);
QueueOpOutcome describe_selection(ipc::QueueOp op, const ipc::QueueOpReply& reply);

// Sends the request; prints a line per message, then the count. Returns the exit code; throws
// as mailq when courierd does not answer.
int queue_select(const config::Config& config, const ipc::QueueSelectRequest& request,
                 std::FILE* out, std::FILE* err);

}  // namespace estafette::admin
