#include "esmtpd/courierd_link.h"

#include "lib/base/log.h"
#include "lib/base/net.h"
#include "lib/ipc/messages.h"

namespace estafette::esmtpd {

CourierdLink::CourierdLink(event::Loop& loop, std::string socket_path, std::size_t backlog)
    : loop_(loop), socket_path_(std::move(socket_path)), backlog_(backlog) {
  connect();
}

CourierdLink::~CourierdLink() {
  if (reconnect_timer_) loop_.cancel_timer(reconnect_timer_);
}

void CourierdLink::notify(const std::string& queue_id) {
  if (channel_ && channel_->open()) {
    channel_->send(ipc::encode(ipc::NewMessage{queue_id}));
    return;
  }
  if (waiting_.size() >= backlog_) {
    waiting_.pop_front();
    ++lost_;  // Rescan once connected
  }
  waiting_.push_back(queue_id);
}

void CourierdLink::connect() {
  reconnect_timer_ = 0;
  auto fd = base::connect_unix(socket_path_);
  if (!fd) {
    if (!warned_) {
      base::log("esmtpd").warning("courierd not reachable at " + socket_path_ +
                                  "; will retry (queued mail is safe)");
      warned_ = true;
    }
    schedule_reconnect();
    return;
  }
  warned_ = false;
  channel_ = std::make_unique<ipc::Channel>(
      loop_, std::move(fd), [](const ipc::Frame&) {},
      [this] {
        // Frames still unsent are lost; a courierd that stays up must look for their messages.
        if (channel_->queued_bytes() > 0) ++lost_;
        base::log("esmtpd").warning("lost the link to courierd; reconnecting");
        // Destroy the channel outside its own callback.
        loop_.post(guard_.wrap([this] {
          channel_.reset();
          if (!reconnect_timer_) connect();
        }));
      });
  while (!waiting_.empty() && channel_->open()) {
    channel_->send(ipc::encode(ipc::NewMessage{waiting_.front()}));
    waiting_.pop_front();
  }
  if (lost_ > 0 && channel_->open()) {
    base::log("esmtpd").warning("asking courierd to rescan the queue: " + std::to_string(lost_) +
                                " notice(s) of new mail lost");
    channel_->send(ipc::encode(ipc::Rescan{lost_}));
    lost_ = 0;
  }
}

void CourierdLink::schedule_reconnect() {
  reconnect_timer_ = loop_.add_timer(std::chrono::seconds(1), [this] { connect(); });
}

}  // namespace estafette::esmtpd
