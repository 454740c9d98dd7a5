// estafette-bench's command line: tables of accepted and refused arguments.
#include "bench/kit/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace estafette::bench {
namespace {

TEST(BenchHostPort, Parses) {
  EXPECT_EQ(parse_host_port("127.0.0.1:25"), (HostPort{"127.0.0.1", 25}));
  EXPECT_EQ(parse_host_port("[::1]:2525"), (HostPort{"::1", 2525}));
  EXPECT_EQ(parse_host_port("localhost:65535"), (HostPort{"localhost", 65535}));
}

TEST(BenchHostPort, Refuses) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":25", "127.0.0.1:0", "127.0.0.1:65536",
                          "127.0.0.1:2x", "::1:25", "[::1]25", "[::1]:", "host:-1"}) {
    EXPECT_THROW(parse_host_port(bad), UsageError) << bad;
  }
}

TEST(BenchReplyText, Valid) {
  EXPECT_TRUE(valid_reply_text("451 4.3.0 x"));
  EXPECT_TRUE(valid_reply_text("554"));
  EXPECT_FALSE(valid_reply_text("45"));
  EXPECT_FALSE(valid_reply_text("151 x"));
  EXPECT_FALSE(valid_reply_text("451-x"));
  EXPECT_FALSE(valid_reply_text("451 x\r\n250 ok"));
  EXPECT_FALSE(valid_reply_text("4x1 x"));
}

TEST(BenchSinkOptions, All) {
  auto o = parse_sink_options({"--listen", "127.0.0.1:2525", "--fail", "451 4.3.0 try later",
                               "--record-ids=/tmp/ids", "--tls-cert", "c.pem", "--tls-key", "k.pem",
                               "--count", "300"});
  EXPECT_EQ(o.listen, (HostPort{"127.0.0.1", 2525}));
  EXPECT_EQ(o.fail_reply, "451 4.3.0 try later");
  EXPECT_EQ(o.record_ids, "/tmp/ids");
  EXPECT_EQ(o.tls_cert, "c.pem");
  EXPECT_EQ(o.tls_key, "k.pem");
  EXPECT_EQ(o.count, 300u);
}

TEST(BenchSinkOptions, Defaults) {
  auto o = parse_sink_options({"--listen", "127.0.0.1:2525"});
  EXPECT_TRUE(o.fail_reply.empty());
  EXPECT_TRUE(o.tls_cert.empty());
  EXPECT_EQ(o.count, 0u);
}

TEST(BenchSinkOptions, Refuses) {
  std::vector<std::vector<std::string>> bad = {
      {},
      {"--listen"},
      {"--listen", "nope"},
      {"--listen", "127.0.0.1:25", "--fail", "hello"},
      {"--listen", "127.0.0.1:25", "--tls-cert", "c.pem"},
      {"--listen", "127.0.0.1:25", "--count", "0"},
      {"--listen", "127.0.0.1:25", "--bogus"},
      {"--listen", "127.0.0.1:25", "--starttls"},
  };
  for (const auto& args : bad) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_THROW(parse_sink_options(args), UsageError) << joined;
  }
}

TEST(BenchSourceOptions, All) {
  auto o = parse_source_options(
      {"--target",     "127.0.0.1:25",  "--messages",    "1000",   "--concurrency", "250",
       "--size",       "65536",         "--per-session", "10",     "--pipelining",  "off",
       "--tls-resume", "--tls-max",     "1.2",           "--helo", "h.test",        "--from",
       "a@b.test",     "--to=c@d.test", "--timeout",     "60",     "--hosts",       "20"});
  EXPECT_EQ(o.target, (HostPort{"127.0.0.1", 25}));
  EXPECT_EQ(o.messages, 1000u);
  EXPECT_EQ(o.concurrency, 250u);
  EXPECT_EQ(o.size, 65536u);
  EXPECT_EQ(o.per_session, 10u);
  EXPECT_FALSE(o.pipelining);
  EXPECT_TRUE(o.starttls);  // --tls-resume implies it
  EXPECT_TRUE(o.tls_resume);
  EXPECT_EQ(o.tls_max, 12);
  EXPECT_EQ(o.helo, "h.test");
  EXPECT_EQ(o.from, "a@b.test");
  EXPECT_EQ(o.to, "c@d.test");
  EXPECT_EQ(o.timeout_s, 60u);
  EXPECT_EQ(o.hosts, 20u);
}

TEST(BenchExpandRecipient, Table) {
  struct Case {
    std::string to;
    std::uint64_t n, hosts;
    std::string want;
  } cases[] = {
      {"rcpt-{n}@h{h}.foo.example.com", 1, 20, "rcpt-1@h1.foo.example.com"},
      {"rcpt-{n}@h{h}.foo.example.com", 20, 20, "rcpt-20@h0.foo.example.com"},
      {"rcpt-{n}@h{h}.foo.example.com", 47, 20, "rcpt-47@h7.foo.example.com"},
      {"{n}{n}@{h}", 12, 5, "1212@2"},
      {"recip1@domain1.grey", 9, 3, "recip1@domain1.grey"},  // no placeholder: as it is
      {"a{x}{n@{h", 3, 2, "a{x}{n@{h"},                      // not placeholders
      {"r{n}@h{h}", 18446744073709551615u, 1, "r18446744073709551615@h0"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(expand_recipient(c.to, c.n, c.hosts), c.want) << c.to << " " << c.n;
  }
}

TEST(BenchSourceOptions, HandshakeOnly) {
  auto o = parse_source_options(
      {"--target", "127.0.0.1:25", "--messages", "5", "--per-session", "4", "--handshake-only"});
  EXPECT_TRUE(o.handshake_only);
  EXPECT_TRUE(o.starttls);
  EXPECT_EQ(o.per_session, 1u);  // a session is the unit
}

TEST(BenchSourceOptions, Defaults) {
  auto o = parse_source_options({"--target", "127.0.0.1:25", "--messages", "1"});
  EXPECT_EQ(o.concurrency, 1u);
  EXPECT_EQ(o.size, 400u);
  EXPECT_EQ(o.per_session, 1u);
  EXPECT_TRUE(o.pipelining);
  EXPECT_FALSE(o.starttls);
  EXPECT_FALSE(o.tls_resume);
  EXPECT_FALSE(o.handshake_only);
  EXPECT_EQ(o.tls_max, 13);
  EXPECT_EQ(o.hosts, 1u);
  EXPECT_EQ(o.rate, 0);  // closed loop
}

TEST(BenchSourceOptions, Rate) {
  struct Case {
    std::string text;
    double want;
  } cases[] = {
      {"50", 50},        {"1", 1},   {"2.5", 2.5},         {"0.5", 0.5},
      {"0.001", 0.001},  {"007", 7}, {"1000000", 1000000}, {"1000000.0", 1000000},
      {"12.250", 12.25},
  };
  for (const auto& c : cases) {
    auto o =
        parse_source_options({"--target", "127.0.0.1:25", "--messages", "10", "--rate", c.text});
    EXPECT_DOUBLE_EQ(o.rate, c.want) << c.text;
    EXPECT_DOUBLE_EQ(parse_rate("--rate", c.text), c.want) << c.text;
  }
  auto o = parse_source_options({"--target", "127.0.0.1:25", "--messages", "10", "--rate=20"});
  EXPECT_EQ(o.rate, 20);
}

TEST(BenchSourceOptions, RateRefuses) {
  // 0, signs, exponents, inf/nan, a bare dot or digits missing on one side, spaces, too many.
  const char* refused[] = {
      "",     "0",   "0.0", "000", "-1",    "-0.5",    "+5",        "abc",
      "5x",   "1e3", "1E3", "inf", "nan",   ".5",      "5.",        "1.2.3",
      "0x10", " 5",  "5 ",  "1,5", "1e+06", "1000001", "1000000.5", "99999999999999999999999"};
  for (const char* bad : refused) {
    EXPECT_THROW(parse_rate("--rate", bad), UsageError) << bad;
    try {
      parse_source_options({"--target", "127.0.0.1:25", "--messages", "10", "--rate", bad});
      ADD_FAILURE() << "accepted --rate \"" << bad << "\"";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--rate"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_source_options({"--target", "127.0.0.1:25", "--messages", "10", "--rate"}),
               UsageError);
}

TEST(BenchSourceOptions, RateWithPerSession) {
  // One message per session: more is refused, exactly one (or --handshake-only, whose unit is
  // the session) is fine.
  EXPECT_THROW(parse_source_options({"--target", "127.0.0.1:25", "--messages", "10", "--rate", "5",
                                     "--per-session", "2"}),
               UsageError);
  EXPECT_EQ(parse_source_options({"--target", "127.0.0.1:25", "--messages", "10", "--rate", "5",
                                  "--per-session", "1"})
                .rate,
            5);
  auto o = parse_source_options({"--target", "127.0.0.1:25", "--messages", "10", "--rate", "5",
                                 "--per-session", "4", "--handshake-only"});
  EXPECT_EQ(o.per_session, 1u);
  EXPECT_EQ(o.rate, 5);
}

TEST(BenchSourceOptions, Refuses) {
  std::vector<std::vector<std::string>> bad = {
      {"--messages", "10"},
      {"--target", "127.0.0.1:25"},
      {"--target", "127.0.0.1:25", "--messages", "0"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--concurrency", "0"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--size", "99"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--per-session", "0"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--pipelining", "maybe"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--from", "a b"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--to", "<x@y>"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--helo", "x\r\nMAIL"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--starttls=yes"},
      {"--target", "127.0.0.1:25", "--messages", "1e3"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--tls-max", "1.1"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--concurrency"},
      {"--target", "127.0.0.1:25", "--messages", "10", "--hosts", "0"},
  };
  for (const auto& args : bad) {
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_THROW(parse_source_options(args), UsageError) << joined;
  }
}

}  // namespace
}  // namespace estafette::bench
