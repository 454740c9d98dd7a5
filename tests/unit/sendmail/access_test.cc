// lib/submit/access: submit_allowed_users, parsed from the config and resolved against the
// passwd and group databases (root, daemon and nobody exist everywhere the tests run).
#include "lib/submit/access.h"

#include <gtest/gtest.h>

#include "lib/config/config.h"

namespace estafette::submit {
namespace {

config::Config parse(const std::string& text) {
  return config::parse_config(text, "test.conf", "/tmp");
}

TEST(SubmitAccess, AnyoneByDefault) {
  auto access = SubmitAccess::resolve(parse(""));
  EXPECT_TRUE(access.anyone());
  EXPECT_TRUE(access.allows(65534, 65534, {}));
  EXPECT_TRUE(SubmitAccess::resolve(parse("submit_allowed_users = anyone\n")).anyone());
}

TEST(SubmitAccess, UsersUidsAndGroups) {
  auto access = SubmitAccess::resolve(
      parse("user = nobody\nsubmit_allowed_users = daemon, 4242, @daemon, no-such-user-x\n"));
  EXPECT_FALSE(access.anyone());
  EXPECT_TRUE(access.allows(0, 0, {}));          // root always
  EXPECT_TRUE(access.allows(65534, 65534, {}));  // `user` always
  EXPECT_TRUE(access.allows(1, 1, {}));          // daemon
  EXPECT_TRUE(access.allows(4242, 4242, {}));
  EXPECT_TRUE(access.allows(1000, 1, {}));         // primary group daemon
  EXPECT_TRUE(access.allows(1000, 1000, {5, 1}));  // a supplementary group daemon
  EXPECT_FALSE(access.allows(1000, 1000, {5, 100}));
  ASSERT_EQ(access.unknown().size(), 1u);
  EXPECT_EQ(access.unknown()[0], "no-such-user-x");
}

TEST(SubmitAccess, BadEntriesAreConfigErrors) {
  EXPECT_THROW(parse("submit_allowed_users = @\n"), config::ConfigError);
  EXPECT_THROW(parse("submit_allowed_users = a b/c\n"), config::ConfigError);
  EXPECT_THROW(parse("submit_allowed_users = alice, anyone\n"), config::ConfigError);
}

}  // namespace
}  // namespace estafette::submit
