// auth::FileBackend on a real loop with real yescrypt hashing on its pool: verdicts, the
// authorization identity, an unknown user costing a hash like a known one, a full queue
// answering Unavailable later (never inside verify()), and a reload.
#include "lib/auth/backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <thread>
#include <vector>

namespace estafette::auth {
namespace {

using namespace std::chrono_literals;

struct Answer {
  Verdict verdict;
  std::string user;
};

std::shared_ptr<const PasswdFile> file_with(const std::string& text) {
  std::string error;
  auto file = PasswdFile::parse(text, &error);
  if (!file) throw std::runtime_error(error);
  return std::make_shared<const PasswdFile>(std::move(*file));
}

Credentials creds(std::string user, std::string password, std::string authzid = "") {
  Credentials c;
  c.username = std::move(user);
  c.password = std::move(password);
  c.authzid = std::move(authzid);
  return c;
}

// Runs verify on the loop and waits for its answer; returns it and the time it took.
std::pair<Answer, event::Clock::duration> check(event::Loop& loop, Backend& backend,
                                                Credentials c) {
  std::optional<Answer> answer;
  const auto loop_thread = std::this_thread::get_id();
  auto start = event::Clock::now();
  backend.verify(std::move(c), {}, [&](Verdict v, const std::string& user) {
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    answer = Answer{v, user};
    loop.stop();
  });
  EXPECT_FALSE(answer);  // never inside verify()
  loop.add_timer(10s, [&] { loop.stop(); });
  loop.run();
  EXPECT_TRUE(answer);
  return {answer.value_or(Answer{Verdict::Unavailable, "timeout"}), event::Clock::now() - start};
}

TEST(AuthFileBackend, VerdictsAndTheAuthorizationIdentity) {
  event::Loop loop;
  FileBackend backend(loop, file_with("alice:" + hash_password("right") + "\n"));
  auto [ok, t1] = check(loop, backend, creds("alice", "right"));
  EXPECT_EQ(ok.verdict, Verdict::Accepted);
  EXPECT_EQ(ok.user, "alice");
  EXPECT_EQ(check(loop, backend, creds("alice", "wrong")).first.verdict, Verdict::Refused);
  EXPECT_EQ(check(loop, backend, creds("bob", "right")).first.verdict, Verdict::Refused);
  EXPECT_EQ(check(loop, backend, creds("alice", "right", "alice")).first.verdict,
            Verdict::Accepted);
  auto other = check(loop, backend, creds("alice", "right", "root")).first;
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
    known.push_back(check(loop, backend, creds("alice", "wrong")).second);
    unknown.push_back(check(loop, backend, creds("nobody", "wrong")).second);
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
  EXPECT_EQ(check(loop, backend, creds("alice", "old")).first.verdict, Verdict::Accepted);
  backend.reload(file_with("alice:" + hash_password("new") + "\n"));
  EXPECT_EQ(check(loop, backend, creds("alice", "old")).first.verdict, Verdict::Refused);
  EXPECT_EQ(check(loop, backend, creds("alice", "new")).first.verdict, Verdict::Accepted);
}

}  // namespace
}  // namespace estafette::auth
