// checks.cc: ConnectionChecks, the I/O side of checks.h: FCrDNS, DNS lists and IDENT of one
// connection, all at once on the loop. DNS goes through the shared dns::Resolver (its Requests
// cancel on destruction); IDENT is a non-blocking TCP socket watched by the loop, bounded by a
// loop timer. Each check ends by calling check_finished(); the last one sets Results::elapsed
// and calls `done`, which may destroy this object: nothing touches members after it.
#include "lib/checks/checks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "lib/base/fd.h"
#include "lib/checks/ip.h"

namespace estafette::checks {

namespace {

constexpr std::size_t kMaxIdentReply = 1000;  // bytes before the line end
constexpr std::size_t kMaxReplyText = 400;    // DNS-list reply text shown to the client

std::string lower_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// TXT text for an SMTP reply: printable ASCII only, bounded.
std::string reply_safe(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxReplyText)) out += (c >= ' ' && c < 0x7f) ? c : '?';
  return out;
}

bool is_loopback_net_answer(std::string_view ip) {  // 127.0.0.0/8: what DNS lists answer
  auto a = parse_ip(ip);
  return a && a->length == 4 && a->bytes[0] == 127;
}

}  // namespace

struct ConnectionChecks::Impl {
  Impl(ConnectionChecks& owner, event::Loop& loop, dns::Resolver& resolver,
       const Settings& settings, Endpoints endpoints, std::function<void()> done)
      : owner(owner),
        loop(loop),
        resolver(resolver),
        settings(settings),
        endpoints(std::move(endpoints)),
        done(std::move(done)) {}
  ~Impl() { close_ident(); }

  void start();
  void check_finished();
  void finish();

  void start_rdns();
  void on_ptr(dns::Status status, std::vector<std::string> names);
  void on_forward(std::size_t index, dns::Status status, const std::vector<std::string>& addrs);

  void start_dnsbl();
  void on_list_a(std::size_t index, dns::Status status, const std::vector<std::string>& answers);
  void on_list_txt(std::size_t index, dns::Status status, const std::vector<std::string>& texts);
  void list_done();
  std::string default_reply(const DnsList& list) const;

  void start_ident();
  void on_ident_io(std::uint32_t events);
  void ident_finished(IdentResult result);
  void close_ident();

  ConnectionChecks& owner;
  event::Loop& loop;
  dns::Resolver& resolver;
  const Settings settings;
  const Endpoints endpoints;
  std::function<void()> done;
  std::optional<IpAddress> client;
  std::string client_text;  // normalised
  event::Clock::time_point started;
  bool running = false;
  bool starting = false;       // inside start(): finishing is posted instead
  int left = 0;                // checks without an answer yet
  event::CallbackGuard guard;  // the posted finish() dies with the checks

  // FCrDNS
  dns::Request ptr_request;
  std::vector<dns::Request> forward_requests;
  std::size_t forward_left = 0;
  bool forward_tempfail = false;

  // DNS lists, one slot per Settings::dnsbl entry
  struct List {
    std::string query;
    dns::Request request;
    bool tempfail = false;
    std::optional<DnsListHit> hit;
  };
  std::vector<List> lists;
  std::size_t lists_left = 0;

  // IDENT
  base::UniqueFd ident_fd;
  event::TimerId ident_timer = 0;
  bool ident_connected = false;
  std::string ident_out;
  std::size_t ident_sent = 0;
  std::string ident_in;
};

ConnectionChecks::ConnectionChecks(event::Loop& loop, dns::Resolver& resolver,
                                   const Settings& settings, Endpoints endpoints,
                                   std::function<void()> done)
    : impl_(std::make_unique<Impl>(*this, loop, resolver, settings, std::move(endpoints),
                                   std::move(done))) {}

ConnectionChecks::~ConnectionChecks() = default;

void ConnectionChecks::start() {
  impl_->start();
}

void ConnectionChecks::Impl::start() {
  if (running || owner.finished_) return;
  running = true;
  started = loop.now();
  client = parse_ip(endpoints.client_ip);
  client_text = client ? client->text() : endpoints.client_ip;
  starting = true;
  left = 3;
  start_rdns();
  start_dnsbl();
  start_ident();
  starting = false;
  if (left == 0) {  // every check answered at once (off, nothing to ask): still report later
    loop.post(guard.wrap([this] { finish(); }));
  }
}

void ConnectionChecks::Impl::check_finished() {
  if (--left > 0 || starting) return;
  finish();
}

void ConnectionChecks::Impl::finish() {
  owner.results_.elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(loop.now() - started);
  owner.finished_ = true;
  auto callback = std::move(done);
  done = nullptr;
  if (callback) callback();  // may destroy owner and this
}

// --- FCrDNS

void ConnectionChecks::Impl::start_rdns() {
  RdnsResult& r = owner.results_.rdns;
  if (!settings.rdns) return check_finished();
  if (!client) {
    r.status = RdnsStatus::TempFail;  // nothing to look up; never rejects by itself
    return check_finished();
  }
  r.status = RdnsStatus::TempFail;
  ptr_request = resolver.lookup_ptr(
      client_text, [this](dns::Status s, std::vector<std::string> v) { on_ptr(s, std::move(v)); });
}

void ConnectionChecks::Impl::on_ptr(dns::Status status, std::vector<std::string> names) {
  RdnsResult& r = owner.results_.rdns;
  if (status == dns::Status::NotFound) {
    r.status = RdnsStatus::NoPtr;
    return check_finished();
  }
  if (status != dns::Status::Ok) {
    r.status = RdnsStatus::TempFail;
    return check_finished();
  }
  if (names.size() > settings.max_ptr_names) names.resize(settings.max_ptr_names);
  r.ptr_names = std::move(names);
  if (r.ptr_names.empty()) {
    r.status = RdnsStatus::Unconfirmed;
    return check_finished();
  }
  forward_left = r.ptr_names.size();
  for (std::size_t i = 0; i < r.ptr_names.size(); ++i) {
    auto cb = [this, i](dns::Status s, std::vector<std::string> v) { on_forward(i, s, v); };
    forward_requests.push_back(client->length == 4 ? resolver.lookup_a(r.ptr_names[i], cb)
                                                   : resolver.lookup_aaaa(r.ptr_names[i], cb));
  }
}

void ConnectionChecks::Impl::on_forward(std::size_t index, dns::Status status,
                                        const std::vector<std::string>& addrs) {
  RdnsResult& r = owner.results_.rdns;
  --forward_left;
  if (status == dns::Status::Ok) {
    for (const auto& text : addrs) {
      if (parse_ip(text) != client) continue;
      r.status = RdnsStatus::Confirmed;
      r.name = lower_name(r.ptr_names[index]);
      forward_requests.clear();  // the other names no longer matter
      return check_finished();
    }
  } else if (status == dns::Status::TempFail) {
    forward_tempfail = true;
  }
  if (forward_left > 0) return;
  forward_requests.clear();
  r.status = forward_tempfail ? RdnsStatus::TempFail : RdnsStatus::Unconfirmed;
  check_finished();
}

// --- DNS lists

std::string ConnectionChecks::Impl::default_reply(const DnsList& list) const {
  return "Service unavailable; client [" + client_text + "] blocked using " + list.zone;
}

void ConnectionChecks::Impl::start_dnsbl() {
  lists.resize(settings.dnsbl.size());
  lists_left = lists.size();
  if (lists.empty()) return check_finished();
  std::size_t asked = 0;
  for (std::size_t i = 0; i < lists.size(); ++i) {
    lists[i].query = dnsbl_query_name(client_text, settings.dnsbl[i].zone);
    if (lists[i].query.empty()) {
      lists[i].tempfail = true;  // a malformed zone or address: reported, never counted
      continue;
    }
    ++asked;
    lists[i].request = resolver.lookup_a(
        lists[i].query,
        [this, i](dns::Status s, std::vector<std::string> v) { on_list_a(i, s, v); });
  }
  lists_left = asked;
  if (asked == 0) {
    ++lists_left;
    list_done();
  }
}

void ConnectionChecks::Impl::on_list_a(std::size_t index, dns::Status status,
                                       const std::vector<std::string>& answers) {
  const DnsList& list = settings.dnsbl[index];
  List& slot = lists[index];
  if (status == dns::Status::Ok) {
    std::vector<std::string> matching;
    for (const auto& a : answers) {
      if (list.filter.empty() ? is_loopback_net_answer(a) : list.filter.matches(a))
        matching.push_back(a);
    }
    if (!matching.empty()) {
      slot.hit = DnsListHit{list.zone, list.weight, std::move(matching), ""};
      if (list.reply == "*") {
        slot.request = resolver.lookup_txt(
            slot.query,
            [this, index](dns::Status s, std::vector<std::string> v) { on_list_txt(index, s, v); });
        return;
      }
      slot.hit->reply = list.reply.empty() ? default_reply(list) : list.reply;
    }
  } else if (status != dns::Status::NotFound) {
    slot.tempfail = true;
  }
  list_done();
}

void ConnectionChecks::Impl::on_list_txt(std::size_t index, dns::Status status,
                                         const std::vector<std::string>& texts) {
  List& slot = lists[index];
  if (status == dns::Status::Ok && !texts.empty() && !texts.front().empty())
    slot.hit->reply = reply_safe(texts.front());
  else
    slot.hit->reply = default_reply(settings.dnsbl[index]);
  list_done();
}

void ConnectionChecks::Impl::list_done() {
  if (--lists_left > 0) return;
  DnsblResult& r = owner.results_.dnsbl;
  for (std::size_t i = 0; i < lists.size(); ++i) {
    if (lists[i].hit) {
      r.score += lists[i].hit->weight;
      r.hits.push_back(std::move(*lists[i].hit));
    } else if (lists[i].tempfail) {
      r.tempfailed.push_back(settings.dnsbl[i].zone);
    }
  }
  lists.clear();  // drops the finished Requests
  check_finished();
}

// --- IDENT

void ConnectionChecks::Impl::start_ident() {
  if (!settings.ident) return check_finished();
  std::optional<IpAddress> server;
  if (!endpoints.server_ip.empty()) server = parse_ip(endpoints.server_ip);
  if (!client || (!endpoints.server_ip.empty() && (!server || server->length != client->length)))
    return ident_finished(IdentResult{IdentStatus::Error, "", ""});
  ident_fd.reset(::socket(client->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!ident_fd) return ident_finished(IdentResult{IdentStatus::Error, "", ""});
  sockaddr_storage addr;
  if (server) {  // from our address on this connection, so that the identd sees the same pair
    socklen_t len = server->to_sockaddr(0, addr);
    if (::bind(ident_fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0)
      return ident_finished(IdentResult{IdentStatus::Error, "", ""});
  }
  socklen_t len = client->to_sockaddr(settings.ident_port, addr);
  if (::connect(ident_fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    if (errno == ECONNREFUSED) return ident_finished(IdentResult{IdentStatus::Refused, "", ""});
    if (errno != EINPROGRESS) return ident_finished(IdentResult{IdentStatus::Error, "", ""});
  }
  ident_out = std::to_string(endpoints.client_port) + " , " +
              std::to_string(endpoints.server_port) + "\r\n";
  loop.add_fd(ident_fd.get(), EPOLLOUT, [this](std::uint32_t events) { on_ident_io(events); });
  ident_timer = loop.add_timer(settings.ident_timeout, [this] {
    ident_timer = 0;
    ident_finished(IdentResult{IdentStatus::Timeout, "", ""});
  });
}

void ConnectionChecks::Impl::on_ident_io(std::uint32_t events) {
  const IdentResult error{IdentStatus::Error, "", ""};
  if (!ident_connected) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(ident_fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == ECONNREFUSED) return ident_finished(IdentResult{IdentStatus::Refused, "", ""});
    if (err != 0 || !(events & EPOLLOUT)) return ident_finished(error);
    ident_connected = true;
  }
  if (ident_sent < ident_out.size()) {
    ssize_t n = ::send(ident_fd.get(), ident_out.data() + ident_sent, ident_out.size() - ident_sent,
                       MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) return ident_finished(error);
    ident_sent += static_cast<std::size_t>(n);
    if (ident_sent < ident_out.size()) return;
    loop.modify_fd(ident_fd.get(), EPOLLIN);
    return;  // the reply comes with the next readable event
  }
  char buf[512];
  for (;;) {
    ssize_t n = ::recv(ident_fd.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) return ident_finished(error);
    if (n == 0) {  // closed without a line end: take what came, if anything
      if (ident_in.empty()) return ident_finished(error);
      return ident_finished(
          parse_ident_reply(ident_in, endpoints.client_port, endpoints.server_port));
    }
    ident_in.append(buf, static_cast<std::size_t>(n));
    std::size_t eol = ident_in.find('\n');
    if (eol == std::string::npos) {
      if (ident_in.size() > kMaxIdentReply) return ident_finished(error);
      continue;
    }
    if (eol > kMaxIdentReply) return ident_finished(error);
    std::string_view line(ident_in.data(), eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return ident_finished(parse_ident_reply(line, endpoints.client_port, endpoints.server_port));
  }
}

void ConnectionChecks::Impl::ident_finished(IdentResult result) {
  owner.results_.ident = std::move(result);
  close_ident();
  check_finished();
}

void ConnectionChecks::Impl::close_ident() {
  if (ident_timer) loop.cancel_timer(ident_timer);
  ident_timer = 0;
  if (ident_fd) {
    loop.remove_fd(ident_fd.get());
    ident_fd.reset();
  }
}

}  // namespace estafette::checks
