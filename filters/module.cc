// module.cc: loading a filter module and checking its ABI.
#include "filters/module.h"

#include <estafette/filter.h>

#include <Poco/Exception.h>
#include <Poco/SharedLibrary.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "filters/native_filter.h"
#include "lib/base/crash_log.h"
#include "lib/base/fd.h"

namespace estafette::filters {

namespace {
// The size of the version-1 table: a module must provide at least this much.
constexpr std::size_t kFilterV1Size = offsetof(estafette_filter, fini) + sizeof(void (*)(void));
constexpr std::size_t kMaxChildText = 2048;  // what the child may tell us, per pipe

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

// What a child wrote, made one printable line (its stderr is untrusted text).
std::string one_line(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.remove_suffix(1);
  std::string out;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n')
      out += " / ";
    else if (u < 0x20 || u == 0x7f)
      out += ' ';
    else
      out += c;
  }
  return out;
}
}  // namespace

std::string Module::load_in_child(const std::string& path, const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout) {
  const std::string what = "module " + path + ": ";
  int result_pipe[2];
  int output_pipe[2];
  if (::pipe2(result_pipe, O_CLOEXEC) != 0)
    return what + "cannot check it in a child: pipe: " + std::strerror(errno);
  base::UniqueFd result_read(result_pipe[0]), result_write(result_pipe[1]);
  if (::pipe2(output_pipe, O_CLOEXEC) != 0)
    return what + "cannot check it in a child: pipe: " + std::strerror(errno);
  base::UniqueFd output_read(output_pipe[0]), output_write(output_pipe[1]);
  pid_t pid = ::fork();
  if (pid < 0) return what + "cannot check it in a child: fork: " + std::strerror(errno);
  if (pid == 0) {
    // The child: its stdout and stderr go to the parent; it never returns. A module's exit()
    // must not run the handlers and static destructors this process inherited (a test's temp
    // directory removal, the caller's files): on_exit() handlers run last-registered first, so
    // this one ends the child with exit()'s status before any of them.
    ::on_exit(
        [](int status, void*) {
          std::fflush(stdout);  // what the module printed, not ours (purged below)
          ::_exit(status);
        },
        nullptr);
    ::__fpurge(stdout);  // the caller's unwritten output is not the module's
    ::__fpurge(stderr);
    ::dup2(output_write.get(), STDOUT_FILENO);
    ::dup2(output_write.get(), STDERR_FILENO);
    try {
      auto module = load(path, args);
      // With our pid: a main() that forked (daemon()) has its child, not this one, get here.
      write_all(result_write.get(), "ok " + std::to_string(::getpid()));
      ::_exit(0);  // no fini, no dlclose, no atexit: nothing of the parent's is run
    } catch (const std::exception& e) {
      write_all(result_write.get(), e.what());
    }
    ::_exit(1);
  }
  result_write.reset();
  output_write.reset();
  std::string result, output;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  struct pollfd fds[2] = {{result_read.get(), POLLIN, 0}, {output_read.get(), POLLIN, 0}};
  std::string* texts[2] = {&result, &output};
  int open_pipes = 2;
  while (open_pipes > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[512];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fds[i].fd = -1;  // poll ignores it from now on
        --open_pipes;
        continue;
      }
      std::string& text = *texts[i];
      text.append(buf, std::min(static_cast<std::size_t>(got), kMaxChildText - text.size()));
    }
  }
  int status = 0;
  if (timed_out) ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string said = one_line(output);
  std::string tail = said.empty() ? "" : " (it wrote: " + said + ")";
  if (timed_out)
    return what + "did not finish loading within " + std::to_string(timeout.count()) + " ms" + tail;
  if (WIFSIGNALED(status))
    return what + "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ") while loading" + tail;
  const bool loaded = result == "ok " + std::to_string(pid);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && loaded) return "";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 1 && !result.empty() &&
      !result.starts_with("ok "))
    return one_line(result) + tail;  // load() refused it: its own reason
  return what + "exited with status " + std::to_string(WEXITSTATUS(status)) +
         " while loading (its init or main() called exit(); a libmilter filter's main() may "
         "want arguments: \"module:PATH ARG ...\")" +
         tail;
}

Module::Module(Private, std::string path) : path_(std::move(path)) {}

Module::~Module() {
  base::crash::remove_code_range(code_range_);
  if (table_ && table_->fini) table_->fini();
  table_ = nullptr;
  if (library_ && library_->isLoaded()) library_->unload();
}

std::shared_ptr<Module> Module::load(const std::string& path, const std::vector<std::string>& args,
                                     std::uint32_t host_flags) {
  auto m = std::make_shared<Module>(Private{}, path);
  const std::string what = "module " + path + ": ";
  m->library_ = std::make_unique<Poco::SharedLibrary>();
  try {
    // RTLD_LOCAL: two modules (each with its own copy of the libmilter shim) must not see each
    // other's symbols.
    m->library_->load(path, Poco::SharedLibrary::SHLIB_LOCAL);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error(what + "cannot load: " + e.displayText());
  }
  if (!m->library_->hasSymbol(ESTAFETTE_FILTER_INIT_SYMBOL))
    throw std::runtime_error(what + "no symbol " ESTAFETTE_FILTER_INIT_SYMBOL
                                    " (not an Estafette filter module)");
  auto init = reinterpret_cast<estafette_filter_init_fn>(
      m->library_->getSymbol(ESTAFETTE_FILTER_INIT_SYMBOL));
  m->host_ = std::make_unique<HostTable>(path, args, host_flags);
  const estafette_filter* table = init(&m->host_->host);
  if (!table) throw std::runtime_error(what + ESTAFETTE_FILTER_INIT_SYMBOL " refused to load");
  if (table->abi_version != ESTAFETTE_FILTER_ABI_VERSION)
    throw std::runtime_error(what + "ABI version " + std::to_string(table->abi_version) +
                             ", this esmtpd speaks " +
                             std::to_string(ESTAFETTE_FILTER_ABI_VERSION));
  if (table->struct_size < kFilterV1Size)
    throw std::runtime_error(what + "struct_size " + std::to_string(table->struct_size) +
                             " is smaller than the version-1 table (" +
                             std::to_string(kFilterV1Size) + ")");
  if (!table->name || !*table->name) throw std::runtime_error(what + "the filter has no name");
  m->table_ = table;
  m->name_ = table->name;
  // A crash whose instruction is in the module's code names it (lib/base/crash_log.h): the
  // shim's worker threads run module code outside any recorded callback.
  m->code_range_ =
      base::crash::add_code_range(reinterpret_cast<const void*>(init), "module " + m->name_);
  return m;
}

std::unique_ptr<Filter> Module::open(event::Loop& loop, DefaultAction default_action,
                                     ModuleTimeouts timeouts) {
  return std::make_unique<NativeFilter>(loop, shared_from_this(), *table_, name_, default_action,
                                        timeouts);
}

}  // namespace estafette::filters
