#include "admin/commands.h"

#include <cctype>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "admin/courierd_client.h"
#include "admin/mailq_format.h"
#include "lib/ipc/messages.h"

namespace estafette::admin {

namespace {
constexpr auto kAdminTimeout = std::chrono::seconds(30);
}  // namespace

int mailq(const config::Config& config, bool json, std::FILE* out) {
  CourierdClient client(config.courierd_socket(), kAdminTimeout);
  client.send(ipc::encode(ipc::QueueListRequest{}));
  std::vector<ipc::QueueEntry> entries;
  for (;;) {
    ipc::Frame f = client.receive();
    if (auto e = ipc::decode_queue_entry(f)) {
      entries.push_back(std::move(*e));
      continue;
    }
    auto end = ipc::decode_queue_list_end(f);
    if (!end) throw std::runtime_error("unexpected reply from courierd");
    std::string text =
        json ? format_mailq_json(entries, end->now_ms) : format_mailq(entries, end->now_ms);
    std::fwrite(text.data(), 1, text.size(), out);
    return 0;
  }
}

int flush(const config::Config& config, const std::string& target, std::FILE* out) {
  ipc::FlushRequest req;
  req.target = target;
  if (target.empty()) {
    req.scope = ipc::FlushScope::All;
  } else if (target.find_first_of(".[:") == std::string::npos) {
    req.scope = ipc::FlushScope::Message;
  } else {
    req.scope = ipc::FlushScope::Domain;
    for (auto& c : req.target) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  CourierdClient client(config.courierd_socket(), kAdminTimeout);
  client.send(ipc::encode(req));
  auto reply = ipc::decode_flush_reply(client.receive());
  if (!reply) throw std::runtime_error("unexpected reply from courierd");
  std::fprintf(out, "estafette: flush: %llu recipient(s) ready for delivery\n",
               static_cast<unsigned long long>(reply->ready));
  return 0;
}

}  // namespace estafette::admin
