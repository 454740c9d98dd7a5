// offline_mailq.h: `estafette mailq [--json]` when courierd does not run (its socket is missing
// or refuses): the queue read straight from its files with lib/queue's read-only reader
// (queue_reader.h: never writes, locks or repairs, so safe while a courierd starts), printed in
// mailq's format after a line that says courierd is not running. Runs as root or as the
// estafette user (the queue dir is theirs). Blocking, one pass. Errors: what the reader skipped
// goes to `err` as warnings; the exit code is 0; throws std::system_error when the queue cannot
// be read at all (the caller exits 75).
#pragma once

#include <cstdint>
#include <cstdio>
#include <vector>

#include "lib/config/config.h"
#include "lib/ipc/messages.h"
#include "lib/queue/backend.h"

namespace estafette::admin {

// What mailq shows of queued messages read from their files: the recipients not done, with
// their domain as destination ("local" for a program delivery), Held when the message is on
// hold (else Ready: the state is unknown), no attempts, next try or error. Pure.
std::vector<ipc::QueueEntry> entries_from_queue(const std::vector<queue::StoredMessage>& messages);

int offline_mailq(const config::Config& config, bool json, std::FILE* out, std::FILE* err);

}  // namespace estafette::admin
