#include "lib/admin/commands.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "lib/admin/courierd_client.h"
#include "lib/admin/mailq_format.h"
#include "lib/base/exit_codes.h"
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
  if (!reply->found) {  // as hold, release, cancel and delete say it
    std::fprintf(out, "estafette: flush: no message %s in the queue\n", target.c_str());
    return 1;
  }
  std::fprintf(out, "estafette: flush: %llu recipient(s) ready for delivery\n",
               static_cast<unsigned long long>(reply->ready));
  return 0;
}

QueueOpOutcome describe_queue_op(const ipc::QueueOpRequest& request,
                                 const ipc::QueueOpReply& reply) {
  static constexpr const char* kNames[] = {"hold", "release", "cancel", "delete"};
  const std::string name = kNames[static_cast<int>(request.op) & 3];
  const std::string prefix = "estafette: " + name + ": ";
  switch (reply.status) {
    case ipc::QueueOpStatus::NotFound:
      return {prefix + "no message " + request.queue_id + " in the queue\n", true, 1};
    case ipc::QueueOpStatus::Failed:
      return {prefix + "failed: " + reply.error + "\n", true, 75};
    case ipc::QueueOpStatus::Ok:
      break;
  }
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::string text = prefix;
  switch (request.op) {
    case ipc::QueueOp::Hold:
      text += n(reply.messages) + " message(s) on hold, " + n(reply.recipients) + " recipient(s)";
      break;
    case ipc::QueueOp::Release:
      text += n(reply.messages) + " message(s) released, " + n(reply.recipients) +
              " recipient(s) ready for delivery";
      break;
    case ipc::QueueOp::Cancel:
      text += (request.all ? n(reply.messages) + " message(s)" : request.queue_id) +
              " cancelled, " + n(reply.recipients) + " recipient(s) bounced to the sender";
      break;
    case ipc::QueueOp::Delete:
      text += (request.all ? n(reply.messages) + " message(s)" : request.queue_id) + " deleted, " +
              n(reply.recipients) + " recipient(s) dropped";
      break;
  }
  if (reply.in_flight > 0) {
    const bool hold = request.op == ipc::QueueOp::Hold;
    text += "; " + n(reply.in_flight) + " in a delivery attempt now: " +
            (hold ? "held if that attempt fails" : "finished when that attempt ends");
  }
  return {text + "\n", false, 0};
}

std::optional<std::vector<ipc::QueueOpRequest>> queue_op_requests(
    std::string_view cmd, const std::vector<std::string>& operands, std::istream& ids,
    std::string* why) {
  ipc::QueueOpRequest base;
  if (cmd == "hold")
    base.op = ipc::QueueOp::Hold;
  else if (cmd == "release")
    base.op = ipc::QueueOp::Release;
  else if (cmd == "cancel")
    base.op = ipc::QueueOp::Cancel;
  else if (cmd == "delete")
    base.op = ipc::QueueOp::Delete;
  else
    return std::nullopt;
  auto fail = [&](std::string text) -> std::optional<std::vector<ipc::QueueOpRequest>> {
    *why = std::move(text);
    return std::nullopt;
  };
  if (operands.empty()) return fail("no queue id");
  std::vector<ipc::QueueOpRequest> out;
  auto add = [&](const std::string& id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
      if (c < 33 || c > 126) return false;
    ipc::QueueOpRequest r = base;
    r.queue_id = id;
    out.push_back(std::move(r));
    return true;
  };
  for (const auto& operand : operands) {
    if (operand == "ALL" || operand == "--all") {
      if (operands.size() != 1) return fail("ALL takes no queue ids besides");
      ipc::QueueOpRequest r = base;
      r.all = true;
      return std::vector<ipc::QueueOpRequest>{r};
    }
    if (operand == "-") {
      for (std::string id; ids >> id;) {
        if (out.size() >= kMaxQueueOpIds)
          return fail("more than " + std::to_string(kMaxQueueOpIds) + " queue ids");
        if (!add(id)) return fail("not a queue id on standard input");
      }
      continue;
    }
    if (out.size() >= kMaxQueueOpIds)
      return fail("more than " + std::to_string(kMaxQueueOpIds) + " queue ids");
    if (!add(operand)) return fail("not a queue id: " + operand.substr(0, 64));
  }
  if (out.empty()) return fail("no queue id");
  return out;
}

int queue_op(const config::Config& config, const std::vector<ipc::QueueOpRequest>& requests,
             std::FILE* out, std::FILE* err) {
  int exit_code = 0;
  for (const auto& request : requests) {
    CourierdClient client(config.courierd_socket(), kAdminTimeout);
    client.send(ipc::encode(request));
    auto reply = ipc::decode_queue_op_reply(client.receive());
    if (!reply) throw std::runtime_error("unexpected reply from courierd");
    QueueOpOutcome outcome = describe_queue_op(request, *reply);
    std::fputs(outcome.text.c_str(), outcome.error ? err : out);
    if (outcome.exit_code == base::kExTempFail || exit_code == base::kExTempFail)
      exit_code = base::kExTempFail;
    else
      exit_code = std::max(exit_code, outcome.exit_code);
  }
  return exit_code;
}

}  // namespace estafette::admin
