// backend.h: the queue's storage interface: what a queued message is (Envelope + wire-form body),
// how one is received (IncomingMessage), committed durably in batches (Backend::commit) and
// found again (scan, load). lib/queue is the only code that writes queue files.
//
// Threads: create(), IncomingMessage::append() and abort() run on the loop thread of the
// receiving session; commit() runs on the committer thread (see committer.h); scan(), load(),
// mark_done(), set_held(), set_warned(), remove() and count() block on disk I/O and run where the
// caller can afford that (scheduler thread, tools). Implementations are safe to call from these
// threads concurrently, but not for the same message from two threads at once. Ownership: the
// caller owns an IncomingMessage until it hands it to commit() (as a borrowed pointer, then
// destroys it) or to abort(); a message must not outlive its Backend. Errors: create() throws
// std::system_error (EINVAL for an invalid envelope); every other call reports failure by its
// return value and logs the reason (logger "queue").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/queue/queue_id.h"

namespace estafette::queue {

// One recipient's DSN request (RFC 3461) as esmtpd received it; both "" when none was given.
struct RecipientDsn {
  std::string notify;  // "NEVER" or a list of SUCCESS, FAILURE, DELAY; "" = the default
  std::string orcpt;   // ORCPT as received: "addr-type;xtext"; "" = none
  bool operator==(const RecipientDsn&) const = default;
};

struct Envelope {
  QueueId id;
  std::int64_t arrival = 0;  // unix seconds
  std::string sender;        // "" = null sender
  std::string client_ip;     // "" for locally generated (bounces)
  std::string helo;
  std::vector<std::string> recipients;
  // Program deliveries from aliases (lib/routing): recipient index -> the command, stored as a
  // `P` record right after its `R` (the alias that names it). Only the router writes them: a
  // recipient address an SMTP client sent ("|cmd"@domain is a valid local part) is never a
  // program. A claim, never trusted: estafette-local runs only what its own read of that alias
  // names, as the user it gives (older records' "UID COMMAND" is read the same way).
  std::map<std::size_t, std::string> programs;
  // DSN (RFC 3461): RET ("FULL", "HDRS" or "" = not given) and ENVID (xtext as received) of the
  // MAIL command, and NOTIFY/ORCPT per recipient, parallel to recipients. dsn may be shorter
  // than recipients (or empty): a missing entry means none given. Use dsn_of().
  std::string ret;
  std::string envid;
  std::vector<RecipientDsn> dsn;
  // REQUIRETLS (RFC 8689) on MAIL: delivered only over verified TLS, else bounced (5.7.10).
  // A `Q 1` record; absent in older records.
  bool require_tls = false;
  // A filter's quarantine (smfi_quarantine, a policy service's HOLD): the reason, "" = none. A
  // `Z` record. Such a message starts on hold (StoredMessage::held) until it is released.
  std::string quarantine;

  bool operator==(const Envelope&) const = default;

  const RecipientDsn& dsn_of(std::size_t rcpt) const {
    static const RecipientDsn kNone;
    return rcpt < dsn.size() ? dsn[rcpt] : kNone;
  }
};

// A message being received. append() takes the body in SMTP wire form (CRLF, dot-stuffed,
// without the final ".\r\n"), header lines first; it is buffered (~64 KiB), so a write error may
// also show up only in commit().
class IncomingMessage {
 public:
  virtual ~IncomingMessage() = default;
  virtual const Envelope& envelope() const = 0;
  virtual bool append(std::string_view bytes) = 0;  // false on a write error (disk full): 451/452
  virtual std::uint64_t body_size() const = 0;
  // The errno of the first failed write (append or commit), 0 if none: ENOSPC/EDQUOT let the
  // session answer 452 4.3.1 instead of 451.
  virtual int write_error() const { return 0; }
};

// A committed message as stored: where its body bytes are, so a delivery agent can sendfile().
struct StoredMessage {
  Envelope envelope;
  std::string path;               // absolute path of the file that holds the body
  std::uint64_t body_offset = 0;  // body bytes [body_offset, body_offset+body_size), wire form
  std::uint64_t body_size = 0;
  std::vector<bool> done;  // per recipient: already delivered/bounced (from the state log)
  // On hold: not delivered, not expired. By the administrator (set_held), or quarantined by a
  // filter (envelope.quarantine) and not released since (set_held(false) is remembered).
  bool held = false;
  bool warned = false;  // its delay warning was sent (set_warned): courierd sends no other
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Starts a message; envelope.id is set (make_queue_id()) if empty. Throws std::system_error.
  virtual std::unique_ptr<IncomingMessage> create(Envelope envelope) = 0;
  // Commits a batch durably; runs on the committer thread; returns per message success. After it
  // returns true for a message, the message survives kill -9 / power loss and scan() returns
  // it. A message that failed is left for the caller to abort().
  virtual std::vector<bool> commit(std::vector<IncomingMessage*> batch) = 0;
  virtual void abort(std::unique_ptr<IncomingMessage> message) = 0;  // discard a temp message
  // Visits all committed messages (in id order). Torn/corrupt ones are moved aside and logged,
  // never visited.
  virtual void scan(const std::function<void(StoredMessage&&)>& visit) = 0;
  virtual std::optional<StoredMessage> load(const QueueId& id) = 0;  // nullopt: absent or corrupt
  // Records recipients as finished (delivered or bounced) durably, before returning true.
  virtual bool mark_done(const QueueId& id, const std::vector<std::size_t>& recipient_indexes) = 0;
  // Puts messages on hold (held = true) or releases them, durably before returning true (one
  // fsync for the whole list). Ids not in the queue are skipped. scan() and load() report it.
  virtual bool set_held(const std::vector<QueueId>& ids, bool held) = 0;
  // Records that the delay warning of these messages was sent (warned = true; it goes with the
  // message). NOT fsynced: a crash right after may forget it, and the warning is sent once more
  // (a duplicate notice, never a lost message). Ids not in the queue are skipped.
  virtual bool set_warned(const std::vector<QueueId>& ids) = 0;
  // All recipients finished: deletes the message and its state. False if it did not exist.
  virtual bool remove(const QueueId& id) = 0;
  virtual std::size_t count() = 0;  // committed messages (may list the queue: O(n))
  // The ids of all committed messages not removed, in no order, bringing the backend's view up
  // to date first (O(n) in the queue; blocks on reading new records and listing directories).
  // For courierd's rescan after lost notices.
  virtual std::vector<QueueId> ids() = 0;
};

// What the configuration chooses for either backend.
struct BackendOptions {
  // scan() and load() also read each body and check its crc (queue_verify_bodies): a body
  // damaged on disk is set aside (corrupt/) instead of delivered, at the cost of reading it once
  // more. Off: only the envelope, sizes and trailer are checked.
  bool verify_bodies = false;
};

// Opens the backend named by the queue_backend setting: "segment" (segment_backend.h) or "file"
// (file_backend.h). Throws std::system_error, or std::invalid_argument for another name.
std::unique_ptr<Backend> open_backend(const std::string& kind, const std::string& queue_dir,
                                      const BackendOptions& options = {});

// What a daemon that names new messages calls (esmtpd, courierd): open_backend(), then
// claim_queue_id_instance() so that this process's ids cannot collide with any other's (a
// failed claim is logged, and ids fall back to pid and key: queue_id.h).
std::unique_ptr<Backend> open_queue(const std::string& kind, const std::string& queue_dir,
                                    const BackendOptions& options = {});

// Synchronous create + append + commit in the calling thread, for rare events (bounces built by
// the scheduler) and tools. It BLOCKS on fsync: never call it on a loop thread that serves
// sessions. Sets envelope.id if empty; returns true when the message is committed. On success
// and if id is not null, *id is the message's queue id.
bool write_message(Backend& backend, Envelope envelope, std::string_view wire_body,
                   QueueId* id = nullptr);

}  // namespace estafette::queue
