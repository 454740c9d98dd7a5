// queue_file.h: the on-disk format of one queued message (file backend), encoding and checking.
// Any thread; pure functions plus pread() on a caller's fd. Errors: read_queue_file() returns
// nullopt with a short reason; encode_header() throws std::system_error(EINVAL).
//
// Layout (text envelope, raw body, END trailer):
//   ESTAFETTE-QUEUE 1\n
//   I <id>\n  T <arrival>\n  F <sender>\n  [C <client ip>\n]  [H <helo>\n]  [M <RET>\n]
//   [E <ENVID xtext>\n]  R <rcpt>\n [P <cmd>\n] [N <NOTIFY>\n] [O <ORCPT>\n] ...
//   B <body size: 20 decimal digits>\n          <- body_offset is just after this line
//   <body: exactly body size bytes, SMTP wire form>
//   \nEND <body size> <header crc32c: 8 hex> <body crc32c: 8 hex>\n
// The header crc covers bytes [0, body_offset). Records are one line "X value" (values have no
// CR, LF or NUL: validated when writing); records with unknown tags are skipped when reading, so
// later versions can add optional ones. The B line is written with zeroes and patched at commit
// time, when the size is known. A file is valid only if the trailer is complete and matches
// the header (size, crc) and the file ends right after it; a torn file never is.
// The DSN records (P, E, and N and O, which belong to the R line before them) are optional and
// written only when the client gave the parameter, so records without DSN look as before and
// a reader that predates them skips them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/queue/backend.h"

namespace estafette::queue {

inline constexpr std::string_view kMagicLine = "ESTAFETTE-QUEUE 1\n";
inline constexpr std::size_t kSizeDigits = 20;
inline constexpr std::size_t kMaxHeaderSize = 16 * 1024 * 1024;

// Why an envelope cannot be stored ("" if it can): bad id, CR/LF/NUL in a value.
std::string envelope_problem(const Envelope& envelope);

struct EncodedHeader {
  std::string text;               // up to and including the B line
  std::size_t size_field_offset;  // where the kSizeDigits digits of the B line start
};
EncodedHeader encode_header(const Envelope& envelope);   // B size 0; throws std::system_error
std::string format_size_field(std::uint64_t body_size);  // kSizeDigits digits
std::string encode_trailer(std::uint64_t body_size, std::uint32_t header_crc,
                           std::uint32_t body_crc);

struct QueueFileInfo {
  Envelope envelope;
  std::uint64_t body_offset = 0;
  std::uint64_t body_size = 0;
  std::uint32_t body_crc = 0;    // as recorded in the trailer
  std::uint64_t record_end = 0;  // offset just after the trailer
};

enum class Check {
  kStructure,  // header, header crc, sizes and trailer: reads the header and the trailer only
  kBody,       // also reads the body and verifies its crc
};

// Reads and verifies the record that starts at offset in the file open on fd and must end by
// limit (a segment holds records back to back). nullopt with *error set on any defect; a
// record cut short by limit is "torn".
std::optional<QueueFileInfo> read_queue_record(int fd, std::uint64_t offset, std::uint64_t limit,
                                               Check check, std::string* error);

// Reads and verifies the queue file open on fd (one record, nothing after it). nullopt with *error
// set on any defect.
std::optional<QueueFileInfo> read_queue_file(int fd, Check check, std::string* error);

// Parses header text (without the final B line requirement checks done by read_queue_file).
std::optional<Envelope> parse_envelope(std::string_view header, std::string* error);

}  // namespace estafette::queue
