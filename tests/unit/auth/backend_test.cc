// auth::FileBackend on a real loop with real yescrypt hashing on its pool: verdicts, the
// authorization identity, an unknown user costing a hash like a known one, a full queue
// answering Unavailable later (never inside verify()), and a reload.
#include "lib/auth/backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <thread>
#include <vector>

#include "tests/unit/auth/verify_util.h"

namespace estafette::auth {
namespace {

using namespace std::chrono_literals;
using testing::check;
using testing::creds;

std::shared_ptr<const PasswdFile> file_with(const std::string& text) {
  std::string error;
  auto file = PasswdFile::parse(text, &error);
  if (!file) throw std::runtime_error(error);
  return std::make_shared<const PasswdFile>(std::move(*file));
}

TEST(AuthFileBackend, VerdictsAndTheAuthorizationIdentity) {
  event::Loop loop;
  FileBackend backend(loop, file_with("alice:" + hash_password("right") + "\n"));
  auto ok = check(loop, backend, creds("alice", "right")).got();
  EXPECT_EQ(ok.verdict, Verdict::Accepted);
  EXPECT_EQ(ok.user, "alice");
  EXPECT_EQ(check(loop, backend, creds("alice", "wrong")).got().verdict, Verdict::Refused);
  EXPECT_EQ(check(loop, backend, creds("bob", "right")).got().verdict, Verdict::Refused);
  EXPECT_EQ(check(loop, backend, creds("alice", "right", "alice")).got().verdict,
            Verdict::Accepted);
  auto other = check(loop, backend, creds("alice", "right", "root")).got();
  EXPECT_EQ(other.verdict, Verdict::Refused);  // acting for another user
  EXPECT_EQ(other.user, "");
}

// An attacker probing for user names gets no timing signal: an unknown user costs a full hash.
// (A yescrypt hash takes milliseconds; a map miss without one, microseconds.)
TEST(AuthFileBackend, UnknownUsersCostAHashToo) {
  event::Loop loop;
  FileBackend backend(loop, file_with("alice:" + hash_password("right") + "\n"));
  std::vector<event::Clock::duration> known, unknown;
  for (int i = 0; i < 3; ++i) {
    known.push_back(check(loop, backend, creds("alice", "wrong")).took);
    unknown.push_back(check(loop, backend, creds("nobody", "wrong")).took);
  }
  std::sort(known.begin(), known.end());
  std::sort(unknown.begin(), unknown.end());
  EXPECT_GT(unknown[1] * 4, known[1]) << "unknown users answer much faster than known ones";
}

TEST(AuthFileBackend, FullQueueIsUnavailableAndAnsweredLater) {
  event::Loop loop;
  FileBackend backend(loop, file_with("alice:" + hash_password("right") + "\n"),
                      {.threads = 1, .max_queued = 1, .timeout = 10s});
  std::vector<Verdict> verdicts;
  auto record = [&](Verdict v, const std::string&) {
    verdicts.push_back(v);
    if (verdicts.size() == 4) loop.stop();
  };
  for (int i = 0; i < 4; ++i) backend.verify(creds("alice", "right"), {}, record);
  EXPECT_TRUE(verdicts.empty());  // not even the refused ones inside verify()
  loop.add_timer(10s, [&] { loop.stop(); });
  loop.run();
  ASSERT_EQ(verdicts.size(), 4u);
  EXPECT_GE(std::count(verdicts.begin(), verdicts.end(), Verdict::Unavailable), 2);
  EXPECT_GE(std::count(verdicts.begin(), verdicts.end(), Verdict::Accepted), 1);
}

TEST(AuthFileBackend, Reload) {
  event::Loop loop;
  FileBackend backend(loop, file_with("alice:" + hash_password("old") + "\n"));
  EXPECT_EQ(check(loop, backend, creds("alice", "old")).got().verdict, Verdict::Accepted);
  backend.reload(file_with("alice:" + hash_password("new") + "\n"));
  EXPECT_EQ(check(loop, backend, creds("alice", "old")).got().verdict, Verdict::Refused);
  EXPECT_EQ(check(loop, backend, creds("alice", "new")).got().verdict, Verdict::Accepted);
}

}  // namespace
}  // namespace estafette::auth
