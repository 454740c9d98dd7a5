// fetcher.h: one HTTPS fetch of an MTA-STS policy (RFC 8461 3.3): the addresses of
// mta-sts.<domain> through dns::Resolver, a non-blocking TCP connection to each in turn (port 443),
// TLS with tls::Stream in client mode (SNI and the name the certificate must carry are
// mta-sts.<domain>; the chain must verify against the ClientContext's CAs), then
// "GET /.well-known/mta-sts.txt" with Connection: close, the response read with HttpResponse
// (200 only, no redirects, text/plain, at most 64 KiB) and the body parsed with parse_policy.
// One total timeout covers all of it.
// Loop thread only; no threads, nothing blocks. The owner keeps the PolicyFetch (the loop, the
// resolver and the context outlive it); destroying it cancels the fetch (its callback never
// runs). The callback runs on the loop, never inside start(), and exactly once; the owner may
// destroy the PolicyFetch from it. Errors: FetchResult::ok false with a reason for the log
// ("mta-sts.example.org: certificate not verified: ...", "timed out after 60s while ...").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/base/fd.h"
#include "lib/dns/resolver.h"
#include "lib/event/loop.h"
#include "lib/mtasts/http_response.h"
#include "lib/mtasts/policy.h"
#include "lib/tls/stream.h"

namespace estafette::mtasts {

struct FetchOptions {
  std::chrono::milliseconds timeout{60000};  // the whole fetch (mta_sts_timeout)
  std::uint16_t port = 443;                  // RFC 8461 3.3; another only in tests
};

struct FetchResult {
  bool ok = false;
  Policy policy;        // ok
  std::string reason;   // !ok: why
  std::string address;  // the server's address it came from (or was last tried), "" if none
};

class PolicyFetch final {
 public:
  using Callback = std::function<void(const FetchResult&)>;

  PolicyFetch(event::Loop& loop, dns::Resolver& resolver, std::shared_ptr<tls::ClientContext> tls,
              FetchOptions options);
  ~PolicyFetch();
  PolicyFetch(const PolicyFetch&) = delete;
  PolicyFetch& operator=(const PolicyFetch&) = delete;

  // Fetches the policy of `domain` (normalized, see normalize_domain). Once per object.
  void start(const std::string& domain, Callback done);

 private:
  enum class Stage { Resolving, Connecting, Handshake, Sending, Receiving, Done };
  void on_addresses(dns::Status status, std::vector<std::string> addresses);
  void connect_next();
  void on_io(std::uint32_t events);
  void step();
  void watch(std::uint32_t events);
  void close_socket();
  void finish(FetchResult result);
  void fail(const std::string& why);
  const char* stage_text() const;

  event::Loop& loop_;
  dns::Resolver& resolver_;
  std::shared_ptr<tls::ClientContext> tls_;
  FetchOptions options_;
  Callback done_;
  std::string host_;  // mta-sts.<domain>
  Stage stage_ = Stage::Resolving;
  dns::Request dns_;
  event::TimerId timer_ = 0;
  std::vector<std::string> addresses_;
  std::size_t next_address_ = 0;
  std::string address_;
  std::string connect_errors_;  // of the addresses tried so far
  base::UniqueFd fd_;
  bool watched_ = false;
  std::uint32_t interest_ = 0;
  std::unique_ptr<tls::Stream> stream_;
  std::string request_;
  std::size_t sent_ = 0;
  HttpResponse response_{kMaxPolicySize};
  event::CallbackGuard guard_;
};

}  // namespace estafette::mtasts
