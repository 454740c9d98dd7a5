// verify_util.h: running one auth::Backend::verify() on a real loop in the auth tests, and
// checking the contract every backend keeps: Done on the loop thread, never inside verify().
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "lib/auth/backend.h"

namespace estafette::auth::testing {

struct Answer {
  Verdict verdict;
  std::string user;
};

struct Checked {
  std::optional<Answer> answer;  // nullopt: none within the limit (the test has failed)
  event::Clock::duration took{};
  Answer got() const { return answer.value_or(Answer{Verdict::Unavailable, "no answer"}); }
};

inline Credentials creds(std::string user, std::string password, std::string authzid = "") {
  Credentials c;
  c.username = std::move(user);
  c.password = std::move(password);
  c.authzid = std::move(authzid);
  return c;
}

// verify() on the loop, waiting at most `limit` for the answer.
inline Checked check(event::Loop& loop, Backend& backend, Credentials c,
                     std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  Checked out;
  const ClientInfo client{"127.0.0.1", "127.0.0.2", 587, 40000, true};
  const auto loop_thread = std::this_thread::get_id();
  const auto start = event::Clock::now();
  backend.verify(std::move(c), client, [&](Verdict v, const std::string& user) {
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    out.answer = Answer{v, user};
    loop.stop();
  });
  EXPECT_FALSE(out.answer);  // never inside verify()
  auto timer = loop.add_timer(limit, [&] { loop.stop(); });
  loop.run();
  loop.cancel_timer(timer);
  out.took = event::Clock::now() - start;
  EXPECT_TRUE(out.answer);
  return out;
}

}  // namespace estafette::auth::testing
