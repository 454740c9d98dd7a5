// queue_reader.h: the queue as its files hold it, read-only, for `estafette mailq` when courierd
// does not run. Unlike Backend::scan() it never writes, locks, moves, repairs or deletes
// anything, so it is safe to run while a courierd starts or runs (it may then miss or show a
// message that is being added or finished: a listing, not a delivery decision).
// Any thread; blocks on disk I/O. Bounded and distrustful: records are read through
// read_queue_record() (header at most kMaxHeaderSize, sizes checked against the file, crcs), the
// state log and .done files are read up to a fixed size and only their complete, well-formed
// lines count, recipient indexes are checked against the record, at most max_messages messages
// are listed. What it skips (a corrupt or torn record: the rest of its segment; a bad line; an
// unexpected file) is named in `warnings`, never trusted.
// Errors: read_queue_readonly() throws std::invalid_argument for an unknown backend and
// std::system_error when the queue dir or its seg/ or msg/ cannot be opened or listed (EACCES:
// not root or the queue's user); a missing one is an empty queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lib/queue/backend.h"

namespace estafette::queue {

struct ReadOnlyOptions {
  std::size_t max_messages = 1'000'000;
  std::uint64_t max_state_bytes = 256ull << 20;  // of the segment backend's state log
};

struct QueueListing {
  // By id: the messages with a recipient not done and not removed (path, offsets and sizes as
  // read from the record; done and held from the state).
  std::vector<StoredMessage> messages;
  std::vector<std::string> warnings;  // what was skipped, and why
};

// Reads the queue of the backend `kind` ("segment" or "file", the queue_backend setting).
QueueListing read_queue_readonly(const std::string& kind, const std::string& queue_dir,
                                 const ReadOnlyOptions& options = {});

// What the segment backend's state log says of one message (the last H or R line counts).
struct LoggedState {
  bool removed = false;
  bool held = false;
  std::set<std::uint32_t> done;
  bool released = false;  // the last H or R line was an R (a quarantine ended)
  bool operator==(const LoggedState&) const = default;
};

// The complete lines of a state log ("X id", "D id i...", "H id", "R id", "W id"); a torn last
// line is ignored, a malformed line or a bad queue id counted in *bad_lines. Pure.
std::map<QueueId, LoggedState> parse_state_log(std::string_view text, std::size_t* bad_lines);

// The finished recipient indexes in a file backend's msg/<id>.done text: one index below
// `recipients` per complete line; others counted in *bad_lines. Pure.
std::vector<bool> parse_done_file(std::string_view text, std::size_t recipients,
                                  std::size_t* bad_lines);

}  // namespace estafette::queue
