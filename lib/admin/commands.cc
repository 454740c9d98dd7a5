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

std::string op_name(ipc::QueueOp op) {
  switch (op) {
    case ipc::QueueOp::Hold:
      return "hold";
    case ipc::QueueOp::Release:
      return "release";
    case ipc::QueueOp::Cancel:
      return "cancel";
    case ipc::QueueOp::Delete:
      return "delete";
    case ipc::QueueOp::Flush:
      return "flush";
  }
  return "?";
}

// Printable ASCII, without spaces unless `spaces`.
bool printable(std::string_view text, bool spaces) {
  for (unsigned char c : text)
    if (c < 0x20 || c >= 0x7f || (c == ' ' && !spaces)) return false;
  return true;
}
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
  const std::string name = op_name(request.op);
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
    case ipc::QueueOp::Flush:
      text += n(reply.messages) + " message(s), " + n(reply.recipients) +
              " recipient(s) ready for delivery";
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

std::optional<std::uint64_t> parse_duration(std::string_view text) {
  if (text.size() < 2 || text.size() > 13) return std::nullopt;
  std::uint64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  std::uint64_t value = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');  // at most 12 digits: no overflow
  }
  if (value == 0 || value > ipc::kMaxOlderThanSeconds / unit) return std::nullopt;
  return value * unit;
}

bool is_selection_option(std::string_view arg) {
  return arg == "--sender" || arg == "--rcpt-domain" || arg == "--destination" ||
         arg == "--older-than" || arg == "--reason";
}

std::optional<ipc::QueueSelection> parse_selection(
    const std::vector<std::pair<std::string, std::string>>& options, std::string* why) {
  ipc::QueueSelection s;
  std::vector<std::string> seen;
  auto fail = [&](std::string text) -> std::optional<ipc::QueueSelection> {
    *why = std::move(text);
    return std::nullopt;
  };
  auto lower = [](std::string text) {
    for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  };
  for (const auto& [option, value] : options) {
    if (!is_selection_option(option)) return fail("unknown option " + option.substr(0, 64));
    if (std::find(seen.begin(), seen.end(), option) != seen.end())
      return fail(option + " given twice");
    seen.push_back(option);
    const std::string bad = "bad " + option + " value";
    if (value.empty() || value.size() > ipc::kMaxSelectorSize) return fail(bad);
    if (option == "--sender") {
      std::string address = value;
      if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
        address = address.substr(1, address.size() - 2);
      if (!printable(address, false) || address.find_first_of("<>") != std::string::npos ||
          (!address.empty() && (address.front() == '@' || address.back() == '@')))
        return fail(bad + " (an address, or <> for the null sender)");
      s.by_sender = true;
      s.sender = address;
    } else if (option == "--rcpt-domain") {
      const bool literal = value.front() == '[' && value.back() == ']';
      for (char c : value)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' &&
            !(literal && (c == '[' || c == ']' || c == ':')))
          return fail(bad + " (a domain, without @)");
      s.rcpt_domain = lower(value);
    } else if (option == "--destination") {
      if (!printable(value, false)) return fail(bad + " (a destination as mailq shows it)");
      s.destination = lower(value);
    } else if (option == "--older-than") {
      auto seconds = parse_duration(value);
      if (!seconds) return fail(bad + " (a positive number and s, m, h or d: 90s, 30m, 2h, 3d)");
      s.older_than_s = *seconds;
    } else {
      if (!printable(value, true)) return fail(bad + " (printable text)");
      s.reason = value;
    }
  }
  return s;
}

std::string describe_selected(ipc::QueueOp op, const ipc::QueueSelected& m) {
  static constexpr const char* kDone[] = {"held", "released", "bounced", "dropped",
                                          "ready for delivery"};
  std::string text = m.queue_id + ": " + std::to_string(m.recipients) + " recipient(s) " +
                     kDone[static_cast<int>(op)];
  if (m.in_flight > 0) text += ", " + std::to_string(m.in_flight) + " in a delivery attempt";
  return text + "\n";
}

QueueOpOutcome describe_selection(ipc::QueueOp op, const ipc::QueueOpReply& reply) {
  if (reply.status == ipc::QueueOpStatus::NotFound)
    return {"estafette: " + op_name(op) + ": no message matches the selection\n", true, 1};
  ipc::QueueOpRequest as_all{op, true, ""};
  return describe_queue_op(as_all, reply);
}

int queue_select(const config::Config& config, const ipc::QueueSelectRequest& request,
                 std::FILE* out, std::FILE* err) {
  CourierdClient client(config.courierd_socket(), kAdminTimeout);
  client.send(ipc::encode(request));
  for (;;) {
    ipc::Frame f = client.receive();
    if (auto m = ipc::decode_queue_selected(f)) {
      std::fputs(describe_selected(request.op, *m).c_str(), out);
      continue;
    }
    auto reply = ipc::decode_queue_op_reply(f);
    if (!reply) throw std::runtime_error("unexpected reply from courierd");
    QueueOpOutcome outcome = describe_selection(request.op, *reply);
    std::fputs(outcome.text.c_str(), outcome.error ? err : out);
    return outcome.exit_code;
  }
}

}  // namespace estafette::admin
