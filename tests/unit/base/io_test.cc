// lib/base/io.h: whole writes and reads (a short file is EIO), and fsync_dir.
#include "lib/base/io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "lib/base/fd.h"

namespace estafette::base {
namespace {

TEST(BaseIo, WriteAllThenReadExact) {
  char path[] = "/tmp/estafette-io-XXXXXX";
  UniqueFd fd(::mkstemp(path));
  ASSERT_TRUE(fd);
  std::string big(300000, 'x');
  big[123456] = 'y';
  ASSERT_TRUE(write_all(fd.get(), big));
  std::string out;
  ASSERT_TRUE(read_exact(fd.get(), 123450, 10, out));
  EXPECT_EQ(out, "xxxxxxyxxx");
  ASSERT_TRUE(read_exact(fd.get(), 0, big.size(), out));
  EXPECT_EQ(out, big);
  errno = 0;
  EXPECT_FALSE(read_exact(fd.get(), big.size() - 5, 10, out));  // past the end
  EXPECT_EQ(errno, EIO);
  EXPECT_TRUE(read_exact(fd.get(), big.size(), 0, out));  // nothing asked, nothing read
  ::unlink(path);
}

TEST(BaseIo, Errors) {
  errno = 0;
  EXPECT_FALSE(write_all(-1, "x"));
  EXPECT_EQ(errno, EBADF);
  std::string out;
  EXPECT_FALSE(read_exact(-1, 0, 1, out));
  EXPECT_EQ(errno, EBADF);
  EXPECT_TRUE(fsync_dir("/tmp"));
  EXPECT_FALSE(fsync_dir("/nonexistent-estafette-dir"));
  EXPECT_EQ(errno, ENOENT);
}

}  // namespace
}  // namespace estafette::base
