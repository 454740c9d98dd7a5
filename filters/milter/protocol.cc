// protocol.cc: milter packet encoding and reply decoding (see protocol.h).
#include "filters/milter/protocol.h"
#include "filters/milter/wire.h"

#include <cstdlib>

namespace estafette::milter {

using filters::Family;
using filters::Macros;

// filters::Family's letters are the ones SMFIC_CONNECT carries.
static_assert(static_cast<char>(Family::Unknown) == SMFIA_UNKNOWN);
static_assert(static_cast<char>(Family::Unix) == SMFIA_UNIX);
static_assert(static_cast<char>(Family::Inet) == SMFIA_INET);
static_assert(static_cast<char>(Family::Inet6) == SMFIA_INET6);

using wire::get_u32;
using wire::packet;
using wire::put_string;
using wire::put_u32;

namespace {

std::string address_packet(char command, std::string_view address,
                           const std::vector<std::string>& args) {
  std::string data;
  put_string(data, address);
  for (const std::string& arg : args) put_string(data, arg);
  return packet(command, data);
}

// Splits data into exactly `min`..`max` NUL-terminated strings; false if anything is left over
// or a string lacks its NUL.
bool split_strings(std::string_view data, std::size_t min, std::size_t max,
                   std::vector<std::string>& out, std::string* error) {
  while (!data.empty()) {
    std::size_t nul = data.find('\0');
    if (nul == std::string_view::npos) {
      *error = "string without NUL";
      return false;
    }
    if (out.size() == max) {
      *error = "unexpected data after the last string";
      return false;
    }
    out.emplace_back(data.substr(0, nul));
    data.remove_prefix(nul + 1);
  }
  if (out.size() < min) {
    *error = "missing string";
    return false;
  }
  return true;
}

bool valid_reply_code(std::string_view text) {
  // "4xx" or "5xx", then a space, a '-' (multi-line) or the end.
  if (text.size() < 3 || (text[0] != '4' && text[0] != '5')) return false;
  if (text[1] < '0' || text[1] > '9' || text[2] < '0' || text[2] > '9') return false;
  return text.size() == 3 || text[3] == ' ' || text[3] == '-';
}

}  // namespace

std::string encode_optneg(std::uint32_t version, std::uint32_t actions, std::uint32_t protocol) {
  std::string data;
  put_u32(data, version);
  put_u32(data, actions);
  put_u32(data, protocol);
  return packet(SMFIC_OPTNEG, data);
}

std::string encode_macro(char command, const Macros& macros) {
  std::string data(1, command);
  for (const auto& [name, value] : macros) {
    put_string(data, name);
    put_string(data, value);
  }
  return packet(SMFIC_MACRO, data);
}

std::string encode_connect(std::string_view hostname, Family family, std::uint16_t port,
                           std::string_view address) {
  std::string data;
  put_string(data, hostname);
  data.push_back(static_cast<char>(family));
  if (family != Family::Unknown) {
    data.push_back(static_cast<char>(port >> 8));
    data.push_back(static_cast<char>(port));
    put_string(data, address);
  }
  return packet(SMFIC_CONNECT, data);
}

std::string encode_helo(std::string_view name) {
  std::string data;
  put_string(data, name);
  return packet(SMFIC_HELO, data);
}

std::string encode_mail(std::string_view address, const std::vector<std::string>& args) {
  return address_packet(SMFIC_MAIL, address, args);
}

std::string encode_rcpt(std::string_view address, const std::vector<std::string>& args) {
  return address_packet(SMFIC_RCPT, address, args);
}

std::string encode_data() {
  return packet(SMFIC_DATA, {});
}

std::string encode_header(std::string_view name, std::string_view value) {
  std::string data;
  put_string(data, name);
  put_string(data, value);
  return packet(SMFIC_HEADER, data);
}

std::string encode_eoh() {
  return packet(SMFIC_EOH, {});
}

std::string encode_body(std::string_view chunk) {
  if (chunk.size() > kChunkSize) std::abort();  // the client splits; a longer chunk is a bug
  return packet(SMFIC_BODY, chunk);
}

std::string encode_eob() {
  return packet(SMFIC_BODYEOB, {});
}
std::string encode_abort() {
  return packet(SMFIC_ABORT, {});
}
std::string encode_quit() {
  return packet(SMFIC_QUIT, {});
}
std::string encode_quit_nc() {
  return packet(SMFIC_QUIT_NC, {});
}

const char* to_string(ReplyType type) {
  switch (type) {
    case ReplyType::Continue:
      return "continue";
    case ReplyType::Accept:
      return "accept";
    case ReplyType::Reject:
      return "reject";
    case ReplyType::Tempfail:
      return "tempfail";
    case ReplyType::Discard:
      return "discard";
    case ReplyType::ReplyCode:
      return "replycode";
    case ReplyType::AddHeader:
      return "addheader";
    case ReplyType::ChangeHeader:
      return "chgheader";
    case ReplyType::InsertHeader:
      return "insheader";
    case ReplyType::AddRcpt:
      return "addrcpt";
    case ReplyType::AddRcptPar:
      return "addrcpt_par";
    case ReplyType::DelRcpt:
      return "delrcpt";
    case ReplyType::ReplaceBody:
      return "replbody";
    case ReplyType::Progress:
      return "progress";
    case ReplyType::Quarantine:
      return "quarantine";
    case ReplyType::ChangeFrom:
      return "chgfrom";
    case ReplyType::Skip:
      return "skip";
    case ReplyType::OptNeg:
      return "optneg";
  }
  return "?";
}

bool decode_reply(char command, std::string_view data, Reply& out, std::string* error) {
  out = Reply{};
  std::vector<std::string> s;
  auto no_data = [&](ReplyType type) {
    out.type = type;
    if (data.empty()) return true;
    *error = std::string("unexpected data in reply '") + command + "'";
    return false;
  };
  switch (command) {
    case SMFIR_CONTINUE:
      return no_data(ReplyType::Continue);
    case SMFIR_ACCEPT:
      return no_data(ReplyType::Accept);
    case SMFIR_REJECT:
      return no_data(ReplyType::Reject);
    case SMFIR_TEMPFAIL:
      return no_data(ReplyType::Tempfail);
    case SMFIR_DISCARD:
      return no_data(ReplyType::Discard);
    case SMFIR_PROGRESS:
      return no_data(ReplyType::Progress);
    case SMFIR_SKIP:
      return no_data(ReplyType::Skip);
    case SMFIR_REPLYCODE:
      out.type = ReplyType::ReplyCode;
      if (!split_strings(data, 1, 1, s, error)) return false;
      if (!valid_reply_code(s[0])) {
        *error = "reply code is not 4xx/5xx";
        return false;
      }
      out.text = std::move(s[0]);
      return true;
    case SMFIR_QUARANTINE:
      out.type = ReplyType::Quarantine;
      if (!split_strings(data, 1, 1, s, error)) return false;
      out.text = std::move(s[0]);
      return true;
    case SMFIR_ADDHEADER:
      out.type = ReplyType::AddHeader;
      if (!split_strings(data, 2, 2, s, error)) return false;
      out.name = std::move(s[0]);
      out.value = std::move(s[1]);
      return !out.name.empty() || (*error = "empty header name", false);
    case SMFIR_CHGHEADER:
    case SMFIR_INSHEADER:
      out.type = command == SMFIR_CHGHEADER ? ReplyType::ChangeHeader : ReplyType::InsertHeader;
      if (data.size() < 4) {
        *error = "short header index";
        return false;
      }
      out.index = get_u32(data);
      if (!split_strings(data.substr(4), 2, 2, s, error)) return false;
      out.name = std::move(s[0]);
      out.value = std::move(s[1]);
      return !out.name.empty() || (*error = "empty header name", false);
    case SMFIR_ADDRCPT:
    case SMFIR_DELRCPT:
      out.type = command == SMFIR_ADDRCPT ? ReplyType::AddRcpt : ReplyType::DelRcpt;
      if (!split_strings(data, 1, 1, s, error)) return false;
      out.address = std::move(s[0]);
      return true;
    case SMFIR_ADDRCPT_PAR:
    case SMFIR_CHGFROM:
      out.type = command == SMFIR_CHGFROM ? ReplyType::ChangeFrom : ReplyType::AddRcptPar;
      if (!split_strings(data, 1, 2, s, error)) return false;
      out.address = std::move(s[0]);
      if (s.size() > 1) out.args = std::move(s[1]);
      return true;
    case SMFIR_REPLBODY:
      out.type = ReplyType::ReplaceBody;
      out.body.assign(data);
      return true;
    case SMFIC_OPTNEG: {
      out.type = ReplyType::OptNeg;
      if (data.size() < MILTER_OPTLEN) {
        *error = "short option negotiation";
        return false;
      }
      out.version = get_u32(data);
      out.actions = get_u32(data.substr(4));
      out.protocol = get_u32(data.substr(8));
      data.remove_prefix(MILTER_OPTLEN);
      // Optional SMFIR_SETSYMLIST part: (uint32 stage, "name name ...\0") pairs.
      while (!data.empty()) {
        if (data.size() < 4) {
          *error = "short macro list stage";
          return false;
        }
        std::uint32_t stage = get_u32(data);
        data.remove_prefix(4);
        std::size_t nul = data.find('\0');
        if (nul == std::string_view::npos) {
          *error = "macro list without NUL";
          return false;
        }
        if (stage > SMFIM_LAST) {
          *error = "macro list for an unknown stage";
          return false;
        }
        out.symlists[static_cast<int>(stage)] = std::string(data.substr(0, nul));
        data.remove_prefix(nul + 1);
      }
      return true;
    }
    default:
      *error = "unknown reply '" + std::string(1, command) + "'";
      return false;
  }
}

bool ReplyParser::feed(std::string_view bytes, std::vector<Reply>& out) {
  if (failed()) return false;
  return wire::split_packets(buffer_, bytes, max_packet_, error_,
                             [&](char letter, std::string_view data, std::string* error) {
                               Reply reply;
                               if (!decode_reply(letter, data, reply, error)) return false;
                               out.push_back(std::move(reply));
                               return true;
                             });
}

}  // namespace estafette::milter
