// segment_scan_fuzz.cc: libFuzzer harness for the segment backend's start-up scan
// (lib/queue/segment_backend.h): what courierd reads back from a queue dir after a crash, a torn
// write or a corrupt disk. The input is a queue dir: its first byte says how many of the
// following bytes are the state log, the rest is one segment; both are written to a fresh
// temporary dir (TMPDIR or /tmp) that is removed afterwards. Checks: every message scan() reports
// loads again with the same envelope and location inside the segment, its done flags match its
// recipients; a second scan (after the first one repaired and set aside what it had to) reports
// the same messages; abort()s on any violation.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "lib/queue/segment_backend.h"

namespace {

using namespace estafette::queue;

void check(bool ok) {
  if (!ok) std::abort();
}

void write_file(const std::string& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  check(fd >= 0);
  check(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

std::map<QueueId, StoredMessage> scan(const std::string& dir) {
  SegmentBackendOptions options;
  options.sync_threads = 1;
  options.verify_body_on_read = true;
  auto backend = open_segment_backend(dir, options);
  std::map<QueueId, StoredMessage> found;
  backend->scan([&found](StoredMessage&& m) {
    check(!found.contains(m.envelope.id));
    found.emplace(m.envelope.id, std::move(m));
  });
  for (const auto& [id, m] : found) {
    check(m.done.size() == m.envelope.recipients.size());
    check(m.body_offset + m.body_size >= m.body_offset);
    auto again = backend->load(id);
    check(again.has_value());
    check(again->envelope == m.envelope && again->path == m.path &&
          again->body_offset == m.body_offset && again->body_size == m.body_size);
  }
  return found;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::size_t state_size = std::min<std::size_t>(data[0], input.size());
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/segment_scan_fuzz.XXXXXX";
  check(::mkdtemp(dir.data()) != nullptr);
  check(::mkdir((dir + "/seg").c_str(), 0700) == 0);
  write_file(dir + "/state", input.substr(0, state_size));
  write_file(dir + "/seg/0LWQ3K9ZA-02BXF-00A1K3P0", input.substr(state_size));

  auto first = scan(dir);
  for (const auto& [id, m] : first) {
    check(m.body_offset + m.body_size <= input.size() - state_size);
  }
  auto second = scan(dir);
  check(first.size() == second.size());
  for (const auto& [id, m] : first) {
    auto it = second.find(id);
    check(it != second.end() && it->second.envelope == m.envelope &&
          it->second.body_size == m.body_size && it->second.done == m.done);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
