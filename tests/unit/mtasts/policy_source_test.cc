// lib/mtasts/policy_source.h against real servers on loopback: a dnsmasq child answering the
// _mta-sts TXT records and mta-sts.<domain> addresses, and an HTTPS server on this test's loop
// (lib/tls's server stream, a certificate from a CA made with the openssl command) that answers
// per Host header and counts requests. Checks RFC 8461 5.1's rules: a current cached policy
// answers without a fetch, a new id or an expired policy fetches again, an unexpired cached
// policy survives a failed fetch and a vanished record, an expired one does not; concurrent
// lookups share one fetch; a cancelled lookup never calls back. check_mx as a table.
#include "lib/mtasts/policy_source.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ctime>
#include <map>
#include <optional>

#include "lib/base/net.h"
#include "lib/tls/context.h"
#include "lib/tls/stream.h"
#include "tests/unit/queue/queue_test_util.h"  // TempDir
#include "tests/unit/test_servers.h"

namespace estafette::mtasts {
namespace {

using namespace std::chrono_literals;
using queue::testing::TempDir;

const std::string kPolicy = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 600\n";

// One connection of the HTTPS server: handshake, read the head, answer, close.
struct ServerConnection {
  base::UniqueFd fd;
  std::unique_ptr<tls::Stream> stream;
  bool handshaken = false;
  std::string in, out;
  std::size_t sent = 0;
};

// HTTPS on 127.0.0.1:port, on the test's loop. Host mta-sts.down.test gets a 404; any other
// the policy. requests counts the GETs per Host.
class HttpsServer final {
 public:
  HttpsServer(event::Loop& loop, std::shared_ptr<const tls::ServerContext> context)
      : loop_(loop), context_(std::move(context)) {
    listener_ = base::listen_tcp("127.0.0.1", 0);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    base::set_nonblocking(listener_.get());
    loop_.add_fd(listener_.get(), EPOLLIN, [this](std::uint32_t) { accept(); });
  }
  ~HttpsServer() {
    loop_.remove_fd(listener_.get());
    for (auto& [fd, c] : connections_) loop_.remove_fd(fd);
  }
  std::uint16_t port() const { return port_; }
  std::map<std::string, int> requests;

 private:
  void accept() {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    auto& c = connections_[fd];
    c.fd = base::UniqueFd(fd);
    c.stream = std::make_unique<tls::Stream>(context_, fd);
    loop_.add_fd(fd, EPOLLIN | EPOLLOUT, [this, fd](std::uint32_t) { step(fd); });
  }
  void close(int fd) {
    loop_.remove_fd(fd);
    loop_.post([this, fd] { connections_.erase(fd); });
  }
  void step(int fd) {
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    ServerConnection& c = it->second;
    if (!c.handshaken) {
      auto s = c.stream->handshake();
      if (s == tls::Stream::Status::WantRead || s == tls::Stream::Status::WantWrite) return;
      if (s != tls::Stream::Status::Ok) return close(fd);
      c.handshaken = true;
    }
    if (c.out.empty()) {
      char buffer[4096];
      auto r = c.stream->read(buffer, sizeof buffer);
      if (r.status == tls::Stream::Status::Ok) c.in.append(buffer, r.bytes);
      if (r.status == tls::Stream::Status::Closed || r.status == tls::Stream::Status::Failed)
        return close(fd);
      if (c.in.find("\r\n\r\n") == std::string::npos) return;
      auto host_at = c.in.find("\r\nHost: ");
      std::string host = c.in.substr(host_at + 8, c.in.find("\r\n", host_at + 8) - host_at - 8);
      ++requests[host];
      std::string body = host == "mta-sts.down.test" ? "gone" : kPolicy;
      c.out =
          std::string(host == "mta-sts.down.test" ? "HTTP/1.1 404 Not Found" : "HTTP/1.1 200 OK") +
          "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n\r\n" + body;
    }
    while (c.sent < c.out.size()) {
      auto r = c.stream->write(c.out.data() + c.sent, c.out.size() - c.sent);
      if (r.status != tls::Stream::Status::Ok) return;
      c.sent += r.bytes;
    }
    c.stream->shutdown();
    close(fd);
  }

  event::Loop& loop_;
  std::shared_ptr<const tls::ServerContext> context_;
  base::UniqueFd listener_;
  std::uint16_t port_ = 0;
  std::map<int, ServerConnection> connections_;
};

class PolicySourceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::access("/usr/sbin/dnsmasq", X_OK) != 0) return;
    certs_ = new TempDir;
    std::string d = certs_->path();
    std::vector<std::string> domains = {"fresh.test",   "pair.test", "expired.test",
                                        "changed.test", "down.test", "cancel.test"};
    std::string names;
    for (const auto& domain : domains)
      names += (names.empty() ? "DNS:mta-sts." : ",DNS:mta-sts.") + domain;
    bool made = testing::run_command(
        "cd " + d +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key"
        " -out ca.pem -days 2 -subj /CN=ca -addext basicConstraints=critical,CA:TRUE"
        " -addext keyUsage=critical,keyCertSign 2>/dev/null"
        " && printf 'basicConstraints=CA:FALSE\\nsubjectAltName=" +
        names +
        "\\n' > ext"
        " && openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem"
        " -out csr -subj /CN=mta-sts 2>/dev/null"
        " && openssl x509 -req -in csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
        " -extfile ext -out cert.pem 2>/dev/null");
    if (!made) return;
    port_ = testing::free_port();
    std::vector<std::string> records;
    for (const auto& domain : domains) {
      records.push_back("--txt-record=_mta-sts." + domain + ",v=STSv1; id=new1;");
      records.push_back("--host-record=mta-sts." + domain + ",127.0.0.1");
    }
    if (dns_.start(testing::dnsmasq_args(port_, records)) && !testing::wait_tcp(port_)) dns_.stop();
  }
  static void TearDownTestSuite() {
    dns_.stop();
    delete certs_;
    certs_ = nullptr;
  }

  void SetUp() override {
    if (!dns_.running()) GTEST_SKIP() << "dnsmasq or openssl is not available";
    dns::ResolverOptions o;
    o.servers = {"127.0.0.1:" + std::to_string(port_)};
    o.timeout = 1000ms;
    resolver_.emplace(loop_, o);
    tls::ServerSettings server;
    server.certificates = {{certs_->sub("cert.pem"), certs_->sub("key.pem")}};
    https_.emplace(loop_, tls::ServerContext::load(server));
    tls::ClientSettings client;
    client.ca_file = certs_->sub("ca.pem");
    cache_.emplace(dir_.path(), 100);
    SourceOptions options;
    options.fetch.port = https_->port();
    options.fetch.timeout = 5s;
    options.now = [this] { return now_; };
    source_.emplace(loop_, *resolver_, tls::ClientContext::load(client), *cache_, options);
  }

  Decision lookup(const std::string& domain) {
    std::optional<Decision> got;
    auto l = source_->lookup(domain, [&](const Decision& d) { got = d; });
    EXPECT_TRUE(testing::run_until(loop_, [&] { return got.has_value(); }));
    return got.value_or(Decision{});
  }

  void cache(const std::string& domain, const std::string& id, std::int64_t fetched) {
    CachedPolicy e;
    e.domain = domain;
    e.id = id;
    e.policy = parse_policy(kPolicy).policy;  // max_age 600
    e.fetched = fetched;
    std::string why;
    ASSERT_TRUE(cache_->store(e, &why)) << why;
  }

  static inline testing::ChildProcess dns_;
  static inline int port_ = 0;
  static inline TempDir* certs_ = nullptr;
  TempDir dir_;
  std::int64_t now_ = std::time(nullptr);
  event::Loop loop_;
  std::optional<dns::Resolver> resolver_;
  std::optional<HttpsServer> https_;
  std::optional<PolicyCache> cache_;
  std::optional<PolicySource> source_;
};

TEST_F(PolicySourceTest, FetchesOnceThenTheCacheAnswers) {
  Decision d = lookup("Fresh.Test.");
  EXPECT_EQ(d.source, Decision::Source::Fetched) << d.note;
  EXPECT_EQ(d.mode, Mode::Enforce);
  EXPECT_EQ(d.domain, "fresh.test");
  EXPECT_EQ(d.id, "new1");
  EXPECT_EQ(d.expires, now_ + 600);
  EXPECT_TRUE(cache_->load("fresh.test", nullptr));
  d = lookup("fresh.test");
  EXPECT_EQ(d.source, Decision::Source::Cache);
  EXPECT_EQ(d.note, "");
  EXPECT_EQ(https_->requests["mta-sts.fresh.test"], 1);
}

TEST_F(PolicySourceTest, ConcurrentLookupsShareOneFetch) {
  std::vector<Decision> got;
  auto a = source_->lookup("pair.test", [&](const Decision& d) { got.push_back(d); });
  auto b = source_->lookup("pair.test", [&](const Decision& d) { got.push_back(d); });
  ASSERT_TRUE(testing::run_until(loop_, [&] { return got.size() == 2; }));
  EXPECT_EQ(got[0].source, Decision::Source::Fetched);
  EXPECT_EQ(got[1].source, Decision::Source::Fetched);
  EXPECT_EQ(https_->requests["mta-sts.pair.test"], 1);
}

TEST_F(PolicySourceTest, ExpiredOrOtherIdFetchesAgain) {
  cache("expired.test", "new1", now_ - 601);
  cache("changed.test", "old1", now_);
  EXPECT_EQ(lookup("expired.test").source, Decision::Source::Fetched);
  Decision d = lookup("changed.test");
  EXPECT_EQ(d.source, Decision::Source::Fetched);
  EXPECT_EQ(d.id, "new1");
  EXPECT_EQ(cache_->load("changed.test", nullptr)->id, "new1");  // replaced on disk
  EXPECT_EQ(https_->requests["mta-sts.expired.test"], 1);
  EXPECT_EQ(https_->requests["mta-sts.changed.test"], 1);
}

TEST_F(PolicySourceTest, FailedFetchKeepsAnUnexpiredCachedPolicy) {
  cache("down.test", "old1", now_ - 300);
  Decision d = lookup("down.test");
  EXPECT_EQ(d.source, Decision::Source::Cache);
  EXPECT_EQ(d.mode, Mode::Enforce);
  EXPECT_NE(d.note.find("fetch failed: mta-sts.down.test: HTTP 404"), std::string::npos) << d.note;
  // Once it has expired, there is none, and the failure is said.
  now_ += 301;
  d = lookup("down.test");
  EXPECT_EQ(d.source, Decision::Source::None);
  EXPECT_EQ(d.mode, Mode::None);
  EXPECT_TRUE(d.failed);
  EXPECT_NE(d.note.find("expired"), std::string::npos) << d.note;
}

TEST_F(PolicySourceTest, NoRecordUsesAnUnexpiredCachedPolicyOnly) {
  Decision d = lookup("gone.test");  // never had one
  EXPECT_EQ(d.source, Decision::Source::None);
  EXPECT_FALSE(d.failed);
  cache("gone.test", "old1", now_);
  d = lookup("gone.test");
  EXPECT_EQ(d.source, Decision::Source::Cache);
  EXPECT_EQ(d.mode, Mode::Enforce);
  EXPECT_EQ(https_->requests.size(), 0u);
}

TEST_F(PolicySourceTest, ACancelledLookupNeverCallsBack) {
  bool called = false;
  {
    auto l = source_->lookup("cancel.test", [&](const Decision&) { called = true; });
  }
  Decision d = lookup("cancel.test");  // the shared fetch still completes for this one
  EXPECT_EQ(d.source, Decision::Source::Fetched);
  EXPECT_FALSE(called);
}

TEST(CheckMx, WhatAPolicyMeansForOneHost) {
  Decision d;
  d.domain = "example.test";
  EXPECT_TRUE(check_mx(d, "anything.test").allowed);  // no policy
  EXPECT_FALSE(check_mx(d, "anything.test").verify);
  d.source = Decision::Source::Cache;
  d.policy = parse_policy("version: STSv1\nmode: enforce\nmx: *.example.test\nmax_age: 5\n").policy;
  d.mode = Mode::Enforce;
  MxCheck c = check_mx(d, "MX1.example.test.");
  EXPECT_TRUE(c.allowed);
  EXPECT_TRUE(c.verify);
  EXPECT_FALSE(c.report_only);
  EXPECT_EQ(c.verify_name, "MX1.example.test");
  c = check_mx(d, "mx.elsewhere.test");
  EXPECT_FALSE(c.allowed);
  EXPECT_NE(c.reason.find("does not match the MTA-STS policy of example.test (enforce)"),
            std::string::npos)
      << c.reason;
  d.mode = Mode::Testing;
  c = check_mx(d, "mx.elsewhere.test");
  EXPECT_TRUE(c.allowed);
  EXPECT_TRUE(c.report_only);
  EXPECT_TRUE(c.verify);
  EXPECT_FALSE(c.reason.empty());
  d.mode = Mode::None;  // a policy of mode none changes nothing
  EXPECT_FALSE(check_mx(d, "mx.elsewhere.test").verify);
  EXPECT_TRUE(check_mx(d, "mx.elsewhere.test").allowed);
}

}  // namespace
}  // namespace estafette::mtasts
