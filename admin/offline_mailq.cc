#include "admin/offline_mailq.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "lib/admin/mailq_format.h"
#include "lib/queue/queue_reader.h"
#include "lib/smtp/address.h"

namespace estafette::admin {

std::vector<ipc::QueueEntry> entries_from_queue(const std::vector<queue::StoredMessage>& messages) {
  std::vector<ipc::QueueEntry> out;
  out.reserve(messages.size());
  for (const auto& m : messages) {
    const auto& env = m.envelope;
    ipc::QueueEntry e;
    e.queue_id = env.id;
    e.arrival = env.arrival;
    e.size = m.body_size;
    e.sender = env.sender;
    e.held = m.held;
    e.quarantine = env.quarantine;
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
      if (i < m.done.size() && m.done[i]) continue;
      ipc::QueuedRcpt r;
      r.address = env.recipients[i];
      if (env.programs.count(i)) {
        r.destination = "local";
      } else {
        r.destination = smtp::domain_of(r.address);
        std::transform(r.destination.begin(), r.destination.end(), r.destination.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      }
      r.state = m.held ? ipc::RcptState::Held : ipc::RcptState::Ready;
      e.recipients.push_back(std::move(r));
    }
    out.push_back(std::move(e));
  }
  return out;
}

int offline_mailq(const config::Config& config, bool json, std::FILE* out, std::FILE* err) {
  auto listing = queue::read_queue_readonly(config.queue_backend, config.queue_dir());
  for (const auto& w : listing.warnings)
    std::fprintf(err, "estafette: mailq: warning: %s\n", w.c_str());
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const auto entries = entries_from_queue(listing.messages);
  const std::string text =
      json ? format_mailq_json(entries, now_ms, true) : format_mailq(entries, now_ms, true);
  std::fwrite(text.data(), 1, text.size(), out);
  return 0;
}

}  // namespace estafette::admin
