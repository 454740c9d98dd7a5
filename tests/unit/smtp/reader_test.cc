#include "lib/smtp/reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/smtp/split_feeder.h"

namespace estafette::smtp {
namespace {

using testing::all_splits;

// ---------------------------------------------------------------------------------------------
// CommandReader

struct ExpectedLine {
  std::string text;
  LineStatus status = LineStatus::Ok;
  bool operator==(const ExpectedLine&) const = default;
};

std::ostream& operator<<(std::ostream& os, const ExpectedLine& l) {
  return os << "{\"" << l.text << "\", " << static_cast<int>(l.status) << "}";
}

struct CommandReaderCase {
  std::string name;
  std::string input;
  std::vector<ExpectedLine> lines;
  bool partial = false;  // a partial line remains buffered at the end
  std::size_t max_line = kDefaultMaxCommandLine;
};

std::string PrintCase(const ::testing::TestParamInfo<CommandReaderCase>& info) {
  return info.param.name;
}

void PrintTo(const CommandReaderCase& c, std::ostream* os) {
  *os << c.name;
}

class SmtpCommandReader : public ::testing::TestWithParam<CommandReaderCase> {};

TEST_P(SmtpCommandReader, SameLinesWhateverTheSplit) {
  const CommandReaderCase& c = GetParam();
  for (const auto& split : all_splits(c.input)) {
    SCOPED_TRACE(split.name);
    CommandReader reader(c.max_line);
    std::vector<ExpectedLine> lines;
    for (std::string_view chunk : split.chunks) {
      while (!chunk.empty()) {
        Line line;
        auto result = reader.feed(chunk, line);
        ASSERT_GT(result.consumed, 0u);
        ASSERT_LE(result.consumed, chunk.size());
        // A line is only reported when its ending was the last byte consumed.
        if (result.line_ready) {
          ASSERT_EQ(chunk[result.consumed - 1], '\n');
        }
        chunk.remove_prefix(result.consumed);
        if (result.line_ready) lines.push_back({line.text, line.status});
      }
    }
    EXPECT_EQ(lines, c.lines);
    EXPECT_EQ(reader.has_partial(), c.partial);
  }
}

const std::string kLong2046(2046, 'x');
const std::string kLong2047(2047, 'x');

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpCommandReader,
    ::testing::Values(
        CommandReaderCase{"Empty", "", {}},
        CommandReaderCase{"OneLine", "EHLO x\r\n", {{"EHLO x"}}},
        CommandReaderCase{"EmptyLine", "\r\n", {{""}}},
        CommandReaderCase{"Pipelined",
                          "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
                          {{"MAIL FROM:<a@b>"}, {"RCPT TO:<c@d>"}, {"DATA"}}},
        CommandReaderCase{"PartialAtEnd", "NOOP\r\nQUI", {{"NOOP"}}, true},
        CommandReaderCase{"PendingCrAtEnd", "NOOP\r", {}, true},
        CommandReaderCase{"BareLfEndsLine",
                          "EHLO x\nQUIT\r\n",
                          {{"EHLO x", LineStatus::BareLineEnding}, {"QUIT"}}},
        CommandReaderCase{"BareCrInside",
                          "EHLO x\ry\r\nQUIT\r\n",
                          {{"EHLO x\ry", LineStatus::BareLineEnding}, {"QUIT"}}},
        CommandReaderCase{"CrCrLf", "NOOP\r\r\n", {{"NOOP\r", LineStatus::BareLineEnding}}},
        CommandReaderCase{
            "LfLf", "\n\n", {{"", LineStatus::BareLineEnding}, {"", LineStatus::BareLineEnding}}},
        CommandReaderCase{"CrThenBareLf", "A\r\rB\n", {{"A\r\rB", LineStatus::BareLineEnding}}},
        CommandReaderCase{"NulKept", std::string("A\0B\r\n", 5), {{std::string("A\0B", 3)}}},
        CommandReaderCase{"ExactlyMax", "12345678\r\n", {{"12345678"}}, false, 10},
        CommandReaderCase{"OneOverMax",
                          "123456789\r\nNOOP\r\n",
                          {{"", LineStatus::TooLong}, {"NOOP"}},
                          false,
                          10},
        CommandReaderCase{"WayOverMax",
                          std::string(50, 'z') + "\r\nQUIT\r\n",
                          {{"", LineStatus::TooLong}, {"QUIT"}},
                          false,
                          10},
        CommandReaderCase{
            "TooLongWinsOverBare", "1234\r56789\r\n", {{"", LineStatus::TooLong}}, false, 10},
        CommandReaderCase{"BareThenTooLong",
                          "1\n123456789012\r\n",
                          {{"1", LineStatus::BareLineEnding}, {"", LineStatus::TooLong}},
                          false,
                          10},
        CommandReaderCase{"TooLongPartial", std::string(12, 'y'), {}, true, 10},
        CommandReaderCase{"DefaultMaxOk", kLong2046 + "\r\n", {{kLong2046}}},
        CommandReaderCase{"DefaultMaxTooLong",
                          kLong2047 + "\r\nNOOP\r\n",
                          {{"", LineStatus::TooLong}, {"NOOP"}}}),
    PrintCase);

TEST(SmtpDataReaderApi, RefuseStopsTheSinkAndReadsToTheEnd) {
  std::string message;
  DataReader* self = nullptr;
  DataReader reader(
      [&](std::string_view piece) {
        message.append(piece);
        self->refuse(DataStatus::NoStorage);  // e.g. over the memory budget
      },
      1000);
  self = &reader;
  EXPECT_EQ(reader.feed("abc\r\n"), 5u);
  EXPECT_EQ(reader.feed("def\r\n.\r\nQUIT\r\n"), 8u);
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.status(), DataStatus::NoStorage);
  EXPECT_EQ(message, "abc\r\n");
  reader.reset();
  EXPECT_EQ(reader.status(), DataStatus::Ok);
}

TEST(SmtpCommandReaderApi, StopsAfterEachLine) {
  CommandReader reader;
  Line line;
  std::string_view input = "DATA\r\nSubject: x\r\n";
  auto result = reader.feed(input, line);
  EXPECT_TRUE(result.line_ready);
  EXPECT_EQ(result.consumed, 6u);
  EXPECT_EQ(line.text, "DATA");
  EXPECT_EQ(line.status, LineStatus::Ok);
  EXPECT_FALSE(reader.has_partial());
}

// ---------------------------------------------------------------------------------------------
// DataReader

struct DataReaderCase {
  std::string name;
  std::string input;
  bool done;
  std::string message;  // bytes passed to the sink
  DataStatus status = DataStatus::Ok;
  std::string rest = {};                 // bytes left after the end (pipelined commands)
  std::size_t size = std::string::npos;  // npos: message.size()
  std::size_t max_size = 1000;
  std::size_t max_line = kDefaultMaxDataLine;
  HeaderLimits headers = {};
};

std::string PrintDataCase(const ::testing::TestParamInfo<DataReaderCase>& info) {
  return info.param.name;
}

void PrintTo(const DataReaderCase& c, std::ostream* os) {
  *os << c.name;
}

class SmtpDataReader : public ::testing::TestWithParam<DataReaderCase> {};

TEST_P(SmtpDataReader, SameResultWhateverTheSplit) {
  const DataReaderCase& c = GetParam();
  const std::size_t expected_size = c.size == std::string::npos ? c.message.size() : c.size;
  for (const auto& split : all_splits(c.input)) {
    SCOPED_TRACE(split.name);
    std::string message;
    DataReader reader([&](std::string_view piece) { message.append(piece); }, c.max_size,
                      c.max_line, c.headers);
    std::size_t consumed = 0;
    for (std::string_view chunk : split.chunks) {
      std::size_t n = reader.feed(chunk);
      ASSERT_LE(n, chunk.size());
      consumed += n;
      if (n < chunk.size()) {
        ASSERT_TRUE(reader.done());
        break;
      }
    }
    EXPECT_EQ(reader.done(), c.done);
    EXPECT_EQ(message, c.message);
    EXPECT_EQ(reader.status(), c.status);
    EXPECT_EQ(reader.size(), expected_size);
    EXPECT_EQ(std::string_view(c.input).substr(consumed), c.rest);
    if (reader.done()) {
      EXPECT_EQ(reader.feed("more"), 0u);
    }
  }
}

const std::string kBody1000(998, 'b');

INSTANTIATE_TEST_SUITE_P(
    SmtpTable, SmtpDataReader,
    ::testing::Values(
        DataReaderCase{"EmptyMessage", ".\r\n", true, ""},
        DataReaderCase{"Simple", "Subject: hi\r\n\r\nbody\r\n.\r\n", true,
                       "Subject: hi\r\n\r\nbody\r\n"},
        DataReaderCase{"PipelinedAfter", "a\r\n.\r\nQUIT\r\n", true, "a\r\n", DataStatus::Ok,
                       "QUIT\r\n"},
        DataReaderCase{"NotDoneYet", "a\r\nb\r\n.\r", false, "a\r\nb\r\n"},
        DataReaderCase{"NotDoneDot", "a\r\n.", false, "a\r\n"},
        DataReaderCase{"DotStuffedKept", "..\r\n.x\r\n...\r\n.\r\n", true, "..\r\n.x\r\n...\r\n"},
        DataReaderCase{"DotInsideLine", "a.\r\nb.c\r\n.\r\n", true, "a.\r\nb.c\r\n"},
        DataReaderCase{"DotSpaceIsNotEnd", ". \r\n.\r\n", true, ". \r\n"},
        DataReaderCase{"EmptyLines", "\r\n\r\n.\r\n", true, "\r\n\r\n"},
        DataReaderCase{"NoFinalLine", "abc.\r\n", false, "abc.\r\n"},
        // SMTP smuggling: only CRLF.CRLF ends the data.
        DataReaderCase{"SmuggleLfDotLf", "a\n.\nMAIL FROM:<x@y>\r\n.\r\nQUIT\r\n", true, "a",
                       DataStatus::BareLineEnding, "QUIT\r\n", 21},
        DataReaderCase{"SmuggleLfDotCrLf", "a\n.\r\nRCPT\r\n.\r\n", true, "a",
                       DataStatus::BareLineEnding, "", 11},
        DataReaderCase{"SmuggleCrLfDotLf", "a\r\n.\nx\r\n.\r\n", true, "a\r\n.",
                       DataStatus::BareLineEnding, "", 8},
        DataReaderCase{"SmuggleCrDotCr", "a\r.\rx\r\n.\r\n", true, "a\r",
                       DataStatus::BareLineEnding, "", 7},
        DataReaderCase{"SmuggleCrLfDotCr", "a\r\n.\rX\r\n.\r\n", true, "a\r\n.\r",
                       DataStatus::BareLineEnding, "", 8},
        DataReaderCase{"SmuggleCrDotCrLf", "a\r.\r\nb\r\n.\r\n", true, "a\r",
                       DataStatus::BareLineEnding, "", 8},
        DataReaderCase{"BareLfAtStart", "\n.\r\n.\r\n", true, "", DataStatus::BareLineEnding, "",
                       4},
        DataReaderCase{"BareCrBeforeEnd", "x\r\r\n.\r\n", true, "x\r", DataStatus::BareLineEnding,
                       "", 4},
        DataReaderCase{"DotCrCrLf", ".\r\r\n.\r\n", true, ".\r", DataStatus::BareLineEnding, "", 4},
        // Size limit: exactly max_size is fine, one more byte is TooBig (the end is still found).
        DataReaderCase{"ExactlyMaxSize", "1234567\r\n.\r\n", true, "1234567\r\n", DataStatus::Ok,
                       "", std::string::npos, 9},
        DataReaderCase{"OverMaxSize", "12345678\r\n.\r\nNOOP\r\n", true, "12345678\r",
                       DataStatus::TooBig, "NOOP\r\n", 10, 9},
        DataReaderCase{"WayOverMaxSize",
                       std::string(100, 'q') + "\r\n" + std::string(50, 'r') + "\r\n.\r\n", true,
                       std::string(9, 'q'), DataStatus::TooBig, "", 154, 9},
        // Line limit (including CRLF).
        DataReaderCase{"LineExactlyMax", "12345678\r\n.\r\n", true, "12345678\r\n", DataStatus::Ok,
                       "", std::string::npos, 1000, 10},
        DataReaderCase{"LineOverMax", "ab\r\n123456789\r\nxy\r\n.\r\n", true, "ab\r\n123456789\r",
                       DataStatus::LineTooLong, "", 19, 1000, 10},
        DataReaderCase{"LongRunOverLineMax", "ab\r\n" + std::string(20, 'z') + "\r\n.\r\n", true,
                       "ab\r\n" + std::string(10, 'z'), DataStatus::LineTooLong, "", 26, 1000, 10},
        DataReaderCase{"StuffedLineCountsDot", "..2345678\r\n.\r\n", true, "..2345678\r",
                       DataStatus::LineTooLong, "", 11, 1000, 10},
        DataReaderCase{"RfcLineLimit", kBody1000 + "\r\n.\r\n", true, kBody1000 + "\r\n",
                       DataStatus::Ok, "", std::string::npos, 2000, 1000},
        // NUL anywhere in the message (header or body) is refused; the end is still found.
        DataReaderCase{"NulInBody", std::string("a\r\nb\0c\r\n.\r\nNOOP\r\n", 17), true, "a\r\nb",
                       DataStatus::Nul, "NOOP\r\n", 8},
        DataReaderCase{"NulAtLineStart", std::string("\0x\r\n.\r\n", 7), true, "", DataStatus::Nul,
                       "", 4},
        DataReaderCase{"NulInHeaderValue",
                       std::string("A: b\0c\r\n\r\n.\r\n", 13),
                       true,
                       "A: b",
                       DataStatus::Nul,
                       "",
                       10,
                       1000,
                       kDefaultMaxDataLine,
                       {10, 100}},
        // Header limits: counted as the bytes arrive, the field past the count is refused at
        // its colon; continuation lines belong to their field; the body is not counted.
        DataReaderCase{"HeaderCountExact",
                       "A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n.\r\n",
                       true,
                       "A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n",
                       DataStatus::Ok,
                       "",
                       std::string::npos,
                       1000,
                       kDefaultMaxDataLine,
                       {3, 0}},
        DataReaderCase{"HeaderCountOver",
                       "A: 1\r\nB: 2\r\nC: 3\r\n\r\nbody\r\n.\r\n",
                       true,
                       "A: 1\r\nB: 2\r\nC",
                       DataStatus::TooManyHeaders,
                       "",
                       26,
                       1000,
                       kDefaultMaxDataLine,
                       {2, 0}},
        DataReaderCase{"BodyFieldsNotCounted",
                       "A: 1\r\n 2\r\n\r\nB: x\r\nC: y\r\n.\r\n",
                       true,
                       "A: 1\r\n 2\r\n\r\nB: x\r\nC: y\r\n",
                       DataStatus::Ok,
                       "",
                       std::string::npos,
                       1000,
                       kDefaultMaxDataLine,
                       {1, 0}},
        DataReaderCase{"NonFieldLineStartsBody",
                       "A: 1\r\nno field\r\nB: 2\r\n.\r\n",
                       true,
                       "A: 1\r\nno field\r\nB: 2\r\n",
                       DataStatus::Ok,
                       "",
                       std::string::npos,
                       1000,
                       kDefaultMaxDataLine,
                       {1, 0}},
        DataReaderCase{"HeaderFieldExact",
                       "A: 12\r\n 3\r\n\r\nxyz\r\n.\r\n",
                       true,
                       "A: 12\r\n 3\r\n\r\nxyz\r\n",
                       DataStatus::Ok,
                       "",
                       std::string::npos,
                       1000,
                       kDefaultMaxDataLine,
                       {0, 11}},
        DataReaderCase{"HeaderFieldOver",
                       "A: 12\r\n 3\r\n\r\nxyz\r\n.\r\n",
                       true,
                       "A: 12\r\n 3\r",
                       DataStatus::HeaderTooBig,
                       "",
                       18,
                       1000,
                       kDefaultMaxDataLine,
                       {0, 10}},
        DataReaderCase{"LongBodyLineNotAField",
                       "A: 1\r\n\r\n" + std::string(30, 'x') + "\r\n.\r\n",
                       true,
                       "A: 1\r\n\r\n" + std::string(30, 'x') + "\r\n",
                       DataStatus::Ok,
                       "",
                       std::string::npos,
                       1000,
                       kDefaultMaxDataLine,
                       {0, 10}}),
    PrintDataCase);

TEST(SmtpDataReaderApi, TooBigPassesExactlyMaxSizeBytes) {
  std::string message;
  DataReader reader([&](std::string_view piece) { message.append(piece); }, 9);
  std::string input = std::string(100, 'q') + "\r\n.\r\n";
  EXPECT_EQ(reader.feed(input), input.size());
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.status(), DataStatus::TooBig);
  EXPECT_EQ(message, std::string(9, 'q'));
  EXPECT_EQ(reader.size(), 102u);
}

TEST(SmtpDataReaderApi, ResetStartsANewMessage) {
  std::string message;
  DataReader reader([&](std::string_view piece) { message.append(piece); }, 100);
  EXPECT_EQ(reader.feed("a\nb\r\n.\r\n"), 8u);
  EXPECT_EQ(reader.status(), DataStatus::BareLineEnding);
  reader.reset();
  message.clear();
  EXPECT_FALSE(reader.done());
  EXPECT_EQ(reader.feed("ok\r\n.\r\n"), 7u);
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(reader.status(), DataStatus::Ok);
  EXPECT_EQ(message, "ok\r\n");
  EXPECT_EQ(reader.size(), 4u);
}

}  // namespace
}  // namespace estafette::smtp
