// courierd_client.h: the admin command's side of courierd's socket: a blocking connection that
// sends one request frame and reads the reply frames (mailq, flush). Single-threaded; owns its
// socket. Errors: the constructor throws CourierdDown when nobody listens (courierd stopped);
// receive() throws std::runtime_error on EOF, a timeout or a malformed stream.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include "lib/base/fd.h"
#include "lib/ipc/frame.h"

namespace estafette::admin {

class CourierdDown : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CourierdClient final {
 public:
  CourierdClient(const std::string& socket_path, std::chrono::seconds timeout);
  CourierdClient(const CourierdClient&) = delete;
  CourierdClient& operator=(const CourierdClient&) = delete;

  void send(const std::string& frame);
  ipc::Frame receive();

 private:
  base::UniqueFd fd_;
  ipc::FrameSplitter splitter_;
};

}  // namespace estafette::admin
