// file_backend.h: the first queue backend: one file per message (format: queue_file.h).
//
// Layout of a queue dir (created as needed, mode 0700):
//   tmp/<id>        messages being received (flock()ed by their writer while open)
//   msg/<id>        committed messages; msg/<id>.done: the per-message state log, one finished
//                   recipient index per line (appended + fdatasync()ed by mark_done());
//                   msg/<id>.held: empty, present while the message is on hold (set_held())
//                   msg/<id>.warned: empty, its delay warning was sent (set_warned(), no fsync)
//   corrupt/        torn or corrupt files found by scan() or load(), moved aside, never delivered
// Commit of a batch: write the rest + trailer and fdatasync() each file (in parallel on up to
// sync_threads threads), rename each tmp/<id> to msg/<id> (never replacing a file), then ONE
// fsync() of msg/ for the whole batch. open_file_backend() deletes tmp files whose writer is
// gone (their flock is free), so several processes may share one queue dir.
// Threads, ownership, errors: see backend.h. open_file_backend() throws std::system_error when
// the dirs cannot be created or opened.
#pragma once

#include <memory>
#include <string>

#include "lib/queue/backend.h"

namespace estafette::queue {

struct FileBackendOptions {
  unsigned sync_threads = 4;         // parallel write+fdatasync of the files of one batch
  bool verify_body_on_read = false;  // scan()/load() also check the body crc (reads every body)
};

std::unique_ptr<Backend> open_file_backend(const std::string& queue_dir);
std::unique_ptr<Backend> open_file_backend(const std::string& queue_dir,
                                           const FileBackendOptions& options);

}  // namespace estafette::queue
