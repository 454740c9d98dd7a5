// tests/unit/pch.h: precompiled for every unit test file (tests/local.am puts `-include
// tests/unit/pch.h` first on their command line): GoogleTest and the standard headers most of
// them include, parsed once per build instead of in each of about 150 files. Only third-party
// headers: a change to the project's own headers must not rebuild every test.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>
