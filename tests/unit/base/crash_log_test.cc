// lib/base/crash_log.h: the crash line's format (a table), the per-thread context, code ranges,
// and the handler in a forked child that really crashes (a death test reading the log file).
#include "lib/base/crash_log.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cstdio>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace estafette::base::crash {
namespace {

std::string line_of(const LineParts& parts, std::size_t size = 512) {
  std::vector<char> buf(size);
  std::size_t n = format_line(parts, buf.data(), buf.size());
  return std::string(buf.data(), n);
}

TEST(CrashLine, Formats) {
  struct Case {
    LineParts parts;
    std::string want;
  };
  const std::string tail = "; the process ends, every session of it is cut\n";
  const std::vector<Case> cases = {
      {{1796630462, 345, 0, 123, "esmtpd", SIGSEGV, 0,
        "in filter session=123.4 module=m phase=rcpt"},
       "2026-12-07T08:01:02.345 [123] esmtpd: crash: SIGSEGV (address 0x0) in filter "
       "session=123.4 module=m phase=rcpt" +
           tail},
      // Local time across a day and a leap day; SIGABRT has no address.
      {{1709249400, 7, 3600, 9, "esmtpd", SIGABRT, std::nullopt, "on the loop thread"},
       "2024-03-01T00:30:00.007 [9] esmtpd: crash: SIGABRT on the loop thread" + tail},
      {{951870600, 0, -3600, 1, "x", 99, std::nullopt, "w"},
       "2000-02-29T23:30:00.000 [1] x: crash: signal 99 w" + tail},
      {{0, 999, 0, 4242, "esmtpd", SIGBUS, 0xdeadbeef, "on thread 7 (not the loop thread)"},
       "1970-01-01T00:00:00.999 [4242] esmtpd: crash: SIGBUS (address 0xdeadbeef) on thread 7 "
       "(not the loop thread)" +
           tail},
      // A module's name with a line end cannot start a line of its own.
      {{0, 0, 0, 1, "esmtpd", SIGFPE, 0x10, "in filter module=a\nb\x7f"},
       "1970-01-01T00:00:00.000 [1] esmtpd: crash: SIGFPE (address 0x10) in filter module=a?b?" +
           tail},
      {{0, 0, 0, 1, "esmtpd", SIGILL, 0x1, ""},
       "1970-01-01T00:00:00.000 [1] esmtpd: crash: SIGILL (address 0x1) " + tail},
  };
  for (const auto& c : cases) EXPECT_EQ(line_of(c.parts), c.want);
}

TEST(CrashLine, CutToTheBufferWithItsLineEnd) {
  const std::string long_where(1000, 'x');  // LineParts only views it
  LineParts parts{1796630462, 0, 0, 1, "esmtpd", SIGSEGV, 0, long_where};
  for (std::size_t size : {1u, 2u, 30u, 200u}) {
    std::string line = line_of(parts, size);
    EXPECT_EQ(line.size(), size);
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), size - 1);
  }
  char none = 'z';
  EXPECT_EQ(format_line(parts, &none, 0), 0u);
  EXPECT_EQ(none, 'z');
}

TEST(CrashContext, NestsAndIsPerThread) {
  EXPECT_EQ(current_context(), "");
  {
    Context outer({"filter session=", "1.2", " module=", "m", " phase=", "helo"});
    EXPECT_EQ(current_context(), "filter session=1.2 module=m phase=helo");
    {
      Context inner({"inner"});
      EXPECT_EQ(current_context(), "inner");
      std::string other = "unset";
      std::thread([&] { other = std::string(current_context()); }).join();
      EXPECT_EQ(other, "");
    }
    EXPECT_EQ(current_context(), "filter session=1.2 module=m phase=helo");
  }
  EXPECT_EQ(current_context(), "");
  Context big({std::string(300, 'y')});
  EXPECT_EQ(current_context().size(), Context::kMaxText);
}

void a_function_of_this_program() {}

TEST(CrashCodeRange, NamesTheObjectThatHoldsAnAddress) {
  auto address = reinterpret_cast<const void*>(&a_function_of_this_program);
  int slot = add_code_range(address, "module test");
  ASSERT_GE(slot, 0);
  ASSERT_NE(code_owner(reinterpret_cast<std::uintptr_t>(address)), nullptr);
  EXPECT_STREQ(code_owner(reinterpret_cast<std::uintptr_t>(address)), "module test");
  EXPECT_EQ(code_owner(0), nullptr);
  remove_code_range(slot);
  EXPECT_EQ(code_owner(reinterpret_cast<std::uintptr_t>(address)), nullptr);
  EXPECT_EQ(add_code_range(reinterpret_cast<const void*>(0x10), "nothing"), -1);
  remove_code_range(-1);  // harmless
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The handler for real, in the death test's child: a context, a fault, the line in the file,
// and the process dies of the signal.
TEST(CrashHandlerDeathTest, LogsTheContextAndDiesOfTheSignal) {
  char dir_template[] = "/tmp/estafette-unit-crash-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string log = std::string(dir_template) + "/crash.log";
  // The fault is a store into a PROT_NONE page, not through a null pointer: UBSan (the
  // sanitizer build) stops at a null store before the kernel's SIGSEGV would reach the handler.
  void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  EXPECT_EXIT(
      {
        install("esmtpd", log);
        Context c({"filter session=", "7.1", " module=", "m", " phase=", "rcpt"});
        *static_cast<volatile int*>(page) = 1;
      },
      ::testing::KilledBySignal(SIGSEGV), "");
  char address[32];
  std::snprintf(address, sizeof address, "(address %p)", page);
  std::string text = read_file(log);
  EXPECT_NE(text.find(std::string("] esmtpd: crash: SIGSEGV ") + address +
                      " in filter session=7.1 module=m phase=rcpt; the process ends"),
            std::string::npos)
      << text;
  ::munmap(page, 4096);
  // abort() outside a context, on the thread that installed: the loop thread.
  EXPECT_EXIT(
      {
        install("esmtpd", log);
        ::abort();
      },
      ::testing::KilledBySignal(SIGABRT), "");
  text = read_file(log);
  EXPECT_NE(text.find("esmtpd: crash: SIGABRT on the loop thread, not in a filter callback;"),
            std::string::npos)
      << text;
  // Another thread.
  EXPECT_EXIT(
      {
        install("esmtpd", log);
        std::thread([] { ::raise(SIGBUS); }).join();
      },
      ::testing::KilledBySignal(SIGBUS), "");
  text = read_file(log);
  EXPECT_NE(text.find("(not the loop thread); the process ends"), std::string::npos) << text;
  ::unlink(log.c_str());
  ::rmdir(dir_template);
}

}  // namespace
}  // namespace estafette::base::crash
