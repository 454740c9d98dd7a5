#include "lib/queue/backend.h"

#include <system_error>

#include "lib/base/log.h"
#include "lib/queue/file_backend.h"
#include "lib/queue/segment_backend.h"

namespace estafette::queue {

std::unique_ptr<Backend> open_backend(const std::string& kind, const std::string& queue_dir,
                                      const BackendOptions& options) {
  if (kind == "segment") {
    SegmentBackendOptions segment;
    segment.verify_body_on_read = options.verify_bodies;
    return open_segment_backend(queue_dir, segment);
  }
  if (kind == "file") {
    FileBackendOptions file;
    file.verify_body_on_read = options.verify_bodies;
    return open_file_backend(queue_dir, file);
  }
  throw std::invalid_argument("unknown queue backend '" + kind + "'");
}

std::unique_ptr<Backend> open_queue(const std::string& kind, const std::string& queue_dir,
                                    const BackendOptions& options) {
  auto backend = open_backend(kind, queue_dir, options);
  try {
    claim_queue_id_instance(queue_dir);
  } catch (const std::system_error& e) {
    base::log("queue").error(std::string("no queue id instance: ") + e.what() +
                             "; new ids use the pid and a random key instead");
  }
  return backend;
}

bool write_message(Backend& backend, Envelope envelope, std::string_view wire_body, QueueId* id) {
  std::unique_ptr<IncomingMessage> message;
  try {
    message = backend.create(std::move(envelope));
  } catch (const std::system_error& e) {
    base::log("queue").error(std::string("write_message: create failed: ") + e.what());
    return false;
  }
  std::vector<bool> ok;
  if (message->append(wire_body)) ok = backend.commit({message.get()});
  if (ok.size() == 1 && ok[0]) {
    if (id) *id = message->envelope().id;
    return true;
  }
  base::log("queue").error("write_message: commit failed id=" + message->envelope().id);
  backend.abort(std::move(message));
  return false;
}

}  // namespace estafette::queue
