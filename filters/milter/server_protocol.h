// server_protocol.h: the filter side of the Sendmail milter protocol (version 6) as pure
// functions: an incremental decoder for the MTA's commands (SMFIC_*) and encoders for the
// replies (SMFIR_*), including a filters::Verdict and the filters::Modification list of an end
// of message. The mirror of protocol.h (the MTA side), with the same packet format and the same
// bound (kMaxPacket). No I/O; used by estafette-filterhost (filterhost/), which serves one native
// module as a milter to esmtpd's milter::Client.
// DIAGNOSTICS: CommandParser::feed() returns false with error() set for a malformed packet (zero
// length, longer than its bound, unknown command letter, a string without its NUL, missing or
// surplus data, an unknown connect family); the parser then stays failed. encode_verdict()
// answers "" for Verdict::Failed: a failed filter has no reply, the caller closes the connection
// (the MTA then applies its default action).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filters/milter/protocol.h"
#include "filters/types.h"

namespace estafette::milter {

enum class CommandType {
  OptNeg,   // O: version, actions, protocol
  Macro,    // D: macro_stage (the command letter they are for), macros
  Connect,  // C: hostname, family, port, address
  Helo,     // H: name
  Mail,     // M: address, args
  Rcpt,     // R: address, args
  Data,     // T
  Header,   // L: name, value
  Eoh,      // N
  Body,     // B: body (one chunk)
  Eob,      // E
  Abort,    // A
  Quit,     // Q
  QuitNc,   // K: quit, a new connection follows on this socket
  Unknown,  // U: the unknown SMTP command (text)
};
const char* to_string(CommandType type);

// One decoded command; only the fields its type names are set.
struct Command {
  CommandType type = CommandType::Abort;
  std::uint32_t version = 0, actions = 0, protocol = 0;  // OptNeg
  char macro_stage = 0;                                  // Macro
  filters::Macros macros;                                // Macro
  std::string hostname;                                  // Connect
  filters::Family family = filters::Family::Unknown;     // Connect
  std::uint16_t port = 0;                                // Connect
  std::string address;                                   // Connect, Mail, Rcpt
  std::vector<std::string> args;                         // Mail, Rcpt
  std::string name;                                      // Helo, Header
  std::string value;                                     // Header
  std::string body;                                      // Body
  std::string text;                                      // Unknown
};

// Decodes one packet's command letter and data; false with *error set when malformed.
bool decode_command(char command, std::string_view data, Command& out, std::string* error);

// Incremental decoder: feed bytes as they arrive (split anywhere), collect complete commands.
class CommandParser final {
 public:
  explicit CommandParser(std::size_t max_packet = kMaxPacket) : max_packet_(max_packet) {}
  // Appends every command completed by `bytes` to out. false (and error() set) on a malformed
  // packet; the commands decoded before it are still appended, nothing after it is.
  bool feed(std::string_view bytes, std::vector<Command>& out);
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  std::size_t max_packet_;
  std::string buffer_;
  std::string error_;
};

// Reply encoders: each returns one complete packet.
std::string encode_optneg_reply(std::uint32_t version, std::uint32_t actions,
                                std::uint32_t protocol);
std::string encode_simple_reply(ReplyType type);  // Continue, Accept, Reject, Tempfail, ...
std::string encode_replycode(std::string_view text);
std::string encode_addheader(std::string_view name, std::string_view value);
std::string encode_chgheader(std::uint32_t index, std::string_view name, std::string_view value);
std::string encode_insheader(std::uint32_t index, std::string_view name, std::string_view value);
std::string encode_addrcpt(std::string_view address, std::string_view args);  // args "": '+'
std::string encode_delrcpt(std::string_view address);
std::string encode_chgfrom(std::string_view address, std::string_view args);
std::string encode_replbody(std::string_view chunk);  // at most kChunkSize bytes
std::string encode_quarantine(std::string_view reason);

// The final reply for a verdict ("" for Failed: no reply, see DIAGNOSTICS). A ReplyCode without
// text, as filters/types.h allows, goes as a plain reject.
std::string encode_verdict(const filters::Verdict& verdict);
// The modification replies of an end of message, in order; a replacement body in chunks of at
// most kChunkSize. Header values go as they are (leading space included): the MTA negotiated
// SMFIP_HDR_LEADSPC; without it (leadspc false) one leading space is taken off, as the MTA adds
// it back.
std::string encode_modifications(const std::vector<filters::Modification>& mods, bool leadspc);

}  // namespace estafette::milter
