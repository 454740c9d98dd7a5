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

// SCRAM-SHA-256 entries: PLAIN checks the password by PBKDF2 with the stored salt; the SCRAM
// lookup answers on the loop (never inside the call) with the user's secret, and with the same
// fake secret each time for an unknown user or a crypt(3) one, shaped like the real ones.
TEST(AuthFileBackend, ScramEntries) {
  event::Loop loop;
  const std::string scram = hash_scram_password("pencil");
  FileBackend backend(loop,
                      file_with("alice:" + hash_password("right") + "\nuser:" + scram + "\n"));
  EXPECT_TRUE(backend.offers_scram());
  EXPECT_EQ(check(loop, backend, creds("user", "pencil")).got().verdict, Verdict::Accepted);
  EXPECT_EQ(check(loop, backend, creds("user", "pencil2")).got().verdict, Verdict::Refused);
  EXPECT_EQ(check(loop, backend, creds("user", "pencil", "root")).got().verdict, Verdict::Refused);
  EXPECT_EQ(check(loop, backend, creds("alice", "right")).got().verdict, Verdict::Accepted);

  auto lookup = [&](const std::string& user) {
    std::optional<ScramLookup> got;
    backend.scram_secret(user, ClientInfo{}, [&](const ScramLookup& l) {
      got = l;
      loop.stop();
    });
    EXPECT_FALSE(got);  // never inside the call
    loop.run();
    return got.value_or(ScramLookup{});
  };
  auto found = lookup("user");
  EXPECT_EQ(found.kind, ScramLookup::Kind::Found);
  EXPECT_EQ(format_scram_secret(found.secret), scram);
  auto nobody = lookup("nobody");
  EXPECT_EQ(nobody.kind, ScramLookup::Kind::Unknown);
  EXPECT_EQ(nobody.secret.iterations, found.secret.iterations);
  EXPECT_EQ(nobody.secret.salt.size(), found.secret.salt.size());
  EXPECT_EQ(lookup("nobody").secret, nobody.secret);  // stable: asking twice tells nothing
  auto crypt_user = lookup("alice");
  EXPECT_EQ(crypt_user.kind, ScramLookup::Kind::Unknown);
  EXPECT_NE(crypt_user.secret.salt, nobody.secret.salt);

  FileBackend crypt_only(loop, file_with("alice:" + hash_password("right") + "\n"));
  EXPECT_FALSE(crypt_only.offers_scram());
}

}  // namespace
}  // namespace estafette::auth
