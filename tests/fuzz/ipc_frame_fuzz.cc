// ipc_frame_fuzz.cc: libFuzzer harness for the IPC wire format (lib/ipc/frame.h, messages.h),
// what every process reads from its peers (a module, esmtpd, the admin tool). The input is a
// byte stream fed to FrameSplitter in chunks chosen by its first byte. Checks that splitting
// never changes the frames or the error, that no frame is empty or over kMaxFrame, and that
// every message a decoder accepts encodes to a frame that decodes and encodes to the same bytes
// again (the decoders refuse what encode() cannot say); abort()s on any violation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/ipc/frame.h"
#include "lib/ipc/messages.h"

namespace {

using namespace estafette::ipc;

void check(bool ok) {
  if (!ok) std::abort();
}

std::vector<Frame> split(std::string_view input, std::size_t chunk, bool& error) {
  FrameSplitter splitter;
  std::vector<Frame> frames;
  for (std::size_t i = 0; i < input.size() || i == 0; i += chunk) {
    splitter.feed(input.substr(i, chunk));
    while (auto f = splitter.next()) frames.push_back(std::move(*f));
    if (splitter.error() || input.empty()) break;
  }
  error = splitter.error();
  return frames;
}

Frame only_frame(const std::string& bytes) {
  FrameSplitter splitter;
  splitter.feed(bytes);
  auto f = splitter.next();
  check(f.has_value() && !splitter.error() && !splitter.next());
  return *f;
}

// decode(f) accepted: its encoding must be a fixed point of decode + encode.
template <typename Decode>
void round_trip(const Frame& f, Decode decode) {
  auto m = decode(f);
  if (!m) return;
  std::string once = encode(*m);
  check(once.size() <= 4 + kMaxFrame);
  auto again = decode(only_frame(once));
  check(again.has_value());
  check(encode(*again) == once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t chunk = 1 + data[0] % 16;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  bool whole_error = false, split_error = false;
  std::vector<Frame> whole = split(input, input.size() + 1, whole_error);
  std::vector<Frame> pieces = split(input, chunk, split_error);
  check(whole_error == split_error && whole.size() == pieces.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    const Frame& f = whole[i];
    check(f.type == pieces[i].type && f.payload == pieces[i].payload);
    check(f.payload.size() + 1 <= kMaxFrame);
    round_trip(f, decode_new_message);
    round_trip(f, decode_deliver);
    round_trip(f, decode_deliver_result);
    round_trip(f, decode_module_ready);
    round_trip(f, decode_queue_list_request);
    round_trip(f, decode_queue_entry);
    round_trip(f, decode_queue_list_end);
    round_trip(f, decode_flush_request);
    round_trip(f, decode_flush_reply);
    round_trip(f, decode_queue_op_request);
    round_trip(f, decode_queue_op_reply);
    round_trip(f, decode_queue_select_request);
    round_trip(f, decode_queue_selected);
  }
  return 0;
}
