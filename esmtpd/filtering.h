// filtering.h: esmtpd's side of the filters (milters and in-process modules): the configured
// set, a chain per session, the macros they see and the pass over a whole message.
// Loop thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "filters/message_edit.h"
#include "filters/milter/client.h"
#include "filters/module.h"
#include "lib/config/config.h"
#include "lib/event/loop.h"
#include "lib/smtp/server_session.h"

namespace estafette::esmtpd {

class FilterSet final {
 public:
  // Checks every entry of config.filters; throws config::ConfigError naming its line.
  FilterSet(event::Loop& loop, const config::Config& config);
  // What the constructor checks (each milter spec parses, each module loads), for
  // `estafette check-config`: every error, "file:line: filters: reason", none when all is well.
  static std::vector<std::string> check(const config::Config& config);
  bool empty() const { return entries_.empty(); }
  // A fresh chain for one SMTP session (each milter gets its own connection).
  std::unique_ptr<milter::Chain> open_chain() const;

 private:
  struct Entry {
    milter::Options milter;                   // a milter, when module is null
    std::shared_ptr<filters::Module> module;  // an in-process module, loaded once
  };
  // Builds one entry; returns "" or the error naming the spec's line.
  static std::string load_entry(const config::Config& config, const config::FilterSpec& spec,
                                milter::DefaultAction default_action, Entry& out);

  event::Loop& loop_;
  milter::DefaultAction default_action_ = milter::DefaultAction::Tempfail;
  filters::ModuleTimeouts timeouts_;  // in-process modules: milter_command/content_timeout
  std::vector<Entry> entries_;
};

smtp::FilterVerdict to_session(const milter::Verdict& verdict);

// Header values as milters expect them (sendmail): continuation lines joined with LF, no CR.
std::string milter_header_value(const std::string& value);

// Sends the headers one at a time, then end of headers, the body and end of message; `done`
// gets the first verdict that is not Continue/Accept, or the end-of-message verdict with every
// modification. The message must stay alive until `done` runs (or the chain is destroyed).
void filter_message(milter::Chain& chain, std::shared_ptr<const filters::ParsedMessage> message,
                    milter::Macros macros, milter::Chain::EomCallback done);

}  // namespace estafette::esmtpd
