// courierd_link.h: esmtpd's typed link to courierd: tells it about each committed message at once
// (NewMessage over <state>/run/courierd.sock), so courierd never polls the queue.
// Loop thread. While courierd is away, notices wait in memory (at most `backlog`, the setting
// courierd_notify_backlog) and the link reconnects every second. A notice dropped from a full
// backlog, or left unsent on a link that closed, would leave its message (answered 250) unknown
// to a courierd that had already scanned the queue: so after any such loss the link sends
// Rescan once it is connected again, and courierd looks for the messages it does not know.
// Destroying the link cancels its timer and its posted callbacks.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "lib/event/loop.h"
#include "lib/ipc/channel.h"

namespace estafette::esmtpd {

class CourierdLink final {
 public:
  CourierdLink(event::Loop& loop, std::string socket_path, std::size_t backlog);
  ~CourierdLink();
  CourierdLink(const CourierdLink&) = delete;
  CourierdLink& operator=(const CourierdLink&) = delete;

  void notify(const std::string& queue_id);
  // Every notice has reached courierd's socket (none waits, none was lost, nothing is left in
  // the channel's buffer). A draining esmtpd waits for this before it exits: a notice it took
  // away with it would leave its message unknown to a courierd that had already scanned the
  // queue (a reload restarts courierd while the old esmtpd still takes mail).
  bool settled() const {
    return waiting_.empty() && lost_ == 0 && channel_ && channel_->open() &&
           channel_->queued_bytes() == 0;
  }

 private:
  void connect();
  void schedule_reconnect();

  event::Loop& loop_;
  std::string socket_path_;
  std::unique_ptr<ipc::Channel> channel_;
  std::size_t backlog_;
  std::deque<std::string> waiting_;
  std::uint64_t lost_ = 0;  // notices lost since the last Rescan was sent
  event::TimerId reconnect_timer_ = 0;
  bool warned_ = false;
  event::CallbackGuard guard_;  // last: posted callbacks die first
};

}  // namespace estafette::esmtpd
