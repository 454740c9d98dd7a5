// base::close_fds_from and its /proc fallback: in a forked child, every fd from the first one
// up is closed except those kept; fds below it stay open.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "lib/base/fd.h"

namespace estafette::base {
namespace {

using Closer = void (*)(int, std::span<const int>) noexcept;

// Opens fds in a child, closes from the second one up keeping the fourth, and exits 0 when
// exactly the expected ones are open.
int closes_in_child(Closer closer) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<int> fds;
    for (int i = 0; i < 3; ++i) {
      int p[2];
      if (::pipe(p) != 0) ::_exit(10);  // inheritable on purpose
      fds.push_back(p[0]);
      fds.push_back(p[1]);
    }
    const int keep[] = {fds[3]};
    closer(fds[1], std::span<const int>(keep));
    for (std::size_t i = 0; i < fds.size(); ++i) {
      bool open = ::fcntl(fds[i], F_GETFD) >= 0;
      bool want = i == 0 || i == 3;
      if (open != want) ::_exit(20 + static_cast<int>(i));
    }
    if (::fcntl(2, F_GETFD) < 0) ::_exit(30);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CloseFds, ClosesAllButTheKeptOnes) {
  EXPECT_EQ(closes_in_child(&close_fds_from), 0);
}

TEST(CloseFds, ProcFallbackClosesAllButTheKeptOnes) {
  EXPECT_EQ(closes_in_child(&close_fds_from_by_listing), 0);
}

}  // namespace
}  // namespace estafette::base
