// protocol.h: the Sendmail milter wire protocol (version 6), MTA side, as pure functions: encoders
// for every SMFIC_* command and an incremental decoder for the milter's replies. No I/O; used by
// filters/milter/client.h and the reply fuzz target. It speaks the filter interface's types
// (filters/types.h: macros, family); nothing in filters/ outside milter/ includes it.
// A packet is a 4-byte big-endian length (command byte + data), the command byte, the data;
// strings are NUL-terminated. The wire constants come from libmilter's own headers.
// DIAGNOSTICS: ReplyParser::feed() returns false with error() set for a malformed packet (zero
// length, longer than kMaxPacket, unknown reply letter, a string without its NUL, missing or
// surplus data, a reply code that is not 4xx/5xx); the parser then stays failed.
#pragma once

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filters/types.h"

namespace estafette::milter {

inline constexpr std::uint32_t kProtocolVersion = SMFI_PROT_VERSION;  // 6
inline constexpr std::size_t kChunkSize = MILTER_CHUNK_SIZE;          // body chunk limit
// Largest packet we accept from a milter (libmilter sends at most 1 MiB - 1 with SMFIP_MDS_1M).
inline constexpr std::size_t kMaxPacket = 1024 * 1024 + kChunkSize;

// Encoders: each returns one complete packet.
std::string encode_optneg(std::uint32_t version, std::uint32_t actions, std::uint32_t protocol);
// SMFIC_MACRO for the command letter `command` (SMFIC_CONNECT, SMFIC_MAIL, ...).
// Macros: filters::Macros (filters/types.h), as the filter interface passes them.
std::string encode_macro(char command, const filters::Macros& macros);
// The family letter is filters::Family's (the SMFIA_* letters); Unknown sends neither port nor
// address.
std::string encode_connect(std::string_view hostname, filters::Family family, std::uint16_t port,
                           std::string_view address);
std::string encode_helo(std::string_view name);
// address as given in the command ("<a@b>"), then the ESMTP parameters ("SIZE=10").
std::string encode_mail(std::string_view address, const std::vector<std::string>& args);
std::string encode_rcpt(std::string_view address, const std::vector<std::string>& args);
std::string encode_data();
std::string encode_header(std::string_view name, std::string_view value);
std::string encode_eoh();
// One SMFIC_BODY packet; chunk must be at most kChunkSize bytes (longer aborts: a caller bug).
std::string encode_body(std::string_view chunk);
std::string encode_eob();
std::string encode_abort();
std::string encode_quit();
std::string encode_quit_nc();

enum class ReplyType {
  Continue,      // c
  Accept,        // a
  Reject,        // r
  Tempfail,      // t
  Discard,       // d
  ReplyCode,     // y: text
  AddHeader,     // h: name, value
  ChangeHeader,  // m: index, name, value (empty value: delete)
  InsertHeader,  // i: index, name, value
  AddRcpt,       // +: address
  AddRcptPar,    // 2: address, args
  DelRcpt,       // -: address
  ReplaceBody,   // b: body (one chunk; several replies concatenate)
  Progress,      // p
  Quarantine,    // q: text (the reason)
  ChangeFrom,    // e: address, args
  Skip,          // s
  OptNeg,        // O: version, actions, protocol, symlists
};
const char* to_string(ReplyType type);

// One decoded reply; only the fields its type names are set.
struct Reply {
  ReplyType type = ReplyType::Continue;
  std::string text;         // ReplyCode, Quarantine
  std::string name;         // header name
  std::string value;        // header value, as sent (leading space only with SMFIP_HDR_LEADSPC)
  std::uint32_t index = 0;  // ChangeHeader: nth occurrence (1-based); InsertHeader: position
  std::string address;      // AddRcpt, AddRcptPar, DelRcpt, ChangeFrom
  std::string args;         // AddRcptPar, ChangeFrom (may be empty)
  std::string body;         // ReplaceBody
  // OptNeg
  std::uint32_t version = 0;
  std::uint32_t actions = 0;
  std::uint32_t protocol = 0;
  std::map<int, std::string> symlists;  // SMFIM_* stage -> space-separated macro names
};

// Decodes one packet's command letter and data; false with *error set when malformed.
bool decode_reply(char command, std::string_view data, Reply& out, std::string* error);

// Incremental decoder: feed bytes as they arrive (split anywhere), collect complete replies.
class ReplyParser final {
 public:
  explicit ReplyParser(std::size_t max_packet = kMaxPacket) : max_packet_(max_packet) {}

  // Appends every reply completed by `bytes` to out. false (and error() set) on a malformed
  // packet; the replies decoded before it are still appended, nothing after it is.
  bool feed(std::string_view bytes, std::vector<Reply>& out);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  std::size_t buffered() const { return buffer_.size(); }

 private:
  std::size_t max_packet_;
  std::string buffer_;
  std::string error_;
};

}  // namespace estafette::milter
