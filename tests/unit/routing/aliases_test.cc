// lib/routing aliases: the file format (continuations, quotes, programs, includes) and its
// errors with file:line, from an in-memory file system.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "lib/config/config.h"
#include "lib/routing/aliases.h"
#include "tests/unit/routing/memory_files.h"

namespace estafette::routing {
namespace {

std::string error_of(const std::string& text, std::map<std::string, std::string> files = {}) {
  try {
    AliasMap::parse(text, "/etc/aliases", 0, memory(std::move(files)));
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(RoutingAliases, SplitTargets) {
  struct Case {
    std::string in;
    std::vector<std::string> out;
  } cases[] = {
      {"a, b", {"a", "b"}},
      {" a ,, b ,", {"a", "b"}},
      {"\"|/bin/x a, b\", c", {"|/bin/x a, b", "c"}},
      {"|/bin/x arg, d@e.test", {"|/bin/x arg", "d@e.test"}},
      {"", {}},
  };
  for (const auto& c : cases) EXPECT_EQ(split_targets(c.in), c.out) << c.in;
  EXPECT_FALSE(split_targets("\"unterminated, x"));
}

TEST(RoutingAliases, ParsesKeysTargetsAndContinuations) {
  auto map = AliasMap::parse(
      "# comment\n"
      "Postmaster: root\n"
      "staff: Alice, bob@Example.ORG,\n"
      "  \\carol\n"
      "\tdave\n"
      "\n"
      "list@hosted.test: \"|/usr/bin/archive --all, now\", eve\n",
      "/etc/aliases", 0, memory({}));
  EXPECT_EQ(map.size(), 3u);
  const Alias* pm = map.find("postmaster");
  ASSERT_TRUE(pm);
  EXPECT_EQ(pm->where, "/etc/aliases:2");
  ASSERT_EQ(pm->targets.size(), 1u);
  EXPECT_EQ(pm->targets[0].value, "root");
  const Alias* staff = map.find("staff");
  ASSERT_TRUE(staff);
  ASSERT_EQ(staff->targets.size(), 4u);
  EXPECT_EQ(staff->targets[0].value, "alice");
  EXPECT_EQ(staff->targets[1].value, "bob@example.org");
  EXPECT_EQ(staff->targets[2].value, "carol");
  EXPECT_TRUE(staff->targets[2].no_expand);
  EXPECT_EQ(staff->targets[3].value, "dave");
  const Alias* list = map.find("list@hosted.test");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->targets.size(), 2u);
  EXPECT_EQ(list->targets[0].kind, AliasTarget::Kind::Program);
  EXPECT_EQ(list->targets[0].value, "/usr/bin/archive --all, now");
  EXPECT_EQ(list->targets[0].owner, 0u);
  EXPECT_FALSE(map.find("nobody"));
}

TEST(RoutingAliases, IncludesRelativeNestedAndOwned) {
  auto map = AliasMap::parse("team: :include:lists/team, zed\n", "/etc/mail/aliases", 0,
                             memory({{"/etc/mail/lists/team",
                                      "# members\nann, ben\n"
                                      ":include:/abs/more\n"},
                                     {"/abs/more", "\"|/bin/log\"\n"}},
                                    1000));
  const Alias* team = map.find("team");
  ASSERT_TRUE(team);
  ASSERT_EQ(team->targets.size(), 4u);
  EXPECT_EQ(team->targets[0].value, "ann");
  EXPECT_EQ(team->targets[1].value, "ben");
  EXPECT_EQ(team->targets[2].kind, AliasTarget::Kind::Program);
  EXPECT_EQ(team->targets[2].owner, 1000u);  // the include file's owner runs its programs
  EXPECT_EQ(team->targets[3].value, "zed");
}

TEST(RoutingAliases, ErrorsNameFileAndLine) {
  struct Case {
    std::string text;
    std::map<std::string, std::string> files;
    std::string error;
  } cases[] = {
      {"a: b\nno colon here\n", {}, "/etc/aliases:2: expected 'name: target, ...'"},
      {"a: b\na: c\n", {}, "/etc/aliases:2: duplicate alias 'a' (first at /etc/aliases:1)"},
      {"a:\n", {}, "/etc/aliases:1: alias 'a' has no targets"},
      {" a: b\n", {}, "/etc/aliases:1: continuation line first"},
      {"a: \"|x\n", {}, "/etc/aliases:1: unterminated quote"},
      {"a: |\n", {}, "/etc/aliases:1: empty program after '|'"},
      {"a: b@@c\n", {}, "/etc/aliases:1: bad address 'b@@c'"},
      {"x\n  y: z\n", {}, "/etc/aliases:1: bad alias name 'x, y'"},
      {"a: :include:gone\n",
       {},
       "/etc/aliases:1: :include:/etc/gone: cannot open: No such file or directory"},
      {"a: :include:/l1\n",
       {{"/l1", "b\n:include:/l2\n"}, {"/l2", ":include:/l1\n"}},
       "/l2:1: :include: loop through /l1"},
      {"a: :include:/l1\n", {{"/l1", "ok\nbad@@x\n"}}, "/l1:2: bad address 'bad@@x'"},
  };
  for (const auto& c : cases) EXPECT_EQ(error_of(c.text, c.files), c.error) << c.text;
}

// Loop detection compares paths; a symlink back to its own directory makes every level a new
// path to the same file (found by the config_files fuzz target as a stack overflow).
TEST(RoutingAliases, IncludesThroughASymlinkLoopStopAtTheDepthLimit) {
  char tmpl[] = "/tmp/estafette-aliases-XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  ASSERT_EQ(::mkdir((root + "/lists").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(".", (root + "/lists/lists").c_str()), 0);
  { std::ofstream(root + "/lists/team") << "ann\n:include:lists/team\n"; }
  std::string error;
  try {
    AliasMap::parse("team: :include:lists/team\n", root + "/aliases", 0, disk_reader());
  } catch (const config::ConfigError& e) {
    error = e.what();
  }
  std::string deep = root + "/lists";
  for (int i = 0; i < 9; ++i) deep += "/lists";  // the 10 open files, then the 11th
  EXPECT_EQ(error, deep.substr(0, deep.size() - 6) +
                       "/team:2: :include: nested more than 10 "
                       "deep at " +
                       deep + "/team");
  [[maybe_unused]] int rc = ::system(("rm -rf '" + root + "'").c_str());
}

}  // namespace
}  // namespace estafette::routing
