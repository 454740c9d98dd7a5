// channel.h: a framed, typed message stream over a connected non-blocking socket (a unix
// socketpair to a child, or a unix-socket connection), driven by the event loop.
// Loop thread only. The channel owns the fd. Output is buffered without limit (peers are our own
// processes); on EOF, a read error or a malformed frame, on_close runs once and the fd is closed.
#pragma once

#include <functional>
#include <string>

#include "lib/base/fd.h"
#include "lib/event/loop.h"
#include "lib/ipc/frame.h"

namespace estafette::ipc {

class Channel final {
 public:
  using FrameHandler = std::function<void(const Frame&)>;
  using CloseHandler = std::function<void()>;

  Channel(event::Loop& loop, base::UniqueFd fd, FrameHandler on_frame, CloseHandler on_close);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  void send(std::string frame);  // a complete frame from Writer::finish()
  bool open() const { return fd_.valid(); }
  std::size_t queued_bytes() const { return out_.size() - out_start_; }

 private:
  void on_events(std::uint32_t events);
  void flush();
  void close();

  event::Loop& loop_;
  base::UniqueFd fd_;
  FrameHandler on_frame_;
  CloseHandler on_close_;
  FrameSplitter splitter_;
  std::string out_;
  std::size_t out_start_ = 0;
  bool want_write_ = false;
};

}  // namespace estafette::ipc
