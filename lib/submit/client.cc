#include "lib/submit/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

namespace estafette::submit {

namespace {

// Blocking line-oriented SMTP client I/O on one socket with SO_RCVTIMEO/SO_SNDTIMEO set.
class Conversation final {
 public:
  explicit Conversation(int fd) : fd_(fd) {}

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)
                     ? std::string("timeout writing to esmtpd")
                     : std::string("lost the connection to esmtpd: ") + std::strerror(errno);
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  std::optional<smtp::Reply> reply() {
    for (;;) {
      if (auto r = parser_.next()) return r;
      if (parser_.error() != smtp::ReplyParser::Error::None) {
        error_ = "bad reply from esmtpd: " + parser_.error_text();
        protocol_error_ = true;
        return std::nullopt;
      }
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error_ = n == 0 ? std::string("esmtpd closed the connection")
                 : (errno == EAGAIN || errno == EWOULDBLOCK)
                     ? std::string("timeout waiting for esmtpd")
                     : std::string("lost the connection to esmtpd: ") + std::strerror(errno);
        return std::nullopt;
      }
      parser_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }

  const std::string& error() const { return error_; }
  bool protocol_error() const { return protocol_error_; }

 private:
  int fd_;
  smtp::ReplyParser parser_;
  std::string error_;
  bool protocol_error_ = false;
};

const char* stage_text(Stage stage) {
  switch (stage) {
    case Stage::Greeting:
      return "the greeting";
    case Stage::Ehlo:
      return "EHLO";
    case Stage::Mail:
      return "the sender";
    case Stage::Rcpt:
      return "the recipient";
    case Stage::Data:
      return "DATA";
    case Stage::DataEnd:
      return "the message";
  }
  return "?";
}

}  // namespace

int exit_code_for(Stage stage, const smtp::Reply& reply) {
  if (reply.transient()) return kExTempFail;
  if (!reply.permanent()) return kExProtocol;
  switch (stage) {
    case Stage::Greeting:
    case Stage::Ehlo:
      return kExUnavailable;
    case Stage::Mail:
    case Stage::DataEnd:
      return kExDataErr;
    case Stage::Rcpt:
      return kExNoUser;
    case Stage::Data:
      return kExProtocol;
  }
  return kExSoftware;
}

SubmitResult submit(int fd, const Submission& s, std::chrono::seconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (s.greeting_timeout.count() > 0 && s.greeting_timeout < timeout) {
    timeval greet{};
    greet.tv_sec = static_cast<time_t>(s.greeting_timeout.count());
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &greet, sizeof greet);
  }
  Conversation c(fd);
  SubmitResult result;
  // Sends `command` (unless empty), reads the reply; false (result filled) unless it is
  // `expected` (2 or 3).
  auto step = [&](Stage stage, const std::string& command, int expected,
                  const std::string& what) -> std::optional<smtp::Reply> {
    if (!command.empty() && !c.send(command + "\r\n")) {
      result = {kExTempFail, c.error(), "", stage};
      return std::nullopt;
    }
    auto reply = c.reply();
    if (!reply) {
      result = {c.protocol_error() ? kExProtocol : kExTempFail, c.error(), "", stage};
      return std::nullopt;
    }
    if (reply->klass() != expected) {
      result = {exit_code_for(stage, *reply),
                std::string(stage_text(stage)) + (what.empty() ? "" : " <" + what + ">") +
                    " was refused: " + reply->to_string(),
                "", stage};
      c.send("QUIT\r\n");
      return std::nullopt;
    }
    return reply;
  };
  if (!step(Stage::Greeting, "", 2, "")) return result;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!step(Stage::Ehlo, "EHLO " + s.helo, 2, "")) return result;
  std::string mail = "MAIL FROM:<" + s.sender + "> SIZE=" + std::to_string(s.wire.size());
  if (s.eight_bit) mail += " BODY=8BITMIME";
  if (!step(Stage::Mail, mail, 2, s.sender)) return result;
  for (const auto& r : s.recipients)
    if (!step(Stage::Rcpt, "RCPT TO:<" + r + ">", 2, r)) return result;
  if (!step(Stage::Data, "DATA", 3, "")) return result;
  if (!c.send(s.wire)) return {kExTempFail, c.error(), "", Stage::DataEnd};
  auto done = step(Stage::DataEnd, ".", 2, "");
  if (!done) return result;
  auto text = done->text();
  if (auto at = text.rfind("queued as "); at != std::string::npos)
    result.queue_id = text.substr(at + 10);
  if (c.send("QUIT\r\n")) c.reply();  // the message is queued whatever happens now
  return result;
}

// A blocking connection to the submission socket, or an invalid fd with errno set.
base::UniqueFd connect_submit(const std::string& path, std::chrono::seconds timeout) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path) {
    errno = ENAMETOOLONG;
    return {};
  }
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  base::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // bounds connect, too
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) fd.reset();
  return fd;
}

std::string LineEndFixer::feed(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 16);
  for (char ch : bytes) {
    if (ch == '\n' && !last_cr_) out += '\r';
    out += ch;
    last_cr_ = ch == '\r';
  }
  return out;
}

int proxy(int in, int out, int sock) {
  LineEndFixer fixer;
  bool in_open = true;
  char buf[16384];
  auto write_all = [](int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == ENOTSOCK) n = ::write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  };
  for (;;) {
    pollfd fds[2] = {{sock, POLLIN, 0}, {in_open ? in : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return kExIoErr;
    }
    if (fds[0].revents) {
      ssize_t n = ::recv(sock, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return kExOk;  // esmtpd closed (after QUIT, or it gave up)
      if (!write_all(out, std::string_view(buf, static_cast<std::size_t>(n)))) return kExIoErr;
    }
    if (in_open && fds[1].revents) {
      ssize_t n = ::read(in, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        in_open = false;
        ::shutdown(sock, SHUT_WR);
        continue;
      }
      if (!write_all(sock, fixer.feed(std::string_view(buf, static_cast<std::size_t>(n)))))
        return kExTempFail;
    }
  }
}

}  // namespace estafette::submit
