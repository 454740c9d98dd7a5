// courierd_link.h: esmtpd's typed link to courierd: tells it about each committed message at once
// (NewMessage over <state>/run/courierd.sock), so courierd never polls the queue.
// Loop thread. While courierd is away, notices wait in memory (bounded) and the link reconnects
// every second; a notice that is dropped is not lost mail: courierd scans the queue when it starts.
// Destroying the link cancels its timer and its posted callbacks.
#pragma once

#include <deque>
#include <memory>
#include <string>

#include "lib/event/loop.h"
#include "lib/ipc/channel.h"

namespace estafette::esmtpd {

class CourierdLink final {
 public:
  CourierdLink(event::Loop& loop, std::string socket_path);
  ~CourierdLink();
  CourierdLink(const CourierdLink&) = delete;
  CourierdLink& operator=(const CourierdLink&) = delete;

  void notify(const std::string& queue_id);

 private:
  static constexpr std::size_t kMaxWaiting = 100000;
  void connect();
  void schedule_reconnect();

  event::Loop& loop_;
  std::string socket_path_;
  std::unique_ptr<ipc::Channel> channel_;
  std::deque<std::string> waiting_;
  event::TimerId reconnect_timer_ = 0;
  bool warned_ = false;
  event::CallbackGuard guard_;  // last: posted callbacks die first
};

}  // namespace estafette::esmtpd
