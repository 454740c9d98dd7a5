// memory_files.h: a routing::FileReader over an in-memory file system, for the routing tests.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "lib/routing/aliases.h"

namespace estafette::routing {

// Reads `files` (absolute path -> text), each owned by `owner`; any other path cannot be opened.
inline FileReader memory(std::map<std::string, std::string> files, uid_t owner = 0) {
  return [files, owner](const std::string& path, std::string* error) -> std::optional<FileContent> {
    auto it = files.find(path);
    if (it == files.end()) {
      *error = "cannot open: No such file or directory";
      return std::nullopt;
    }
    return FileContent{it->second, owner};
  };
}

}  // namespace estafette::routing
