// estafette-bench: the testers' kit (issue 17). `sink` and `source` now; see
// estafette-bench(1).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "bench/kit/options.h"
#include "bench/kit/sink.h"
#include "bench/kit/source.h"

namespace {

constexpr const char* kUsage =
    "usage: estafette-bench sink --listen HOST:PORT [--fail \"451 4.3.0 text\"]\n"
    "                            [--record-ids FILE] [--tls-cert FILE --tls-key FILE] [--count N]\n"
    "       estafette-bench source --target HOST:PORT --messages N [--concurrency C]\n"
    "                            [--size BYTES] [--per-session K] [--pipelining on|off]\n"
    "                            [--starttls] [--tls-resume] [--tls-max 1.2|1.3]\n"
    "                            [--helo NAME] [--from A] [--to B]\n"
    "                            [--timeout SECONDS] [--handshake-only]\n";

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
