// segment_backend.h: the default queue backend: an append-only segment log with group commit, so
// the messages of one batch share one fdatasync() instead of paying one file, one rename and two
// fsyncs each.
//
// Layout of a queue dir (created as needed, mode 0700):
//   seg/<name>   segments: queue records (format: queue_file.h) back to back. Each writing
//                process appends to its own segment, which it holds flock()ed; it starts a new
//                one (a fresh queue id as name) after segment_size bytes. A message larger than
//                memory_record_limit (or arriving when memory_budget is used up) is spooled
//                to tmp/<id> while it arrives and becomes a
//                one-record segment seg/<id> at commit.
//   tmp/<id>     spooled big messages being received (flock()ed by their writer)
//   state        the state log: "X <id>" = message finished (removed), "D <id> <i> ..." =
//                recipients finished, "H <id>" / "R <id>" = put on hold / released (the last
//                one counts), "W <id>" = its delay warning was sent (appended without fsync).
//                Appended by the process that delivers (courierd) only.
//   corrupt/     what a reader sets aside, never delivered: a corrupt record of a sealed
//                segment (reading goes on at the next record whose header crc and trailer
//                check out: one bad record costs only itself), a torn tail, and the record of
//                a second message with an id already indexed (queue_id.h makes that all but
//                impossible; its data is kept there, never deleted with its segment)
// Commit of a batch (committer thread): one pwritev() of every in-memory record at the end of
// the writer's segment, then one fdatasync() of it, in parallel with write + fdatasync() of the
// batch's spooled messages; then one fsync() of seg/ when the batch made a new directory entry
// (a new segment or a spooled message renamed into seg/).
// Reading: an in-memory index (id -> segment, offset) is built by scan() and brought up to date
// incrementally (new records of segments still being written, new segments, new state lines)
// when load(), remove() or count() meet an id or a segment they do not know yet.
// Removal: remove() appends an X line without fsync (a crash may deliver that message again,
// never lose one); a segment whose messages are all finished and whose writer has let go of it
// is deleted. The state log is rewritten with only the lines still needed at scan() and when it
// has grown fourfold since the last rewrite. A record in a segment that its writer still holds
// may be visible before its commit returned; if that commit then fails, the client retries and
// the message may be delivered twice (never lost).
// Threads, ownership, errors: see backend.h; open_segment_backend() throws std::system_error
// when the dirs cannot be created or opened.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "lib/queue/backend.h"

namespace estafette::queue {

struct SegmentBackendOptions {
  std::uint64_t segment_size = 32 << 20;        // a writer starts a new segment after this
  std::size_t memory_record_limit = 256 << 10;  // bigger messages are spooled to tmp/
  // All records held in memory by this backend at once (sessions in DATA plus batches waiting
  // for their commit); a message that would go over it is spooled to tmp/ instead, so memory
  // stays bounded whatever the number of sessions.
  std::size_t memory_budget = 32 << 20;
  unsigned sync_threads = 4;                    // spooled messages of a batch synced at once
  bool verify_body_on_read = false;             // scan()/load() also check body crcs
  std::uint64_t state_compact_bytes = 1 << 20;  // rewrite the state log from this size on
};

std::unique_ptr<Backend> open_segment_backend(const std::string& queue_dir,
                                              const SegmentBackendOptions& options = {});

}  // namespace estafette::queue
