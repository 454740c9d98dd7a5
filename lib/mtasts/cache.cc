#include "lib/mtasts/cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "lib/base/fd.h"

namespace estafette::mtasts {
namespace {

constexpr std::string_view kMagic = "estafette-mta-sts 1\n";

// "key: value\n" at the start of text, consumed; nullopt when the line is not that key.
std::optional<std::string_view> header(std::string_view& text, std::string_view key) {
  std::size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  std::string_view line = text.substr(0, nl);
  if (!line.starts_with(key) || line.substr(key.size(), 2) != ": ") return std::nullopt;
  text.remove_prefix(nl + 1);
  return line.substr(key.size() + 2);
}

bool is_temporary(std::string_view name) {
  return name.starts_with(".");
}

}  // namespace

std::string format_entry(const CachedPolicy& entry) {
  std::string out(kMagic);
  out += "domain: " + entry.domain + "\n";
  out += "id: " + entry.id + "\n";
  out += "fetched: " + std::to_string(entry.fetched) + "\n\n";
  out += format_policy(entry.policy);
  return out;
}

std::optional<CachedPolicy> parse_entry(std::string_view text, const std::string& domain,
                                        std::string* why) {
  auto bad = [&](const std::string& reason) -> std::optional<CachedPolicy> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (text.size() > kMaxFileSize) return bad("larger than " + std::to_string(kMaxFileSize));
  if (!text.starts_with(kMagic)) return bad("not an estafette MTA-STS cache file");
  text.remove_prefix(kMagic.size());
  CachedPolicy e;
  auto d = header(text, "domain");
  if (!d || *d != domain) return bad("not the policy of " + domain);
  e.domain = domain;
  auto id = header(text, "id");
  if (!id || !parse_txt_record("v=STSv1; id=" + std::string(*id)).ok) return bad("bad id line");
  e.id = *id;
  auto fetched = header(text, "fetched");
  if (!fetched) return bad("no fetched line");
  auto [end, ec] = std::from_chars(fetched->data(), fetched->data() + fetched->size(), e.fetched);
  if (ec != std::errc() || end != fetched->data() + fetched->size() || e.fetched < 0)
    return bad("bad fetched line");
  if (!text.starts_with("\n")) return bad("no blank line after the header");
  text.remove_prefix(1);
  auto parsed = parse_policy(text);
  if (!parsed.ok) return bad("policy: " + parsed.reason);
  e.policy = std::move(parsed.policy);
  return e;
}

PolicyCache::PolicyCache(std::string dir, std::size_t max_entries)
    : dir_(std::move(dir)), max_entries_(max_entries) {}

std::optional<CachedPolicy> PolicyCache::load(const std::string& domain, std::string* why) const {
  if (why) why->clear();
  base::UniqueFd fd(
      ::open(path_of(domain).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    if (errno != ENOENT && why) *why = path_of(domain) + ": " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    if (why) *why = path_of(domain) + ": not a regular file";
    return std::nullopt;
  }
  if (st.st_size > static_cast<off_t>(kMaxFileSize)) {
    if (why) *why = path_of(domain) + ": larger than " + std::to_string(kMaxFileSize) + " bytes";
    return std::nullopt;
  }
  std::string text(kMaxFileSize + 1, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (why) *why = path_of(domain) + ": " + std::strerror(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  std::string reason;
  auto entry = parse_entry(text, domain, &reason);
  if (!entry && why) *why = path_of(domain) + ": " + reason;
  return entry;
}

bool PolicyCache::store(const CachedPolicy& entry, std::string* why) {
  auto fail = [&](const std::string& what) {
    if (why) *why = what + ": " + std::strerror(errno);
    return false;
  };
  auto domain = normalize_domain(entry.domain);
  if (!domain || *domain != entry.domain) {
    if (why) *why = "not a domain name: " + entry.domain;
    return false;
  }
  std::string text = format_entry(entry);
  std::random_device random;
  std::string tmp = dir_ + "/." + entry.domain + "." + std::to_string(::getpid()) + "." +
                    std::to_string(random()) + ".tmp";
  auto open_tmp = [&] {
    return base::UniqueFd(
        ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  };
  base::UniqueFd fd = open_tmp();
  // A daemon run alone (no estafetted made the directory): its own, in a parent that exists.
  if (!fd && errno == ENOENT && ::mkdir(dir_.c_str(), 0700) == 0) fd = open_tmp();
  if (!fd) return fail(tmp);
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(fd.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      bool ok = fail(tmp);
      ::unlink(tmp.c_str());
      return ok;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  fd.reset();
  if (::rename(tmp.c_str(), path_of(entry.domain).c_str()) != 0) {
    bool ok = fail(path_of(entry.domain));
    ::unlink(tmp.c_str());
    return ok;
  }
  trim(entry.domain);
  return true;
}

// Over max_entries: expired policies go first, then the oldest files; `keep` (just written)
// stays. A leftover temporary file of a process that died while writing goes after an hour.
void PolicyCache::trim(const std::string& keep) {
  DIR* dir = ::opendir(dir_.c_str());
  if (!dir) return;
  struct File {
    std::string name;
    std::time_t mtime;
    bool expired;
  };
  std::vector<File> files;
  std::time_t now = std::time(nullptr);
  while (dirent* d = ::readdir(dir)) {
    std::string name = d->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::fstatat(::dirfd(dir), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (is_temporary(name)) {
      if (now - st.st_mtime > 3600) ::unlinkat(::dirfd(dir), name.c_str(), 0);
      continue;
    }
    if (name != keep) files.push_back({name, st.st_mtime, false});
  }
  ::closedir(dir);
  if (files.size() + 1 <= max_entries_) return;
  for (auto& f : files) {
    auto e = load(f.name, nullptr);
    f.expired = !e || e->expires() <= now;
  }
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) {
    if (a.expired != b.expired) return a.expired;
    return a.mtime < b.mtime;
  });
  std::size_t excess = files.size() + 1 - max_entries_;
  for (std::size_t i = 0; i < excess && i < files.size(); ++i)
    ::unlink((dir_ + "/" + files[i].name).c_str());
}

}  // namespace estafette::mtasts
