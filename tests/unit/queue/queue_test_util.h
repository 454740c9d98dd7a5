// queue_test_util.h: helpers for the lib/queue tests: a temp dir removed afterwards, file
// reading/writing, test envelopes and bodies. Test thread only.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <memory>
#include <utility>

#include "lib/queue/backend.h"

namespace estafette::queue::testing {

class TempDir final {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "estafette-queue-XXXXXX");
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<std::string> list_names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline Envelope test_envelope(std::size_t recipients = 3) {
  Envelope e;
  e.arrival = 1700000000;
  e.sender = "alice@example.org";
  e.client_ip = "192.0.2.7";
  e.helo = "mail.example.org";
  for (std::size_t i = 0; i < recipients; ++i) {
    e.recipients.push_back("rcpt" + std::to_string(i) + "@example.net");
  }
  return e;
}

// Wire-form-like body with every byte value, deterministic for a seed.
inline std::string test_body(std::size_t size, std::uint32_t seed = 1) {
  std::string body(size, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : body) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return body;
}

// The body bytes of a stored message, read from its file at body_offset.
inline std::string stored_body(const StoredMessage& m) {
  std::string all = read_file(m.path);
  if (m.body_offset + m.body_size > all.size()) return "<out of range>";
  return all.substr(m.body_offset, m.body_size);
}

// Runs child(c) for c in [0, children) in forked processes at once and waits for them all;
// true when every child returned true (and exited normally).
inline bool run_forked(int children, const std::function<bool(int)>& child) {
  std::vector<pid_t> pids;
  for (int c = 0; c < children; ++c) {
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) ::_exit(child(c) ? 0 : 1);
    pids.push_back(pid);
  }
  bool ok = true;
  for (pid_t pid : pids) {
    int status = 0;
    ok = ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ok;
  }
  return ok;
}

// Everything scan() visits, in its order.
inline std::vector<StoredMessage> scan_all(Backend& backend) {
  std::vector<StoredMessage> all;
  backend.scan([&](StoredMessage&& m) { all.push_back(std::move(m)); });
  return all;
}

// A test run once per backend (GetParam() is "segment" or "file"), each in a fresh directory.
class PerBackend : public ::testing::TestWithParam<const char*> {
 protected:
  std::unique_ptr<Backend> open() { return open_backend(GetParam(), dir_.path()); }
  QueueId add(Backend& backend, std::size_t recipients = 2) {
    QueueId id;
    EXPECT_TRUE(write_message(backend, test_envelope(recipients), "x\r\n", &id));
    return id;
  }
  // One flag (held, warned) of what a fresh instance's start-up scan finds, by id.
  std::vector<std::pair<QueueId, bool>> after_restart(bool StoredMessage::*flag) {
    std::vector<std::pair<QueueId, bool>> out;
    for (auto& m : scan_all(*open())) out.emplace_back(m.envelope.id, m.*flag);
    return out;
  }
  TempDir dir_;
};

}  // namespace estafette::queue::testing
