// server_protocol.cc: milter command decoding and reply encoding (see server_protocol.h).
#include "filters/milter/server_protocol.h"
#include "filters/milter/wire.h"

#include <cstdlib>

namespace estafette::milter {

using filters::Family;
using filters::Modification;
using filters::Verdict;

using wire::get_u32;
using wire::packet;
using wire::put_string;
using wire::put_u32;

namespace {

// Takes one NUL-terminated string off the front of data.
bool take_string(std::string_view& data, std::string& out, std::string* error) {
  std::size_t nul = data.find('\0');
  if (nul == std::string_view::npos) {
    *error = "string without NUL";
    return false;
  }
  out.assign(data.substr(0, nul));
  data.remove_prefix(nul + 1);
  return true;
}

bool no_more(std::string_view data, std::string* error) {
  if (data.empty()) return true;
  *error = "unexpected data after the last string";
  return false;
}

// An address, then zero or more ESMTP parameters (MAIL, RCPT).
bool address_and_args(std::string_view data, Command& out, std::string* error) {
  if (!take_string(data, out.address, error)) return false;
  while (!data.empty()) {
    out.args.emplace_back();
    if (!take_string(data, out.args.back(), error)) return false;
  }
  return true;
}

bool known_family(char c) {
  return c == SMFIA_UNKNOWN || c == SMFIA_UNIX || c == SMFIA_INET || c == SMFIA_INET6;
}

std::string header_value(std::string_view value, bool leadspc) {
  if (!leadspc && !value.empty() && value.front() == ' ') value.remove_prefix(1);
  return std::string(value);
}

std::string name_value(std::string_view name, std::string_view value) {
  std::string data;
  put_string(data, name);
  put_string(data, value);
  return data;
}

std::string index_name_value(std::uint32_t index, std::string_view name, std::string_view value) {
  std::string data;
  put_u32(data, index);
  data += name_value(name, value);
  return data;
}

}  // namespace

const char* to_string(CommandType type) {
  switch (type) {
    case CommandType::OptNeg:
      return "optneg";
    case CommandType::Macro:
      return "macro";
    case CommandType::Connect:
      return "connect";
    case CommandType::Helo:
      return "helo";
    case CommandType::Mail:
      return "mail";
    case CommandType::Rcpt:
      return "rcpt";
    case CommandType::Data:
      return "data";
    case CommandType::Header:
      return "header";
    case CommandType::Eoh:
      return "eoh";
    case CommandType::Body:
      return "body";
    case CommandType::Eob:
      return "eob";
    case CommandType::Abort:
      return "abort";
    case CommandType::Quit:
      return "quit";
    case CommandType::QuitNc:
      return "quit_nc";
    case CommandType::Unknown:
      return "unknown";
  }
  return "?";
}

bool decode_command(char command, std::string_view data, Command& out, std::string* error) {
  out = Command{};
  auto no_data = [&](CommandType type) {
    out.type = type;
    if (data.empty()) return true;
    *error = std::string("unexpected data in command '") + command + "'";
    return false;
  };
  switch (command) {
    case SMFIC_OPTNEG:
      out.type = CommandType::OptNeg;
      if (data.size() != MILTER_OPTLEN) {
        *error = "option negotiation of " + std::to_string(data.size()) + " bytes, not 12";
        return false;
      }
      out.version = get_u32(data);
      out.actions = get_u32(data.substr(4));
      out.protocol = get_u32(data.substr(8));
      return true;
    case SMFIC_MACRO:
      out.type = CommandType::Macro;
      if (data.empty()) {
        *error = "macro command without its stage";
        return false;
      }
      out.macro_stage = data[0];
      data.remove_prefix(1);
      while (!data.empty()) {
        std::string name, value;
        if (!take_string(data, name, error)) return false;
        if (data.empty()) {
          *error = "macro " + name + " without a value";
          return false;
        }
        if (!take_string(data, value, error)) return false;
        out.macros.emplace_back(std::move(name), std::move(value));
      }
      return true;
    case SMFIC_CONNECT: {
      out.type = CommandType::Connect;
      if (!take_string(data, out.hostname, error)) return false;
      if (data.empty() || !known_family(data[0])) {
        *error = "connect without a known address family";
        return false;
      }
      out.family = static_cast<Family>(data[0]);
      data.remove_prefix(1);
      if (out.family == Family::Unknown) return no_more(data, error);
      if (data.size() < 2) {
        *error = "connect without its port";
        return false;
      }
      out.port = static_cast<std::uint16_t>(static_cast<unsigned char>(data[0]) << 8 |
                                            static_cast<unsigned char>(data[1]));
      data.remove_prefix(2);
      if (!take_string(data, out.address, error)) return false;
      return no_more(data, error);
    }
    case SMFIC_HELO:
      out.type = CommandType::Helo;
      if (!take_string(data, out.name, error)) return false;
      return no_more(data, error);
    case SMFIC_MAIL:
    case SMFIC_RCPT:
      out.type = command == SMFIC_MAIL ? CommandType::Mail : CommandType::Rcpt;
      return address_and_args(data, out, error);
    case SMFIC_DATA:
      return no_data(CommandType::Data);
    case SMFIC_HEADER:
      out.type = CommandType::Header;
      if (!take_string(data, out.name, error) || !take_string(data, out.value, error)) return false;
      if (out.name.empty()) {
        *error = "empty header name";
        return false;
      }
      return no_more(data, error);
    case SMFIC_EOH:
      return no_data(CommandType::Eoh);
    case SMFIC_BODY:
      out.type = CommandType::Body;
      out.body.assign(data);
      return true;
    case SMFIC_BODYEOB:
      // Sendmail may send the last body chunk with it; we fold it into the body.
      out.type = CommandType::Eob;
      out.body.assign(data);
      return true;
    case SMFIC_ABORT:
      return no_data(CommandType::Abort);
    case SMFIC_QUIT:
      return no_data(CommandType::Quit);
    case SMFIC_QUIT_NC:
      return no_data(CommandType::QuitNc);
    case SMFIC_UNKNOWN:
      out.type = CommandType::Unknown;
      if (!take_string(data, out.text, error)) return false;
      return no_more(data, error);
    default:
      *error = "unknown command '" + std::string(1, command) + "'";
      return false;
  }
}

bool CommandParser::feed(std::string_view bytes, std::vector<Command>& out) {
  if (failed()) return false;
  return wire::split_packets(buffer_, bytes, max_packet_, error_,
                             [&](char letter, std::string_view data, std::string* error) {
                               Command command;
                               if (!decode_command(letter, data, command, error)) return false;
                               out.push_back(std::move(command));
                               return true;
                             });
}

std::string encode_optneg_reply(std::uint32_t version, std::uint32_t actions,
                                std::uint32_t protocol) {
  std::string data;
  put_u32(data, version);
  put_u32(data, actions);
  put_u32(data, protocol);
  return packet(SMFIC_OPTNEG, data);
}

std::string encode_simple_reply(ReplyType type) {
  switch (type) {
    case ReplyType::Continue:
      return packet(SMFIR_CONTINUE, {});
    case ReplyType::Accept:
      return packet(SMFIR_ACCEPT, {});
    case ReplyType::Reject:
      return packet(SMFIR_REJECT, {});
    case ReplyType::Tempfail:
      return packet(SMFIR_TEMPFAIL, {});
    case ReplyType::Discard:
      return packet(SMFIR_DISCARD, {});
    case ReplyType::Progress:
      return packet(SMFIR_PROGRESS, {});
    case ReplyType::Skip:
      return packet(SMFIR_SKIP, {});
    default:
      std::abort();  // a reply with data: a caller bug
  }
}

std::string encode_replycode(std::string_view text) {
  std::string data;
  put_string(data, text);
  return packet(SMFIR_REPLYCODE, data);
}

std::string encode_addheader(std::string_view name, std::string_view value) {
  return packet(SMFIR_ADDHEADER, name_value(name, value));
}

std::string encode_chgheader(std::uint32_t index, std::string_view name, std::string_view value) {
  return packet(SMFIR_CHGHEADER, index_name_value(index, name, value));
}

std::string encode_insheader(std::uint32_t index, std::string_view name, std::string_view value) {
  return packet(SMFIR_INSHEADER, index_name_value(index, name, value));
}

std::string encode_addrcpt(std::string_view address, std::string_view args) {
  std::string data;
  put_string(data, address);
  if (args.empty()) return packet(SMFIR_ADDRCPT, data);
  put_string(data, args);
  return packet(SMFIR_ADDRCPT_PAR, data);
}

std::string encode_delrcpt(std::string_view address) {
  std::string data;
  put_string(data, address);
  return packet(SMFIR_DELRCPT, data);
}

std::string encode_chgfrom(std::string_view address, std::string_view args) {
  std::string data;
  put_string(data, address);
  if (!args.empty()) put_string(data, args);
  return packet(SMFIR_CHGFROM, data);
}

std::string encode_replbody(std::string_view chunk) {
  if (chunk.size() > kChunkSize) std::abort();  // encode_modifications splits
  return packet(SMFIR_REPLBODY, chunk);
}

std::string encode_quarantine(std::string_view reason) {
  std::string data;
  put_string(data, reason);
  return packet(SMFIR_QUARANTINE, data);
}

std::string encode_verdict(const Verdict& verdict) {
  switch (verdict.action) {
    case Verdict::Action::Continue:
      return encode_simple_reply(ReplyType::Continue);
    case Verdict::Action::Accept:
      return encode_simple_reply(ReplyType::Accept);
    case Verdict::Action::Reject:
      return encode_simple_reply(ReplyType::Reject);
    case Verdict::Action::Tempfail:
      return encode_simple_reply(ReplyType::Tempfail);
    case Verdict::Action::Discard:
      return encode_simple_reply(ReplyType::Discard);
    case Verdict::Action::ReplyCode:
      return verdict.text.empty() ? encode_simple_reply(ReplyType::Reject)
                                  : encode_replycode(verdict.text);
    case Verdict::Action::Failed:
      return "";
  }
  return "";
}

std::string encode_modifications(const std::vector<Modification>& mods, bool leadspc) {
  using K = Modification::Kind;
  std::string out;
  for (const Modification& m : mods) {
    switch (m.kind) {
      case K::AddHeader:
        out += encode_addheader(m.name, header_value(m.value, leadspc));
        break;
      case K::ChangeHeader:
        out += encode_chgheader(m.index, m.name, header_value(m.value, leadspc));
        break;
      case K::InsertHeader:
        out += encode_insheader(m.index, m.name, header_value(m.value, leadspc));
        break;
      case K::AddRcpt:
        out += encode_addrcpt(m.address, m.args);
        break;
      case K::DelRcpt:
        out += encode_delrcpt(m.address);
        break;
      case K::ChangeFrom:
        out += encode_chgfrom(m.address, m.args);
        break;
      case K::Quarantine:
        out += encode_quarantine(m.text);
        break;
      case K::ReplaceBody:
        // An empty replacement is one empty chunk (the body becomes empty).
        if (m.body.empty()) out += encode_replbody({});
        for (std::size_t at = 0; at < m.body.size(); at += kChunkSize)
          out += encode_replbody(std::string_view(m.body).substr(at, kChunkSize));
        break;
    }
  }
  return out;
}

}  // namespace estafette::milter
