// dsn_compose_fuzz.cc: libFuzzer harness for courierd/dsn.h's compose_dsn(): a bounce, delay or
// success notice built from fields that remote peers and senders choose (the sender, recipients,
// ORCPT, ENVID, the remote server's reply, the original headers or message). The input is those
// fields separated by NUL bytes; its first byte picks the action, the expired flags and whether
// the whole message is attached. The notice is then parsed back. Checks: it is SMTP wire form
// (CRLF only, dot-stuffed); its header section is exactly the fields compose writes; it has the
// three MIME parts and the closing delimiter of its boundary; the delivery-status part has one
// per-message group and one group per recipient, each made of known fields only, with the
// recipient's action and a status of the right class; the lines compose writes itself stay
// within RFC 5322's 998 characters when the envelope fields are within SMTP's limits (an
// address at most 64 + 1 + 255, ENVID 100, ORCPT 500). abort()s
// on any violation.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "courierd/dsn.h"
#include "lib/smtp/dotstuff.h"

namespace {

using namespace estafette::courierd;

void check(bool ok) {
  if (!ok) std::abort();
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

std::string_view field_name(std::string_view line) {
  auto colon = line.find(": ");
  check(colon != std::string_view::npos && colon > 0);
  return line.substr(0, colon);
}

// "d.ddd.ddd" whose class is one of `classes`.
bool status_ok(std::string_view s, std::string_view classes) {
  auto parts = split(s, '.');
  if (parts.size() != 3 || parts[0].size() != 1 || classes.find(parts[0][0]) == s.npos)
    return false;
  for (auto p : parts) {
    if (p.empty() || p.size() > 3) return false;
    for (char c : p)
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t control = data[0];
  auto fields = split(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), '\0');
  fields.resize(std::max<std::size_t>(fields.size(), 5));

  DsnRequest r;
  r.hostname = "mx.example.org";
  r.message_id = "0LWQ3K9ZA-02BXF-00A1K3P0";
  r.queue_id = "0LWQ3K9Z9-02BXF-00A1K3OZ";
  r.arrival = 1700000000;
  r.now = 1700003600;
  r.retry_until = control & 0x80 ? 1700600000 : 0;
  r.sender = fields[0];
  r.envid = fields[1];
  r.original_headers = fields[2];
  if (control & 0x40) r.original_message = fields[3];
  const auto action = static_cast<DsnAction>(control % 4);
  bool within_smtp_limits = r.sender.size() <= 320 && r.envid.size() <= 100;
  for (std::size_t i = 4; i < fields.size(); i += 4) {
    DsnRecipient f;
    f.recipient = fields[i];
    f.reply = i + 1 < fields.size() ? fields[i + 1] : "";
    f.remote_mta = i + 2 < fields.size() ? fields[i + 2] : "";
    f.orcpt = i + 3 < fields.size() ? fields[i + 3] : "";
    f.action = action;
    f.expired = (control >> (2 + (i / 4) % 4)) & 1;
    within_smtp_limits = within_smtp_limits && f.recipient.size() <= 320 &&
                         f.remote_mta.size() <= 255 && f.orcpt.size() <= 500;
    r.recipients.push_back(std::move(f));
  }

  const std::string wire = compose_dsn(r);
  // Wire form: CRLF line ends only, every line starting with a dot stuffed.
  check(wire.size() >= 2 && wire.compare(wire.size() - 2, 2, "\r\n") == 0);
  for (std::size_t i = 0; i < wire.size(); ++i) {
    if (wire[i] == '\r') check(i + 1 < wire.size() && wire[i + 1] == '\n');
    if (wire[i] == '\n') check(i > 0 && wire[i - 1] == '\r');
    if (wire[i] == '.' && (i == 0 || wire[i - 1] == '\n'))
      check(i + 1 < wire.size() && wire[i + 1] == '.');
  }
  std::string plain;
  estafette::smtp::Unstuffer unstuffer(true);
  unstuffer.feed(wire, plain);
  unstuffer.finish(plain);
  auto lines = split(plain, '\n');
  check(lines.back().empty());
  lines.pop_back();

  // The header section: exactly compose's fields.
  static const std::vector<std::string_view> kHeaders = {
      "From",           "To",           "Subject",     "Date", "Message-ID",
      "Auto-Submitted", "MIME-Version", "Content-Type"};
  std::size_t at = 0;
  for (auto name : kHeaders) check(field_name(lines.at(at++)) == name);
  check(lines.at(at++).rfind("\tboundary=\"", 0) == 0 && lines.at(at++).empty());

  // The MIME structure, unless the fuzzer wrote the boundary itself (into the original).
  const std::string boundary = r.message_id + "/" + r.hostname;
  if (std::string_view(reinterpret_cast<const char*>(data), size).find(boundary) !=
      std::string_view::npos)
    return 0;
  std::vector<std::size_t> delimiters;
  for (std::size_t i = at; i < lines.size(); ++i) {
    if (lines[i] == "--" + boundary) delimiters.push_back(i);
    if (lines[i] == "--" + boundary + "--") check(i + 1 == lines.size());
  }
  check(delimiters.size() == 3 && lines.back() == "--" + boundary + "--");
  // The parts compose writes itself (not the attached original).
  if (within_smtp_limits)
    for (std::size_t i = 0; i < delimiters[2]; ++i) check(lines[i].size() <= 998);

  // The delivery-status part: its part headers, then groups separated by empty lines.
  std::size_t i = delimiters[1] + 1;
  check(lines.at(i++) == "Content-Description: Delivery report");
  check(lines.at(i++) == "Content-Type: message/delivery-status" && lines.at(i++).empty());
  static const std::set<std::string_view> kMessageFields = {"Original-Envelope-Id", "Reporting-MTA",
                                                            "X-Estafette-Queue-ID", "Arrival-Date"};
  static const std::set<std::string_view> kRecipientFields = {
      "Original-Recipient", "Final-Recipient", "Action",          "Status",
      "Remote-MTA",         "Diagnostic-Code", "Will-Retry-Until"};
  std::vector<std::vector<std::string_view>> groups(1);
  for (; i + 1 < delimiters[2]; ++i) {
    if (lines[i].empty()) {
      groups.emplace_back();
    } else {
      groups.back().push_back(lines[i]);
    }
  }
  check(lines.at(delimiters[2] - 1).empty());
  check(groups.size() == 1 + r.recipients.size());
  for (auto line : groups[0]) check(kMessageFields.contains(field_name(line)));
  for (std::size_t g = 1; g < groups.size(); ++g) {
    const DsnRecipient& f = r.recipients[g - 1];
    std::set<std::string_view> seen;
    for (auto line : groups[g]) {
      auto name = field_name(line);
      check(kRecipientFields.contains(name) && seen.insert(name).second);
      auto value = line.substr(name.size() + 2);
      if (name == "Action") check(value == action_text(f.action));
      if (name == "Status") {
        std::string_view classes = f.action == DsnAction::Failed    ? (f.expired ? "45" : "5")
                                   : f.action == DsnAction::Delayed ? "4"
                                                                    : "2";
        check(status_ok(value, classes));
      }
    }
    check(seen.contains("Final-Recipient") && seen.contains("Action") && seen.contains("Status"));
  }
  return 0;
}
