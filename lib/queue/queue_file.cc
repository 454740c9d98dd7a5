#include "lib/queue/queue_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <system_error>

#include "lib/base/fd.h"
#include "lib/base/io.h"
#include "lib/queue/checksum.h"
#include "lib/queue/fs_util.h"

namespace estafette::queue {

namespace {

constexpr std::string_view kEndPrefix = "\nEND ";
constexpr std::size_t kReadChunk = 64 * 1024;

bool clean_value(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void append_record(std::string& out, char tag, std::string_view value) {
  out.push_back(tag);
  out.push_back(' ');
  out.append(value);
  out.push_back('\n');
}

void append_hex8(std::string& out, std::uint32_t value) {
  constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 28; shift >= 0; shift -= 4) out.push_back(kHex[(value >> shift) & 0xf]);
}

template <typename T>
bool parse_number(std::string_view text, T& value) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

std::nullopt_t fail(std::string* error, std::string reason) {
  if (error) *error = std::move(reason);
  return std::nullopt;
}

}  // namespace

std::string envelope_problem(const Envelope& envelope) {
  if (!valid_queue_id(envelope.id)) return "invalid queue id";
  if (!clean_value(envelope.sender)) return "CR/LF/NUL in sender";
  if (!clean_value(envelope.client_ip)) return "CR/LF/NUL in client ip";
  if (!clean_value(envelope.helo)) return "CR/LF/NUL in helo";
  for (const auto& r : envelope.recipients) {
    if (!clean_value(r)) return "CR/LF/NUL in recipient";
  }
  for (const auto& [index, program] : envelope.programs) {
    if (index >= envelope.recipients.size()) return "program for a missing recipient";
    if (!clean_value(program) || program.empty()) return "CR/LF/NUL in program";
  }
  if (!clean_value(envelope.ret) || !clean_value(envelope.envid)) return "CR/LF/NUL in RET/ENVID";
  if (!clean_value(envelope.quarantine)) return "CR/LF/NUL in the quarantine reason";
  if (envelope.dsn.size() > envelope.recipients.size()) return "more DSN entries than recipients";
  for (const auto& d : envelope.dsn) {
    if (!clean_value(d.notify) || !clean_value(d.orcpt)) return "CR/LF/NUL in NOTIFY/ORCPT";
  }
  return {};
}

EncodedHeader encode_header(const Envelope& envelope) {
  if (auto problem = envelope_problem(envelope); !problem.empty()) {
    throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                            "queue envelope: " + problem);
  }
  EncodedHeader header;
  std::string& out = header.text;
  out.append(kMagicLine);
  append_record(out, 'I', envelope.id);
  append_record(out, 'T', std::to_string(envelope.arrival));
  append_record(out, 'F', envelope.sender);
  if (!envelope.client_ip.empty()) append_record(out, 'C', envelope.client_ip);
  if (!envelope.helo.empty()) append_record(out, 'H', envelope.helo);
  if (!envelope.ret.empty()) append_record(out, 'M', envelope.ret);
  if (!envelope.envid.empty()) append_record(out, 'E', envelope.envid);
  if (envelope.require_tls) append_record(out, 'Q', "1");
  if (!envelope.quarantine.empty()) append_record(out, 'Z', envelope.quarantine);
  for (std::size_t i = 0; i < envelope.recipients.size(); ++i) {
    append_record(out, 'R', envelope.recipients[i]);
    if (auto p = envelope.programs.find(i); p != envelope.programs.end())
      append_record(out, 'P', p->second);
    const RecipientDsn& dsn = envelope.dsn_of(i);
    if (!dsn.notify.empty()) append_record(out, 'N', dsn.notify);
    if (!dsn.orcpt.empty()) append_record(out, 'O', dsn.orcpt);
  }
  out.append("B ");
  header.size_field_offset = out.size();
  out.append(format_size_field(0));
  out.push_back('\n');
  return header;
}

std::string format_size_field(std::uint64_t body_size) {
  std::string digits = std::to_string(body_size);
  return std::string(kSizeDigits - digits.size(), '0') + digits;
}

std::string encode_trailer(std::uint64_t body_size, std::uint32_t header_crc,
                           std::uint32_t body_crc) {
  std::string out(kEndPrefix);
  out.append(std::to_string(body_size));
  out.push_back(' ');
  append_hex8(out, header_crc);
  out.push_back(' ');
  append_hex8(out, body_crc);
  out.push_back('\n');
  return out;
}

std::optional<Envelope> parse_envelope(std::string_view header, std::string* error) {
  if (!header.starts_with(kMagicLine)) return fail(error, "bad magic line");
  header.remove_prefix(kMagicLine.size());
  Envelope envelope;
  bool have_id = false, have_time = false, have_sender = false;
  bool have_ip = false, have_helo = false, have_body = false;
  bool have_ret = false, have_envid = false, have_quarantine = false;
  while (!header.empty()) {
    auto eol = header.find('\n');
    if (eol == std::string_view::npos) return fail(error, "unterminated header line");
    std::string_view line = header.substr(0, eol);
    header.remove_prefix(eol + 1);
    if (have_body) return fail(error, "record after B");
    if (line.size() < 2 || line[1] != ' ' || line.find('\r') != std::string_view::npos) {
      return fail(error, "malformed header line");
    }
    std::string_view value = line.substr(2);
    bool duplicate = false;
    switch (line[0]) {
      case 'I':
        duplicate = std::exchange(have_id, true);
        if (!valid_queue_id(value)) return fail(error, "invalid queue id");
        envelope.id = value;
        break;
      case 'T':
        duplicate = std::exchange(have_time, true);
        if (!parse_number(value, envelope.arrival)) return fail(error, "bad arrival time");
        break;
      case 'F':
        duplicate = std::exchange(have_sender, true);
        envelope.sender = value;
        break;
      case 'C':
        duplicate = std::exchange(have_ip, true);
        envelope.client_ip = value;
        break;
      case 'H':
        duplicate = std::exchange(have_helo, true);
        envelope.helo = value;
        break;
      case 'R':
        envelope.recipients.emplace_back(value);
        break;
      case 'P':  // the program of the R just before it
        if (envelope.recipients.empty()) return fail(error, "P record before any R");
        duplicate = !envelope.programs.emplace(envelope.recipients.size() - 1, value).second;
        break;
      case 'M':
        duplicate = std::exchange(have_ret, true);
        envelope.ret = value;
        break;
      case 'E':
        duplicate = std::exchange(have_envid, true);
        envelope.envid = value;
        break;
      case 'Z':
        duplicate = std::exchange(have_quarantine, true);
        if (value.empty()) return fail(error, "empty record Z");
        envelope.quarantine = value;
        break;
      case 'Q':
        if (value != "1") return fail(error, "Q record is not 1");
        duplicate = std::exchange(envelope.require_tls, true);
        break;
      case 'N':
      case 'O': {  // of the R line before
        if (envelope.recipients.empty()) return fail(error, std::string(1, line[0]) + " before R");
        if (value.empty()) return fail(error, std::string("empty record ") + line[0]);
        envelope.dsn.resize(envelope.recipients.size());
        std::string& field =
            line[0] == 'N' ? envelope.dsn.back().notify : envelope.dsn.back().orcpt;
        duplicate = !field.empty();
        field = value;
        break;
      }
      case 'B':
        have_body = true;
        if (value.size() != kSizeDigits) return fail(error, "bad B record");
        break;
      default:
        break;  // an optional record of a later version
    }
    if (duplicate) return fail(error, std::string("duplicate record ") + line[0]);
  }
  if (!have_id || !have_time || !have_sender || !have_body) {
    return fail(error, "missing envelope record");
  }
  if (!envelope.dsn.empty()) envelope.dsn.resize(envelope.recipients.size());
  return envelope;
}

static std::size_t trailer_size(std::uint64_t body_size) {
  return kEndPrefix.size() + std::to_string(body_size).size() + 19;  // " xxxxxxxx xxxxxxxx\n"
}

std::optional<QueueFileInfo> read_queue_record(int fd, std::uint64_t offset, std::uint64_t limit,
                                               Check check, std::string* error) {
  if (limit < offset) return fail(error, "record outside the file");
  std::uint64_t available = limit - offset;

  // Read until the B line is complete: "\nB " + digits + "\n".
  std::string head;
  std::size_t b_line = std::string::npos;
  std::size_t search_from = 0;
  while (true) {
    b_line = head.find("\nB ", search_from);
    if (b_line != std::string::npos && head.size() >= b_line + 4 + kSizeDigits) break;
    if (b_line == std::string::npos && head.size() >= 2) search_from = head.size() - 2;
    if (head.size() >= available) return fail(error, "no B record (torn header)");
    if (head.size() > kMaxHeaderSize) return fail(error, "header too large");
    std::string chunk;
    // Small first read: most headers fit, and a segment's records lie back to back.
    std::size_t want =
        std::min<std::uint64_t>(head.empty() ? 4096 : kReadChunk, available - head.size());
    if (!base::read_exact(fd, offset + head.size(), want, chunk)) {
      return fail(error, "read error in header");
    }
    head += chunk;
  }
  std::size_t body_offset = b_line + 4 + kSizeDigits;
  if (head[body_offset - 1] != '\n') return fail(error, "bad B record");
  std::string_view header(head.data(), body_offset);
  auto envelope = parse_envelope(header, error);
  if (!envelope) return std::nullopt;

  QueueFileInfo info;
  info.envelope = std::move(*envelope);
  info.body_offset = offset + body_offset;
  if (!parse_number(header.substr(b_line + 3, kSizeDigits), info.body_size)) {
    return fail(error, "bad B size");
  }
  std::uint64_t body_end = info.body_offset + info.body_size;
  std::uint64_t record_end = body_end + trailer_size(info.body_size);
  if (body_end < info.body_offset || body_end > limit) return fail(error, "torn body");
  if (record_end > limit) return fail(error, "torn trailer");
  std::string trailer;
  if (!base::read_exact(fd, body_end, record_end - body_end, trailer)) {
    return fail(error, "read error in trailer");
  }
  // The last field is the body crc; everything else must be exactly what the writer produces.
  std::uint32_t body_crc = 0;
  std::string_view crc_text = std::string_view(trailer).substr(trailer.size() - 9, 8);
  auto [end, ec] = std::from_chars(crc_text.data(), crc_text.data() + 8, body_crc, 16);
  if (ec != std::errc() || end != crc_text.data() + 8) return fail(error, "bad trailer");
  if (trailer != encode_trailer(info.body_size, crc32c(header), body_crc)) {
    return fail(error, "trailer does not match header (torn or corrupt)");
  }
  info.body_crc = body_crc;
  info.record_end = record_end;

  if (check == Check::kBody) {
    std::uint32_t crc = 0;
    std::string chunk;
    for (std::uint64_t at = info.body_offset; at < body_end;) {
      std::size_t want = std::min<std::uint64_t>(kReadChunk, body_end - at);
      if (!base::read_exact(fd, at, want, chunk)) return fail(error, "read error in body");
      crc = crc32c_update(crc, chunk);
      at += want;
    }
    if (crc != body_crc) return fail(error, "body checksum mismatch");
  }
  return info;
}

std::optional<QueueFileInfo> read_queue_file(int fd, Check check, std::string* error) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(error, std::string("fstat: ") + base::errno_text(errno));
  auto file_size = static_cast<std::uint64_t>(st.st_size);
  auto info = read_queue_record(fd, 0, file_size, check, error);
  if (info && info->record_end != file_size) return fail(error, "data after trailer");
  return info;
}

}  // namespace estafette::queue
