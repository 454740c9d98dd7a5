// split_feeder.h: test helper for incremental parsers: all the ways a test input is cut into
// chunks (whole, two pieces at every byte position, byte by byte, and three pieces at every
// pair of positions for short inputs). Header-only, tests only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace estafette::smtp::testing {

struct Split {
  std::string name;  // for failure messages, e.g. "at 3" or "bytes"
  std::vector<std::string_view> chunks;
};

inline std::vector<Split> all_splits(std::string_view input, std::size_t three_way_limit = 40) {
  std::vector<Split> out;
  out.push_back({"whole", {input}});
  for (std::size_t i = 0; i <= input.size(); ++i) {
    out.push_back({"at " + std::to_string(i), {input.substr(0, i), input.substr(i)}});
  }
  Split bytes{"bytes", {}};
  for (std::size_t i = 0; i < input.size(); ++i) bytes.chunks.push_back(input.substr(i, 1));
  out.push_back(bytes);
  if (input.size() <= three_way_limit) {
    for (std::size_t i = 1; i < input.size(); ++i) {
      for (std::size_t j = i + 1; j < input.size(); ++j) {
        out.push_back({"at " + std::to_string(i) + "," + std::to_string(j),
                       {input.substr(0, i), input.substr(i, j - i), input.substr(j)}});
      }
    }
  }
  return out;
}

}  // namespace estafette::smtp::testing
