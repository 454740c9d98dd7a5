// replay_main.cc: runs a libFuzzer target over its stored corpus without libFuzzer, so that
// `make check` replays every corpus file (and every crash found earlier, once added there).
// Usage: <replay> DIR|FILE...   Exit 0 when every input ran (a crash aborts the process).
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int run_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return 1;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int inputs = 0, errors = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    struct stat st;
    if (::stat(arg.c_str(), &st) != 0) {
      std::fprintf(stderr, "replay: %s does not exist\n", arg.c_str());
      return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
      errors += run_file(arg);
      ++inputs;
      continue;
    }
    DIR* dir = ::opendir(arg.c_str());
    while (dirent* e = dir ? ::readdir(dir) : nullptr) {
      if (e->d_name[0] == '.') continue;
      errors += run_file(arg + "/" + e->d_name);
      ++inputs;
    }
    if (dir) ::closedir(dir);
  }
  std::printf("replayed %d inputs\n", inputs);
  return errors == 0 && inputs > 0 ? 0 : 1;
}
