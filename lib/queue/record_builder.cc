#include "lib/queue/record_builder.h"

#include <unistd.h>

#include <cerrno>

#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/base/log.h"
#include "lib/queue/checksum.h"
#include "lib/queue/fs_util.h"

namespace estafette::queue {

namespace {
constexpr std::size_t kWriteBuffer = 64 * 1024;
}

RecordBuilder::RecordBuilder(const Envelope& envelope, std::size_t memory_limit,
                             OpenSpill open_spill)
    : id_(envelope.id),
      header_(encode_header(envelope)),
      memory_limit_(memory_limit),
      open_spill_(std::move(open_spill)),
      buffer_(header_.text) {}

bool RecordBuilder::append(std::string_view bytes) {
  if (error_ != 0) return false;
  body_crc_ = crc32c_update(body_crc_, bytes);
  body_size_ += bytes.size();
  std::size_t limit = spilled() ? kWriteBuffer : memory_limit_;
  if (buffer_.size() + bytes.size() <= limit) {
    buffer_.append(bytes);
    return true;
  }
  if (!spilled() && !spill()) return false;
  if (!flush()) return false;
  if (bytes.size() >= kWriteBuffer) return write_out(bytes);
  buffer_.append(bytes);
  return true;
}

bool RecordBuilder::finish() {
  if (error_ != 0) return false;
  std::string size_field = format_size_field(body_size_);
  header_.text.replace(header_.size_field_offset, kSizeDigits, size_field);
  if (header_in_buffer_) {
    buffer_.replace(header_.size_field_offset, kSizeDigits, size_field);
  } else if (::pwrite(spill_fd_, size_field.data(), size_field.size(),
                      static_cast<off_t>(header_.size_field_offset)) !=
             static_cast<ssize_t>(size_field.size())) {
    return failed(errno != 0 ? errno : EIO, "pwrite");
  }
  buffer_ += encode_trailer(body_size_, crc32c(header_.text), body_crc_);
  return !spilled() || flush();
}

bool RecordBuilder::spill() {
  errno = 0;
  spill_fd_ = open_spill_();
  if (spill_fd_ < 0) return failed(errno != 0 ? errno : EIO, "open spill file");
  return true;
}

bool RecordBuilder::flush() {
  bool ok = write_out(buffer_);
  buffer_.clear();
  header_in_buffer_ = false;
  return ok;
}

bool RecordBuilder::write_out(std::string_view bytes) {
  return base::write_all(spill_fd_, bytes) || failed(errno, "write");
}

bool RecordBuilder::failed(int err, const char* what) {
  error_ = err;
  base::log("queue").error("queue: " + std::string(what) + " failed id=" + id_ + ": " +
                           base::errno_text(err));
  return false;
}

}  // namespace estafette::queue
