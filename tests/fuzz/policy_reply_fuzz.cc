// policy_reply_fuzz.cc: libFuzzer harness for the policy service answer reader and the action
// table (filters/policy/protocol.h): the input is a service's byte stream, fed in chunks chosen
// by its first byte. Checks that splitting never changes the result, that a Done answer's
// action maps to a verdict the Chain accepts (a valid reply, valid modifications) or to an
// error, and that the reader never accepts more than kMaxReply bytes; abort()s on a violation.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address -I. tests/fuzz/policy_reply_fuzz.cc
//        filters/policy/protocol.cc filters/validate.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "filters/policy/protocol.h"
#include "filters/validate.h"

namespace {

using namespace estafette;

void check(bool ok) {
  if (!ok) std::abort();
}

policy::ReplyReader::Status read(std::string_view input, std::size_t chunk,
                                 policy::ReplyReader& reader) {
  auto status = policy::ReplyReader::Status::NeedMore;
  std::size_t step = chunk == 0 ? input.size() : chunk;
  for (std::size_t i = 0; i < input.size(); i += step) {
    status = reader.feed(input.substr(i, step));
    if (status == policy::ReplyReader::Status::Error) break;
  }
  return status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(bytes), size);
  std::size_t chunk = input.empty() ? 0 : static_cast<unsigned char>(input[0]) % 17;
  if (!input.empty()) input.remove_prefix(1);

  policy::ReplyReader whole, split;
  auto a = read(input, 0, whole);
  auto b = read(input, chunk, split);
  check(a == b);
  if (a == policy::ReplyReader::Status::Error) check(!whole.error().empty());
  if (a != policy::ReplyReader::Status::Done) return 0;
  check(input.size() <= policy::kMaxReply);
  check(whole.action() == split.action());

  policy::Decision decision;
  std::string error;
  if (!policy::parse_action(whole.action(), decision, &error)) {
    check(!error.empty());
    return 0;
  }
  using A = filters::Verdict::Action;
  check(decision.verdict.action == A::Continue || decision.verdict.action == A::ReplyCode ||
        decision.verdict.action == A::Discard);
  if (decision.verdict.action == A::ReplyCode)
    check(filters::check_reply(decision.verdict.text).empty());
  for (const auto& mod : decision.modifications) {
    if (mod.kind == filters::Modification::Kind::Quarantine) {
      for (char c : mod.text) check(c != '\r' && c != '\n' && c != '\0');
    } else {
      check(mod.kind == filters::Modification::Kind::InsertHeader && mod.index == 0);
      check(mod.name.find_first_of(":\r\n") == std::string::npos && !mod.name.empty());
      check(mod.value.find_first_of("\r\n") == std::string::npos);
    }
  }
  return 0;
}
