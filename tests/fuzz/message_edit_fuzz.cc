// message_edit_fuzz.cc: libFuzzer harness for what esmtpd does with a filtered message: parse it
// (filters/message_edit.h), decode a milter's end-of-message replies (filters/milter/protocol.h)
// into modifications as the milter client does, check them (filters/validate.h) and apply the
// valid ones. The input is the plain message, the separator "\0MODS\0", then the milter's byte
// stream. abort()s when: the two parsers disagree; a checked modification, once applied, adds a
// header field or ends the header where it should not (the message parsed again from its
// rendering differs: a header or body injection); write_wire() differs from
// stuff(render_message()); a quarantine reason is not printable ASCII.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address -I. -I<builddir>
//        tests/fuzz/message_edit_fuzz.cc filters/*.cc filters/milter/protocol.cc lib/smtp/*.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "filters/message_edit.h"
#include "filters/milter/protocol.h"
#include "filters/validate.h"
#include "lib/smtp/dotstuff.h"

namespace {

using namespace estafette;
using filters::Modification;
using milter::ReplyType;

void check(bool ok) {
  if (!ok) std::abort();
}

bool same(const filters::ParsedMessage& a, const filters::ParsedMessage& b) {
  if (a.body != b.body || a.headers.size() != b.headers.size()) return false;
  for (std::size_t i = 0; i < a.headers.size(); ++i)
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value)
      return false;
  return true;
}

// As filters/milter/client.cc turns end-of-message replies into modifications (no leading
// space negotiated: the client adds it).
std::vector<Modification> modifications(const std::vector<milter::Reply>& replies) {
  using K = Modification::Kind;
  std::vector<Modification> mods;
  for (const auto& r : replies) {
    Modification m;
    switch (r.type) {
      case ReplyType::AddHeader:
      case ReplyType::InsertHeader:
      case ReplyType::ChangeHeader:
        m.kind = r.type == ReplyType::AddHeader      ? K::AddHeader
                 : r.type == ReplyType::InsertHeader ? K::InsertHeader
                                                     : K::ChangeHeader;
        m.name = r.name;
        m.value = r.value.empty() && r.type == ReplyType::ChangeHeader ? "" : " " + r.value;
        m.index = r.index;
        break;
      case ReplyType::AddRcpt:
      case ReplyType::AddRcptPar:
      case ReplyType::DelRcpt:
      case ReplyType::ChangeFrom:
        m.kind = r.type == ReplyType::DelRcpt      ? K::DelRcpt
                 : r.type == ReplyType::ChangeFrom ? K::ChangeFrom
                                                   : K::AddRcpt;
        m.address = r.address;
        m.args = r.args;
        break;
      case ReplyType::ReplaceBody:
        if (!mods.empty() && mods.back().kind == K::ReplaceBody) {
          mods.back().body += r.body;
          continue;
        }
        m.kind = K::ReplaceBody;
        m.body = r.body;
        break;
      case ReplyType::Quarantine:
        m.kind = K::Quarantine;
        m.text = r.text;
        break;
      default:
        continue;
    }
    mods.push_back(std::move(m));
  }
  return mods;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(bytes), size);
  constexpr std::string_view kSeparator("\0MODS\0", 6);
  std::size_t sep = input.find(kSeparator);
  std::string_view plain = input.substr(0, sep);
  std::string_view stream =
      sep == std::string_view::npos ? std::string_view() : input.substr(sep + kSeparator.size());

  filters::ParsedMessage message = filters::parse_message(plain);
  check(same(message, filters::parse_message_in_place(std::string(plain))));
  // Parsing what we render gives the message back (so the check after apply means something).
  filters::ParsedMessage original = filters::parse_message(filters::render_message(message));
  check(same(original, message));

  milter::ReplyParser parser;
  std::vector<milter::Reply> replies;
  parser.feed(stream, replies);
  std::vector<Modification> mods = modifications(replies);
  filters::ModificationLimits limits;
  limits.max_body = 1 << 20;
  filters::Envelope envelope{"s@example.test", {"r@example.test"}, {}};
  if (filters::check_modifications(mods, limits).empty()) {
    filters::apply(mods, message, envelope);
    for (char c : envelope.quarantine) check(c >= 32 && c <= 126);
  }
  std::string rendered = filters::render_message(message);
  check(same(filters::parse_message(rendered), message));
  std::string pieces;
  check(filters::write_wire(message, [&](std::string_view piece) {
    pieces.append(piece);
    return true;
  }));
  check(pieces == smtp::stuff(rendered));
  return 0;
}
