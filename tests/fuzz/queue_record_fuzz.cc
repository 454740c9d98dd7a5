// queue_record_fuzz.cc: libFuzzer harness for the queue record reader (lib/queue/queue_file.h):
// the input is a segment's bytes as found on disk after a crash or corruption, read record by
// record as the segment backend's scan does. Checks the reader's contracts (every record it
// accepts lies within the input, ends after it starts, carries a valid id and a body whose
// checksum matches) and that it never reads past the limit; abort()s on any violation.
// Build: clang++ -std=c++20 -fsanitize=fuzzer,address -I. tests/fuzz/queue_record_fuzz.cc
//        lib/queue/{checksum,fs_util,queue_file,queue_id}.cc lib/base/{fd,log}.cc -lPocoFoundation
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "lib/base/fd.h"
#include "lib/queue/checksum.h"
#include "lib/queue/queue_file.h"
#include "lib/queue/queue_id.h"

namespace {

using namespace estafette::queue;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  estafette::base::UniqueFd fd(::memfd_create("segment", MFD_CLOEXEC));
  check(fd.valid());
  std::string bytes(reinterpret_cast<const char*>(data), size);
  check(::write(fd.get(), bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  // A limit short of the end, as when a writer is still appending.
  std::uint64_t limit = size > 0 ? size - data[0] % (size + 1) / 2 : 0;
  for (std::uint64_t at = 0; at < limit;) {
    std::string error;
    auto info = read_queue_record(fd.get(), at, limit, Check::kBody, &error);
    if (!info) {
      check(!error.empty());
      break;
    }
    check(info->record_end > at && info->record_end <= limit);
    check(info->body_offset > at && info->body_offset + info->body_size < info->record_end);
    check(valid_queue_id(info->envelope.id));
    check(crc32c(std::string_view(bytes).substr(info->body_offset, info->body_size)) ==
          info->body_crc);
    at = info->record_end;
  }
  std::string error;
  auto whole = read_queue_file(fd.get(), Check::kStructure, &error);
  if (whole) check(whole->record_end == size);
  return 0;
}
