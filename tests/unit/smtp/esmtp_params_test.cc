// MAIL/RCPT parameters and RFC 3461 xtext: tables of inputs with the expected value or reply.
#include "lib/smtp/esmtp_params.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace estafette::smtp {
namespace {

struct XtextCase {
  std::string xtext;
  std::optional<std::string> decoded;
};

class SmtpXtext : public ::testing::TestWithParam<XtextCase> {};

TEST_P(SmtpXtext, Decodes) {
  const auto& c = GetParam();
  EXPECT_EQ(xtext_decode(c.xtext), c.decoded) << c.xtext;
  // Whatever decodes encodes back to an xtext that decodes to the same bytes.
  if (c.decoded) {
    EXPECT_EQ(xtext_decode(xtext_encode(*c.decoded)), c.decoded);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SmtpXtext,
    ::testing::Values(XtextCase{"", std::string()}, XtextCase{"abc", "abc"},
                      XtextCase{"a+2Bb@example.com", "a+b@example.com"},
                      XtextCase{"+3D+20+7E", "= ~"}, XtextCase{"x+00y", std::string("x\0y", 3)},
                      XtextCase{"+", std::nullopt}, XtextCase{"+2", std::nullopt},
                      XtextCase{"ab+", std::nullopt}, XtextCase{"+2b", std::nullopt},  // lower
                      XtextCase{"+G0", std::nullopt}, XtextCase{"a=b", std::nullopt},
                      XtextCase{"a b", std::nullopt}, XtextCase{"\x7f", std::nullopt}));

TEST(SmtpXtext, EncodesOnlyWhatMustBe) {
  EXPECT_EQ(xtext_encode("joe+tag@example.com"), "joe+2Btag@example.com");
  EXPECT_EQ(xtext_encode("a=b c"), "a+3Db+20c");
  EXPECT_EQ(xtext_encode("\xff"), "+FF");
  EXPECT_EQ(xtext_encode("plain-id.123"), "plain-id.123");
}

struct NotifyCase {
  std::string value;
  std::optional<std::uint8_t> flags;
  std::string canonical = {};
};

class SmtpNotify : public ::testing::TestWithParam<NotifyCase> {};

TEST_P(SmtpNotify, Parses) {
  const auto& c = GetParam();
  auto flags = parse_notify(c.value);
  EXPECT_EQ(flags, c.flags) << c.value;
  if (flags) {
    EXPECT_EQ(notify_text(*flags), c.canonical);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SmtpNotify,
    ::testing::Values(
        NotifyCase{"NEVER", kNotifyNever, "NEVER"}, NotifyCase{"never", kNotifyNever, "NEVER"},
        NotifyCase{"SUCCESS", kNotifySuccess, "SUCCESS"},
        NotifyCase{"DELAY,FAILURE,SUCCESS", kNotifySuccess | kNotifyFailure | kNotifyDelay,
                   "SUCCESS,FAILURE,DELAY"},
        NotifyCase{"Failure,delay", kNotifyFailure | kNotifyDelay, "FAILURE,DELAY"},
        NotifyCase{"", std::nullopt}, NotifyCase{"NEVER,SUCCESS", std::nullopt},
        NotifyCase{"SUCCESS,NEVER", std::nullopt}, NotifyCase{"SUCCESS,SUCCESS", std::nullopt},
        NotifyCase{"SUCCESS,", std::nullopt}, NotifyCase{",SUCCESS", std::nullopt},
        NotifyCase{"ALWAYS", std::nullopt}, NotifyCase{"SUCCESS;FAILURE", std::nullopt}));

TEST(SmtpNotify, StoredTextDefaultsToFailureAndDelay) {
  EXPECT_EQ(notify_flags(""), kNotifyFailure | kNotifyDelay);
  EXPECT_EQ(notify_flags("garbage"), kNotifyFailure | kNotifyDelay);
  EXPECT_EQ(notify_flags("NEVER"), kNotifyNever);
  EXPECT_EQ(notify_flags("SUCCESS"), kNotifySuccess);
}

struct OrcptCase {
  std::string value;
  bool ok;
  std::string type = {};
  std::string address = {};
};

class SmtpOrcpt : public ::testing::TestWithParam<OrcptCase> {};

TEST_P(SmtpOrcpt, Parses) {
  const auto& c = GetParam();
  auto o = parse_orcpt(c.value);
  ASSERT_EQ(o.has_value(), c.ok) << c.value;
  if (!o) return;
  EXPECT_EQ(o->type, c.type);
  EXPECT_EQ(o->address, c.address);
}

INSTANTIATE_TEST_SUITE_P(
    Table, SmtpOrcpt,
    ::testing::Values(OrcptCase{"rfc822;joe@example.com", true, "rfc822", "joe@example.com"},
                      OrcptCase{"RFC822;a+2Bb@example.com", true, "RFC822", "a+b@example.com"},
                      OrcptCase{"x-local;+20joe", true, "x-local", " joe"},
                      OrcptCase{"rfc822;", false}, OrcptCase{";joe@example.com", false},
                      OrcptCase{"joe@example.com", false}, OrcptCase{"rfc822;a+2", false},
                      OrcptCase{"rfc 822;a", false},
                      OrcptCase{"rfc822;+0Djoe", false},  // decodes to a control character
                      OrcptCase{"rfc822;" + std::string(501, 'a'), false},
                      OrcptCase{"rfc822;" + std::string(500, 'a'), true, "rfc822",
                                std::string(500, 'a')}));

struct MailCase {
  std::string name;
  EsmtpParams params;
  std::string error;  // prefix of the expected reply, "" = accepted
  DsnRet ret = DsnRet::Unspecified;
  std::string envid = {};
};

class SmtpMailParams : public ::testing::TestWithParam<MailCase> {};

TEST_P(SmtpMailParams, Checks) {
  const auto& c = GetParam();
  MailParams p = parse_mail_params(c.params);
  if (c.error.empty()) {
    EXPECT_EQ(p.error, "");
    EXPECT_EQ(p.ret, c.ret);
    EXPECT_EQ(p.envid, c.envid);
  } else {
    EXPECT_EQ(p.error.rfind(c.error, 0), 0u) << p.error;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SmtpMailParams,
    ::testing::Values(
        MailCase{"None", {}, ""}, MailCase{"RetFull", {{"RET", "FULL"}}, "", DsnRet::Full},
        MailCase{"RetHdrsLower", {{"RET", "hdrs"}}, "", DsnRet::Hdrs},
        MailCase{"Envid", {{"ENVID", "QQ+2B1"}, {"RET", "HDRS"}}, "", DsnRet::Hdrs, "QQ+2B1"},
        MailCase{"EnvidMax",
                 {{"ENVID", std::string(100, 'x')}},
                 "",
                 DsnRet::Unspecified,
                 std::string(100, 'x')},
        MailCase{"EnvidTooLong", {{"ENVID", std::string(101, 'x')}}, "501 5.5.4 Bad ENVID"},
        MailCase{"EnvidBadXtext", {{"ENVID", "a+zz"}}, "501 5.5.4 Bad ENVID"},
        MailCase{"EnvidControl", {{"ENVID", "a+0A"}}, "501 5.5.4 Bad ENVID"},
        MailCase{"EnvidEmpty", {{"ENVID", ""}}, "501 5.5.4 Bad ENVID"},
        MailCase{"RetBad", {{"RET", "ALL"}}, "501 5.5.4 Bad RET parameter"},
        MailCase{"RetNoValue", {{"RET", ""}}, "501 5.5.4 Bad RET parameter"},
        MailCase{
            "RetTwice", {{"RET", "FULL"}, {"RET", "HDRS"}}, "501 5.5.4 Duplicate parameter: RET"},
        MailCase{
            "EnvidTwice", {{"ENVID", "a"}, {"ENVID", "a"}}, "501 5.5.4 Duplicate parameter: ENVID"},
        MailCase{"NotifyOnMail", {{"NOTIFY", "NEVER"}}, "555 5.5.4 Unsupported option: NOTIFY"},
        MailCase{"SizeBad", {{"SIZE", "1x"}}, "501 5.5.4 Bad SIZE"},
        MailCase{"Body", {{"BODY", "7BIT"}, {"RET", "FULL"}}, "", DsnRet::Full},
        MailCase{"RequireTls", {{"REQUIRETLS", ""}, {"RET", "HDRS"}}, "", DsnRet::Hdrs},
        MailCase{"RequireTlsValue", {{"REQUIRETLS", "YES"}}, "501 5.5.4 REQUIRETLS takes no value"},
        MailCase{"RequireTlsTwice",
                 {{"REQUIRETLS", ""}, {"REQUIRETLS", ""}},
                 "501 5.5.4 Duplicate parameter: REQUIRETLS"},
        MailCase{"AuthNull", {{"AUTH", "<>"}}, ""},
        MailCase{"AuthMailbox", {{"AUTH", "user+40example.com"}}, ""},
        MailCase{"AuthBadXtext", {{"AUTH", "user+4"}}, "501 5.5.4 Bad AUTH parameter"},
        MailCase{"AuthControl", {{"AUTH", "a+0D+0A"}}, "501 5.5.4 Bad AUTH parameter"},
        MailCase{"AuthEmpty", {{"AUTH", ""}}, "501 5.5.4 Bad AUTH parameter"},
        MailCase{"AuthTooLong", {{"AUTH", std::string(257, 'a')}}, "501 5.5.4 Bad AUTH"},
        MailCase{"AuthTwice", {{"AUTH", "<>"}, {"AUTH", "<>"}}, "501 5.5.4 Duplicate"}),
    [](const auto& info) { return info.param.name; });

TEST(SmtpMailParamsAuth, DecodedValue) {
  auto p = parse_mail_params({{"AUTH", "user+40example.com"}});
  ASSERT_TRUE(p.auth);
  EXPECT_EQ(*p.auth, "user@example.com");
  EXPECT_FALSE(parse_mail_params({}).auth);
}

struct RcptCase {
  std::string name;
  EsmtpParams params;
  std::string error;  // prefix of the expected reply, "" = accepted
  std::string notify = {};
  std::string orcpt = {};
};

class SmtpRcptParams : public ::testing::TestWithParam<RcptCase> {};

TEST_P(SmtpRcptParams, Checks) {
  const auto& c = GetParam();
  RcptParams p = parse_rcpt_params(c.params);
  if (c.error.empty()) {
    EXPECT_EQ(p.error, "");
    EXPECT_EQ(p.notify, c.notify);
    EXPECT_EQ(p.orcpt, c.orcpt);
  } else {
    EXPECT_EQ(p.error.rfind(c.error, 0), 0u) << p.error;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, SmtpRcptParams,
    ::testing::Values(
        RcptCase{"None", {}, ""}, RcptCase{"Never", {{"NOTIFY", "NEVER"}}, "", "NEVER"},
        RcptCase{"Canonical", {{"NOTIFY", "delay,success"}}, "", "SUCCESS,DELAY"},
        RcptCase{"Orcpt",
                 {{"ORCPT", "rfc822;x+2By@a.test"}, {"NOTIFY", "FAILURE"}},
                 "",
                 "FAILURE",
                 "rfc822;x+2By@a.test"},
        RcptCase{"NotifyBad", {{"NOTIFY", "NEVER,DELAY"}}, "501 5.5.4 Bad NOTIFY parameter"},
        RcptCase{"NotifyTwice",
                 {{"NOTIFY", "NEVER"}, {"NOTIFY", "NEVER"}},
                 "501 5.5.4 Duplicate parameter: NOTIFY"},
        RcptCase{"OrcptBad", {{"ORCPT", "joe@a.test"}}, "501 5.5.4 Bad ORCPT parameter"},
        RcptCase{"OrcptTwice",
                 {{"ORCPT", "rfc822;a"}, {"ORCPT", "rfc822;b"}},
                 "501 5.5.4 Duplicate parameter: ORCPT"},
        RcptCase{"RetOnRcpt", {{"RET", "FULL"}}, "555 5.5.4 Unsupported option: RET"}),
    [](const auto& info) { return info.param.name; });

TEST(SmtpDsnRet, Text) {
  EXPECT_EQ(ret_text(DsnRet::Full), "FULL");
  EXPECT_EQ(ret_text(DsnRet::Hdrs), "HDRS");
  EXPECT_EQ(ret_text(DsnRet::Unspecified), "");
  EXPECT_EQ(parse_ret_text("HDRS"), DsnRet::Hdrs);
  EXPECT_EQ(parse_ret_text(""), DsnRet::Unspecified);
}

}  // namespace
}  // namespace estafette::smtp
