// listener_role.h: what an SMTP listener is for (RFC 5321 relay, RFC 6409 submission, RFC 8314
// implicit TLS submission), from the `listen` setting to the server session. Pure values; any
// thread.
#pragma once

#include <optional>
#include <string_view>

namespace estafette::smtp {

enum class ListenerRole {
  Mx,           // port 25: mail from anyone for our domains; STARTTLS offered when configured
  Submission,   // port 587: STARTTLS offered (AUTH: later)
  Submissions,  // port 465: TLS from the first byte, then as submission
};

constexpr std::string_view role_name(ListenerRole role) {
  switch (role) {
    case ListenerRole::Submission:
      return "submission";
    case ListenerRole::Submissions:
      return "submissions";
    case ListenerRole::Mx:
      break;
  }
  return "mx";
}

// "mx", "submission", "submissions" (exactly, lower-case), else nullopt.
constexpr std::optional<ListenerRole> role_from_name(std::string_view name) {
  for (auto role : {ListenerRole::Mx, ListenerRole::Submission, ListenerRole::Submissions})
    if (name == role_name(role)) return role;
  return std::nullopt;
}

}  // namespace estafette::smtp
