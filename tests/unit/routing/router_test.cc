// lib/routing Router: domain files, the hosted mailbox map, alias expansion (local, remote and
// program targets, loops found at load and at expansion), mailbox checks, recipient expansion
// for queue records, and a 100,000-entry alias file.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>

#include "lib/config/config.h"
#include "lib/routing/router.h"
#include "tests/unit/routing/memory_files.h"

namespace estafette::routing {
namespace {

config::Config base_config() {
  config::Config c;
  c.local_domains = {"local.test"};
  c.maildir_root = "/var/mail/boxes";
  c.local_mailboxes = config::Config::LocalMailboxes::Create;
  return c;
}

// A router with these files ("" = none): aliases, locals, hosteddomains, hosted_mailboxes.
std::shared_ptr<const Router> make(const std::string& aliases, const std::string& locals = "",
                                   const std::string& hosted = "",
                                   const std::string& mailboxes = "",
                                   config::Config c = base_config()) {
  std::map<std::string, std::string> files;
  auto add = [&](config::Config::FileRef& ref, const char* path, const std::string& text) {
    if (text.empty()) return;
    ref = {path, "estafette.conf:1"};
    files[path] = text;
  };
  add(c.aliases, "/etc/aliases", aliases);
  add(c.locals, "/etc/locals", locals);
  add(c.hosteddomains, "/etc/hosteddomains", hosted);
  add(c.hosted_mailboxes, "/etc/hosted_mailboxes", mailboxes);
  return Router::load(c, memory(files));
}

std::string load_error(const std::string& aliases, const std::string& locals = "",
                       const std::string& hosted = "", const std::string& mailboxes = "") {
  try {
    make(aliases, locals, hosted, mailboxes);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  return "";
}

std::vector<std::string> addresses(const Expansion& e) {
  std::vector<std::string> out;
  for (const auto& t : e.targets) out.push_back(t.program ? "|" + t.program->command : t.address);
  return out;
}

TEST(RoutingRouter, DomainFiles) {
  auto r = make("", "# more\nother.test\n.sub.test\n", "hosted.test\nVIRTUAL.test extra\n");
  EXPECT_TRUE(r->is_local_domain("local.test"));
  EXPECT_TRUE(r->is_local_domain("other.test"));
  EXPECT_TRUE(r->is_local_domain("a.sub.test"));
  EXPECT_FALSE(r->is_local_domain("sub.test"));
  EXPECT_TRUE(r->is_hosted_domain("hosted.test"));
  EXPECT_TRUE(r->is_hosted_domain("virtual.test"));
  EXPECT_FALSE(r->is_hosted_domain("local.test"));
  EXPECT_EQ(load_error("", "ok.test\nbad!domain\n"), "/etc/locals:2: bad domain 'bad!domain'");
  EXPECT_EQ(load_error("", "", "[1.2.3.4]\n"), "/etc/hosteddomains:1: bad domain '[1.2.3.4]'");
}

TEST(RoutingRouter, MissingFileNamesTheSetting) {
  auto c = base_config();
  c.aliases = {"/etc/none", "estafette.conf:7"};
  try {
    Router::load(c, memory({}));
    FAIL();
  } catch (const config::ConfigError& e) {
    EXPECT_STREQ(e.what(), "estafette.conf:7: /etc/none: cannot open: No such file or directory");
  }
}

TEST(RoutingRouter, HostedMailboxMap) {
  auto map = parse_mailbox_map("a@h.test: a/Maildir\nB@H.test /abs/b/\nc@h.test:c\n", "m", "/root");
  EXPECT_EQ(map.at("a@h.test"), "/root/a/Maildir");
  EXPECT_EQ(map.at("b@h.test"), "/abs/b");
  EXPECT_EQ(map.at("c@h.test"), "/root/c");
  struct Case {
    std::string text, error;
  } cases[] = {
      {"nothing\n", "m:1: expected 'user@domain: mailbox'"},
      {"a@h.test:\n", "m:1: bad mailbox ''"},
      {"a@h.test: ../x\n", "m:1: bad mailbox '../x'"},
      {"notanaddress: x\n", "m:1: bad address 'notanaddress'"},
      {"a@h.test: x\na@h.test: y\n", "m:2: duplicate entry 'a@h.test' (first at m:1)"},
  };
  for (const auto& c : cases) {
    try {
      parse_mailbox_map(c.text, "m", "/root");
      ADD_FAILURE() << c.text;
    } catch (const config::ConfigError& e) {
      EXPECT_EQ(e.what(), c.error);
    }
  }

  auto r = make("", "", "hosted.test\n", "joe@hosted.test: joe\n");
  auto joe = r->expand("Joe@Hosted.test");
  EXPECT_EQ(joe.reply, "");
  EXPECT_TRUE(joe.ours);
  EXPECT_EQ(r->mailbox("joe@hosted.test").path, "/var/mail/boxes/joe");
  auto ann = r->expand("ann@hosted.test");
  EXPECT_EQ(ann.reply, "550 5.1.1 <ann@hosted.test>: no such mailbox");
  EXPECT_TRUE(ann.ours);
}

// `transport=` on a line of locals or hosteddomains, else local_transport: an LMTP domain's
// mailboxes are the LMTP server's to check (every local part is accepted here).
TEST(RoutingRouter, Transports) {
  auto c = base_config();
  c.local_transport = *config::parse_transport("lmtp:unix:/run/dovecot/lmtp");
  auto r = make("", ".lmtp.test transport=lmtp:inet:127.0.0.1:24\nmd.test transport=maildir\n",
                "hosted.test\nother.test extra transport=lmtp:unix:/s\n", "", c);
  auto kind = [&](const char* domain) {
    const config::Transport* t = r->transport_of(domain);
    return t ? t->to_string() : std::string("-");
  };
  EXPECT_EQ(kind("local.test"), "lmtp:unix:/run/dovecot/lmtp");
  EXPECT_EQ(kind("a.lmtp.test"), "lmtp:inet:127.0.0.1:24");
  EXPECT_EQ(kind("md.test"), "maildir");
  EXPECT_EQ(kind("hosted.test"), "lmtp:unix:/run/dovecot/lmtp");
  EXPECT_EQ(kind("other.test"), "lmtp:unix:/s");
  EXPECT_EQ(kind("remote.test"), "-");
  // Under LMTP no hosted_mailboxes entry or Maildir is needed, and nothing blocks.
  auto e = r->expand("anyone@hosted.test", MailboxCheck::Defer);
  EXPECT_EQ(e.reply, "");
  EXPECT_FALSE(e.deferred);
  EXPECT_TRUE(r->mailbox("anyone@hosted.test").lmtp);
  EXPECT_FALSE(r->mailbox_needs_io("x@local.test"));
  // Under maildir, as before: a hosted user needs its entry.
  EXPECT_FALSE(r->mailbox("a@md.test").lmtp);
  EXPECT_EQ(r->mailbox("a@md.test").path, "/var/mail/boxes/a");
  // The other words of a line are still reported as ignored, not the transport.
  EXPECT_EQ(
      r->strict_warnings(),
      (std::vector<std::string>{"/etc/hosteddomains:2: 'extra' after the domain is ignored"}));
  EXPECT_EQ(load_error("", "a.test transport=lmtp:unix:relative\n"),
            "/etc/locals:1: the LMTP socket must be an absolute path (lmtp:unix:/path)");
  EXPECT_EQ(load_error("", "", "h.test transport=smtp\n"),
            "/etc/hosteddomains:1: expected maildir, lmtp:unix:/path or lmtp:inet:host:port");
}

// A hosted_mailboxes entry mailbox() would never read: its domain is not hosted (a domain
// missing from hosteddomains), or is local (local wins). Both stop the load with file:line.
TEST(RoutingRouter, HostedMailboxOutsideTheHostedDomains) {
  EXPECT_EQ(load_error("", "", "hosted.test\n", "a@hosted.test: a\nb@other.test: b\n"),
            "/etc/hosted_mailboxes:2: 'b@other.test': other.test is not in hosteddomains");
  EXPECT_EQ(load_error("", "", "", "a@hosted.test: a\n"),
            "/etc/hosted_mailboxes:1: 'a@hosted.test': hosted.test is not in hosteddomains (none "
            "is set)");
  EXPECT_EQ(load_error("", "", "hosted.test\n", "\na@local.test: a\n"),
            "/etc/hosted_mailboxes:2: 'a@local.test': local.test is a local domain "
            "(hosted_mailboxes is for hosteddomains)");
  EXPECT_EQ(load_error("", "", ".hosted.test\n", "a@x.hosted.test: a\n"), "");
}

// check-config --strict: aliases whose targets have no mailbox, or cannot be delivered, and
// lines of locals/hosteddomains that are ignored; "file:line: why" in the files' order.
struct StrictCase {
  const char* name;
  config::Config::LocalMailboxes mode;
  std::string aliases, locals, hosted, mailboxes;
  std::vector<std::string> warnings;
};
class RoutingStrict : public ::testing::TestWithParam<StrictCase> {};
TEST_P(RoutingStrict, Warnings) {
  const auto& p = GetParam();
  auto c = base_config();
  c.local_mailboxes = p.mode;
  c.maildir_root = "/nonexistent/boxes";
  EXPECT_EQ(make(p.aliases, p.locals, p.hosted, p.mailboxes, c)->strict_warnings(), p.warnings);
}
using Mode = config::Config::LocalMailboxes;
INSTANTIATE_TEST_SUITE_P(
    Table, RoutingStrict,
    ::testing::Values(
        StrictCase{"CreateHasEveryMailbox",
                   Mode::Create,
                   "postmaster: root\nabuse: postmaster\n",
                   "",
                   "",
                   "",
                   {}},
        // The shipped aliases under system: root never has a mailbox (the issue's bounce).
        StrictCase{"SystemRoot",
                   Mode::System,
                   "postmaster: root\nabuse: postmaster\nremote: x@remote.test\n",
                   "",
                   "",
                   "",
                   {"/etc/aliases:1: postmaster: root@local.test has no mailbox (local_mailboxes "
                    "= system: no such user, or root, which never has one)",
                    "/etc/aliases:2: abuse: root@local.test has no mailbox (local_mailboxes = "
                    "system: no such user, or root, which never has one)"}},
        StrictCase{"ExistingWithoutDirectory",
                   Mode::Existing,
                   "# c\nstaff: alice\n",
                   "",
                   "",
                   "",
                   {"/etc/aliases:2: staff: alice@local.test has no mailbox (local_mailboxes = "
                    "existing: no directory /nonexistent/boxes/alice)"}},
        StrictCase{"HostedTargets",
                   Mode::Create,
                   "team@hosted.test: joe, ann\n",
                   "",
                   "hosted.test\n",
                   "joe@hosted.test: joe\n",
                   {"/etc/aliases:1: team@hosted.test: ann@hosted.test has no mailbox (not in "
                    "hosted_mailboxes)"}},
        StrictCase{"ProgramsOff",
                   Mode::Create,
                   "log: \"|/bin/cat\"\n",
                   "",
                   "",
                   "",
                   {"/etc/aliases:1: log: <log@local.test>: delivery to programs is disabled "
                    "(allow_program_delivery = no)"}},
        StrictCase{"IgnoredDomainLines",
                   Mode::Create,
                   "",
                   "other.test\nother.test\n",
                   "hosted.test alias.test\n",
                   "",
                   {"/etc/locals:2: 'other.test' listed again (first at /etc/locals:1)",
                    "/etc/hosteddomains:1: 'alias.test' after the domain is ignored"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(RoutingStrict, BareNameWithoutLocalDomains) {
  auto c = base_config();
  c.local_domains.clear();
  EXPECT_EQ(make("postmaster: root\n", "", "", "", c)->strict_warnings(),
            (std::vector<std::string>{
                "/etc/aliases:1: postmaster: ignored: no local domain for a bare name"}));
}

TEST(RoutingRouter, ExpandsAliases) {
  auto c = base_config();
  auto r = make(
      "postmaster: alice\n"
      "team: alice, bob, carol@remote.test, team-archive\n"
      "team-archive: \\alice, \"|/bin/archive\"\n"
      "list@hosted.test: dan@local.test, alice\n",
      "", "hosted.test\n");
  struct Case {
    std::string address;
    std::vector<std::string> targets;
  } cases[] = {
      {"alice@local.test", {"alice@local.test"}},
      {"PostMaster@Local.Test", {"alice@local.test"}},
      {"team@local.test",
       {"alice@local.test", "bob@local.test", "carol@remote.test", "|/bin/archive"}},
      {"list@hosted.test", {"dan@local.test", "alice@hosted.test"}},
      {"x@remote.test", {"x@remote.test"}},
  };
  // Programs are refused while allow_program_delivery = no.
  auto off = r->expand("team@local.test");
  EXPECT_EQ(off.reply,
            "550 5.7.1 <team-archive@local.test>: delivery to programs is disabled "
            "(allow_program_delivery = no)");
  c.allow_program_delivery = true;
  r = make(
      "postmaster: alice\n"
      "team: alice, bob, carol@remote.test, team-archive\n"
      "team-archive: \\alice, \"|/bin/archive\"\n"
      "list@hosted.test: dan@local.test, alice\n",
      "", "hosted.test\n", "", c);
  for (const auto& k : cases) {
    auto e = r->expand(k.address);
    EXPECT_EQ(e.reply, "") << k.address;
    EXPECT_EQ(addresses(e), k.targets) << k.address;
  }
  EXPECT_FALSE(r->expand("x@remote.test").ours);
  EXPECT_TRUE(r->expand("team@local.test").ours);
  auto team = r->expand("team@local.test");
  EXPECT_EQ(team.targets[3].address, "team-archive@local.test");
  EXPECT_EQ(team.targets[3].program->uid, 0u);
}

// RFC 5321's bare <postmaster> through the shipped "postmaster: root": the targets are in the
// first local domain, never "root@" with an empty domain.
TEST(RoutingRouter, BarePostmasterGetsTheDefaultDomain) {
  auto r = make("postmaster: root\nabuse: postmaster\n");
  EXPECT_EQ(r->default_domain(), "local.test");
  for (const char* bare : {"postmaster", "PostMaster"}) {
    auto e = r->expand(bare);
    EXPECT_EQ(e.reply, "") << bare;
    EXPECT_TRUE(e.ours) << bare;
    EXPECT_EQ(addresses(e), std::vector<std::string>{"root@local.test"}) << bare;
  }
  auto queued = expand_recipients(*r, {"postmaster"});
  EXPECT_EQ(queued.recipients, std::vector<std::string>{"root@local.test"});
  // Without an alias it is the default domain's own postmaster.
  auto plain = make("");
  EXPECT_EQ(addresses(plain->expand("postmaster")),
            std::vector<std::string>{"postmaster@local.test"});
  auto c = base_config();
  c.local_domains = {".sub.test"};
  c.hostname = "MX.Host.Test";
  EXPECT_EQ(make("", "", "", "", c)->default_domain(), "mx.host.test");
}

TEST(RoutingRouter, AliasLoopsAtLoadWithFileAndLine) {
  EXPECT_EQ(load_error("a: b\nb: c\nc: a\n").rfind("/etc/aliases:", 0), 0u);
  EXPECT_NE(load_error("a: b\nb: c\nc: a\n").find("alias loop: "), std::string::npos);
  EXPECT_EQ(load_error("self: self@local.test\n"), "/etc/aliases:1: alias loop: self -> self");
  EXPECT_EQ(load_error("x: y\ny@local.test: x@local.test\n").find("alias loop"), 16u);
  EXPECT_EQ(load_error("a: b\nb@local.test: a@local.test\n").find("alias loop"), 16u);
  // Not loops: a backslash, and a remote target with the same local part.
  EXPECT_EQ(load_error("alice: \\alice, alice@remote.test\n"), "");
  std::string chain;
  for (int i = 0; i < 30; ++i)
    chain += "n" + std::to_string(i) + ": n" + std::to_string(i + 1) + "\n";
  EXPECT_NE(load_error(chain).find("aliases nested deeper than 20"), std::string::npos);
}

TEST(RoutingRouter, LoopAtExpansionIsA5xx) {
  // A loop the load-time check cannot see (a bare key's target is qualified only when
  // expanded) stops at the depth limit.
  auto c = base_config();
  c.local_domains = {"local.test", ".sub.test"};
  auto r = make("a: b\nb@x.sub.test: a@x.sub.test\n", "", "", "", c);
  EXPECT_EQ(r->expand("a@x.sub.test").reply,
            "550 5.4.6 <a@x.sub.test>: alias loop or nesting deeper than 20");
  EXPECT_EQ(r->expand("B@x.sub.test").reply,
            "550 5.4.6 <B@x.sub.test>: alias loop or nesting deeper than 20");
  EXPECT_EQ(r->expand("a@local.test").reply, "");  // a -> b@local.test, a mailbox
}

TEST(RoutingRouter, LocalMailboxModes) {
  char tmpl[] = "/tmp/estafette-routing-XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  ASSERT_EQ(::mkdir((root + "/alice").c_str(), 0700), 0);
  auto c = base_config();
  c.maildir_root = root;
  c.local_mailboxes = config::Config::LocalMailboxes::Existing;
  Router existing(c);
  EXPECT_EQ(existing.mailbox("Alice@local.test").path, root + "/alice");
  EXPECT_EQ(existing.expand("alice@local.test").reply, "");
  EXPECT_EQ(existing.expand("bob@local.test").reply, "550 5.1.1 <bob@local.test>: no such mailbox");
  EXPECT_EQ(existing.expand("\"../x\"@local.test").reply,
            "550 5.1.1 <\"../x\"@local.test>: bad mailbox name");
  c.local_mailboxes = config::Config::LocalMailboxes::Create;
  Router create(c);
  EXPECT_EQ(create.expand("bob@local.test").reply, "");
  EXPECT_TRUE(create.mailbox("bob@local.test").create);
  c.local_mailboxes = config::Config::LocalMailboxes::System;
  Router system(c);
  EXPECT_NE(system.expand("root@local.test").reply, "");  // root reads mail through an alias
  EXPECT_NE(system.expand("no-such-user-xyz@local.test").reply, "");
  auto daemon = system.mailbox("daemon@local.test");  // a Debian system user (uid 1)
  EXPECT_EQ(daemon.reply, "");
  ASSERT_TRUE(daemon.uid);
  EXPECT_EQ(*daemon.uid, 1u);
  EXPECT_EQ(daemon.path, "/usr/sbin/Maildir");
  [[maybe_unused]] int rc = ::system(("rm -rf '" + root + "'").c_str());
}

// esmtpd's loop never runs the mailbox check (stat, getpwnam): Defer says when one is needed,
// Skip leaves it out; what the maps decide is answered at once either way.
TEST(RoutingRouter, MailboxCheckDeferredOrSkipped) {
  auto c = base_config();
  c.local_mailboxes = config::Config::LocalMailboxes::Existing;
  auto r = make("team: alice, nobody\n", "", "hosted.test\n", "bob@hosted.test: bob\n", c);
  using M = MailboxCheck;
  EXPECT_TRUE(r->expand("alice@local.test", M::Defer).deferred);
  EXPECT_TRUE(r->expand("postmaster", M::Defer).deferred);  // in the default domain
  EXPECT_TRUE(r->mailbox_needs_io("alice@local.test"));
  for (const char* answered : {"x@remote.test", "team@local.test", "bob@hosted.test",
                               "eve@hosted.test", "\"../x\"@local.test"}) {
    SCOPED_TRACE(answered);
    auto e = r->expand(answered, M::Defer);
    EXPECT_FALSE(e.deferred);
    auto now = r->expand(answered, M::Now);
    EXPECT_EQ(e.reply, now.reply);
    EXPECT_EQ(e.ours, now.ours);
    EXPECT_EQ(e.targets.size(), now.targets.size());
  }
  // /var/mail/boxes/alice does not exist: Now refuses, Skip takes the address as its target.
  EXPECT_EQ(r->expand("alice@local.test", M::Now).reply,
            "550 5.1.1 <alice@local.test>: no such mailbox");
  auto skipped = r->expand("alice@local.test", M::Skip);
  EXPECT_EQ(skipped.reply, "");
  ASSERT_EQ(skipped.targets.size(), 1u);
  EXPECT_EQ(skipped.targets[0].address, "alice@local.test");
  EXPECT_EQ(expand_recipients(*r, {"alice@local.test", "team@local.test"}, M::Skip).recipients,
            expand_recipients(*r, {"alice@local.test", "team@local.test"}, M::Now).recipients);
  c.local_mailboxes = config::Config::LocalMailboxes::Create;
  EXPECT_FALSE(Router(c).expand("alice@local.test", M::Defer).deferred);
}

TEST(RoutingRouter, ExpandRecipientsForTheQueueRecord) {
  auto c = base_config();
  c.allow_program_delivery = true;
  auto r = make("team: alice, bob\nlog: \"|/bin/log\", alice\n", "", "", "", c);
  auto out = expand_recipients(
      *r, {"team@local.test", "log@local.test", "x@remote.test", "alice@local.test"});
  EXPECT_EQ(out.recipients, (std::vector<std::string>{"alice@local.test", "bob@local.test",
                                                      "log@local.test", "x@remote.test"}));
  // Only the command goes into the record, never a uid.
  EXPECT_EQ(out.programs, (std::map<std::size_t, std::string>{{2, "/bin/log"}}));
}

// What estafette-local asks before it runs a program from a queue record: the alias itself must
// name exactly that command; the uid comes from the Router's own read of the files.
TEST(RoutingRouter, ProgramOfChecksTheClaimAgainstTheAliases) {
  auto c = base_config();
  c.allow_program_delivery = true;
  auto r = make("log: \"|/bin/log\", alice\nteam: log, bob\n", "", "", "", c);
  auto p = r->program_of("log@local.test", "/bin/log");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->command, "/bin/log");
  EXPECT_EQ(p->uid, 0u);  // the file's owner (memory files: root)
  EXPECT_TRUE(r->program_of("LOG@Local.Test", "/bin/log"));
  EXPECT_TRUE(r->program_of("log", "/bin/log"));
  EXPECT_TRUE(r->program_of("log@local.test", "1000 /bin/log"));  // old record: uid ignored
  EXPECT_EQ(r->program_of("log@local.test", "1000 /bin/log")->uid, 0u);
  EXPECT_FALSE(r->program_of("log@local.test", "/bin/sh -c evil"));
  EXPECT_FALSE(r->program_of("log@local.test", "/bin/log; evil"));
  EXPECT_FALSE(r->program_of("log@local.test", "x /bin/log"));
  EXPECT_FALSE(r->program_of("log@local.test", " /bin/log"));
  EXPECT_FALSE(r->program_of("log@local.test", ""));
  EXPECT_FALSE(r->program_of("team@local.test", "/bin/log"));  // only the alias that names it
  EXPECT_FALSE(r->program_of("alice@local.test", "/bin/log"));
  EXPECT_FALSE(r->program_of("log@remote.test", "/bin/log"));
  c.allow_program_delivery = false;
  EXPECT_FALSE(
      make("log: \"|/bin/log\"\n", "", "", "", c)->program_of("log@local.test", "/bin/log"));
}

TEST(RoutingRouter, HundredThousandAliases) {
  std::string text;
  text.reserve(100000 * 40);
  for (int i = 0; i < 100000; ++i)
    text += "user" + std::to_string(i) + ": box" + std::to_string(i % 977) + ", r" +
            std::to_string(i) + "@remote.test\n";
  auto r = make(text);
  EXPECT_EQ(r->alias_count(), 100000u);
  for (int i : {0, 1, 4242, 99999}) {
    auto e = r->expand("user" + std::to_string(i) + "@local.test");
    EXPECT_EQ(e.reply, "");
    EXPECT_EQ(addresses(e),
              (std::vector<std::string>{"box" + std::to_string(i % 977) + "@local.test",
                                        "r" + std::to_string(i) + "@remote.test"}));
  }
  EXPECT_EQ(addresses(r->expand("user100000@local.test")),
            (std::vector<std::string>{"user100000@local.test"}));
}

}  // namespace
}  // namespace estafette::routing
