// estafette-bench: the testers' kit (issue 17); see estafette-bench(1). `sink` and `source` are
// the C++ load tools; `loopback`, `relay` and `report` start and stop whole setups (MTAs, DNS
// and IDENT fixtures, these tools) and are Python (bench/kit/orchestrate), run from here.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "bench/kit/options.h"
#include "bench/kit/sink.h"
#include "bench/kit/source.h"
#include "config.h"
#include "lib/base/paths.h"

namespace {

constexpr const char* kUsage =
    "usage: estafette-bench sink --listen HOST:PORT [--fail \"451 4.3.0 text\"]\n"
    "                            [--record-ids FILE] [--tls-cert FILE --tls-key FILE] [--count N]\n"
    "                            [--record-times FILE] [--stats FILE] [--stats-interval MS]\n"
    "       estafette-bench source --target HOST:PORT --messages N [--concurrency C]\n"
    "                            [--size BYTES] [--per-session K] [--rate PER_SECOND]\n"
    "                            [--pipelining on|off] [--starttls] [--tls-resume]\n"
    "                            [--tls-max 1.2|1.3] [--helo NAME] [--from A] [--to B]\n"
    "                            [--hosts H] [--timeout SECONDS] [--handshake-only]\n"
    "                            [--record-sends FILE] [--stats FILE] [--stats-interval MS]\n"
    "       estafette-bench loopback|relay|report [OPTIONS]   (--help for each)\n";

// Where the orchestration's main.py is: $ESTAFETTE_BENCH_DIR, the installed copy, or (run from
// the build tree) the source tree's.
std::string orchestration_dir() {
  if (const char* dir = std::getenv("ESTAFETTE_BENCH_DIR"); dir && *dir) return dir;
  if (estafette::base::running_installed()) return ESTAFETTE_BENCHDIR;
  return std::string(ESTAFETTE_SRCDIR) + "/bench/kit/orchestrate";
}

// Replaces this process with `python3 main.py COMMAND --bindir D --sbindir D ARGS...`: the
// directories of the programs it starts (the build tree's top, or the installed bindir/sbindir).
[[noreturn]] void run_orchestration(const std::string& command,
                                    const std::vector<std::string>& args) {
  using estafette::base::program_path;
  std::string self = program_path("estafette-bench");
  std::string bindir = self.substr(0, self.rfind('/'));
  std::string sbindir = estafette::base::running_installed() ? ESTAFETTE_SBINDIR : bindir;
  std::string main_py = orchestration_dir() + "/main.py";
  std::vector<std::string> argv = {"python3",  "-B",   main_py,     command,
                                   "--bindir", bindir, "--sbindir", sbindir};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  ::execvp("python3", cargv.data());
  std::fprintf(stderr, "estafette-bench: cannot run python3 %s: %s\n", main_py.c_str(),
               std::strerror(errno));
  std::exit(127);
}

int run(const std::string& command, const std::vector<std::string>& args) {
  using namespace estafette::bench;
  if (command == "sink") {
    Sink sink(parse_sink_options(args));
    std::fprintf(stderr, "estafette-bench sink: listening on port %u\n", sink.port());
    sink.run();
    std::printf("%s\n", sink.summary().c_str());
    return 0;
  }
  if (command == "source") {
    Source source(parse_source_options(args));
    source.run();
    std::printf("%s\n", source.summary().c_str());
    if (!source.counts().first_error.empty()) {
      std::fprintf(stderr, "estafette-bench source: first failure: %s\n",
                   source.counts().first_error.c_str());
    }
    return source.counts().failed == 0 ? 0 : 1;
  }
  if (command == "loopback" || command == "relay" || command == "report")
    run_orchestration(command, args);
  throw UsageError("unknown command \"" + command + "\"");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + (argc > 2 ? 2 : argc), argv + argc);
  std::string command = argc > 1 ? argv[1] : "";
  if (command == "-h" || command == "--help" || command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  try {
    return run(command, args);
  } catch (const estafette::bench::UsageError& e) {
    std::fprintf(stderr, "estafette-bench: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "estafette-bench: %s\n", e.what());
    return 1;
  }
}
