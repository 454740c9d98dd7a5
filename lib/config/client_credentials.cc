#include "lib/config/client_credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/base/fd.h"
#include "lib/config/config.h"
#include "lib/smtp/address.h"

namespace estafette::config {

namespace {
constexpr std::size_t kMaxFile = 1 << 20;
}  // namespace

const Credentials* CredentialTable::find(const std::string& destination_key) const {
  auto it = entries.find(destination_key);
  return it == entries.end() ? nullptr : &it->second;
}

CredentialTable parse_client_credentials(const std::string& text, const std::string& name) {
  CredentialTable table;
  for_each_line(text, name, [&](const std::string& where, std::string_view line) {
    auto fail = [&](const std::string& why) { throw ConfigError(where + ": " + why); };
    line = trim(line);
    auto sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos) fail("expected 'destination user password'");
    std::string dest(line.substr(0, sp));
    std::string_view rest = trim(line.substr(sp));
    auto sp2 = rest.find_first_of(" \t");
    if (sp2 == std::string_view::npos) fail("expected 'destination user password'");
    Credentials c{std::string(rest.substr(0, sp2)), std::string(trim(rest.substr(sp2)))};
    std::string key;
    if (dest[0] == '[' || dest.find(':') != std::string::npos) {
      auto hp = parse_host_port(dest, 25);
      if (!hp) fail("bad destination '" + dest + "' (expected [host]:port, host:port or a domain)");
      key = smtp::to_lower(hp->to_string());
    } else {
      key = smtp::to_lower(dest);
    }
    if (!table.entries.emplace(key, std::move(c)).second)
      fail("duplicate destination '" + key + "'");
  });
  return table;
}

CredentialTable load_client_credentials(const std::string& path) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) throw ConfigError(path + ": " + base::errno_text(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw ConfigError(path + ": " + base::errno_text(errno));
  if (!S_ISREG(st.st_mode)) throw ConfigError(path + ": not a regular file");
  if (st.st_uid != 0 && st.st_uid != ::geteuid())
    throw ConfigError(path + ": owned by uid " + std::to_string(st.st_uid) +
                      ", not by root: it holds passwords");
  if ((st.st_mode & 077) != 0)
    throw ConfigError(path + ": group or others may access it (chmod 600): it holds passwords");
  if (static_cast<std::size_t>(st.st_size) > kMaxFile)
    throw ConfigError(path + ": larger than 1 MiB");
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConfigError(path + ": " + base::errno_text(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return parse_client_credentials(text, path);
}

}  // namespace estafette::config
