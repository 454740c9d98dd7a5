// estafette import-postfix: the main.cf parser, $name expansion with Postfix's defaults, the
// table parser, and the translation of whole configurations (tables of main.cf and table texts
// in, estafette.conf and the files beside it out, each accepted by config::parse_config).
#include "admin/import_postfix.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "lib/config/config.h"

namespace estafette::admin::postfix {
namespace {

const System kSystem{"host.example.org", "/etc/postfix"};

// ---- main.cf

struct MainCfCase {
  const char* name;
  std::string text;
  std::map<std::string, std::string> params;  // name -> raw value
  std::string error;                          // a substring of the ImportError; empty: none
};

class MainCfParse : public ::testing::TestWithParam<MainCfCase> {};

TEST_P(MainCfParse, LogicalLinesAndErrors) {
  const auto& c = GetParam();
  if (!c.error.empty()) {
    try {
      parse_main_cf(c.text, "main.cf");
      FAIL() << "no error";
    } catch (const ImportError& e) {
      EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
    }
    return;
  }
  auto cf = parse_main_cf(c.text, "main.cf");
  std::map<std::string, std::string> got;
  for (const auto& [k, p] : cf.params) got[k] = p.value;
  EXPECT_EQ(got, c.params);
}

INSTANTIATE_TEST_SUITE_P(
    Table, MainCfParse,
    ::testing::Values(
        MainCfCase{"Simple", "a = b\nc=d\n", {{"a", "b"}, {"c", "d"}}, ""},
        MainCfCase{"Continuation",
                   "mydestination = a,\n  b,\n\tc\nx = y\n",
                   {{"mydestination", "a, b, c"}, {"x", "y"}},
                   ""},
        MainCfCase{"CommentsAndBlankLines",
                   "# top\n\na = 1\n  # indented comment inside\n  2\nb = 3 # kept\n",
                   {{"a", "1 2"}, {"b", "3 # kept"}},
                   ""},
        MainCfCase{"LastWins", "a = 1\na = 2\n", {{"a", "2"}}, ""},
        MainCfCase{"EmptyValue", "relayhost =\n", {{"relayhost", ""}}, ""},
        MainCfCase{"CrLf", "a = 1\r\nb = 2\r\n", {{"a", "1"}, {"b", "2"}}, ""},
        MainCfCase{"NoEquals", "a = 1\njunk\n", {}, "main.cf:2: expected 'name = value'"},
        MainCfCase{"BadName", "my-name = 1\n", {}, "main.cf:1: bad parameter name 'my-name'"},
        MainCfCase{"ContinuationFirst", "  a = 1\n", {}, "main.cf:1: a line starting with white"},
        MainCfCase{"LineTooLong",
                   "a = " + std::string(kMaxLineLength, 'x') + "\n",
                   {},
                   "main.cf:1: line longer than"},
        MainCfCase{"LogicalLineTooLong",
                   "a = x\n" +
                       [] {
                         std::string s;
                         for (int i = 0; i < 3; ++i)
                           s += " " + std::string(kMaxLineLength / 2, 'y') + "\n";
                         return s;
                       }(),
                   {},
                   "main.cf:1: logical line longer than"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(MainCfParse, FileTooLarge) {
  EXPECT_THROW(parse_main_cf(std::string(kMaxMainCfSize + 1, '#'), "main.cf"), ImportError);
}

// ---- expansion

struct ExpandCase {
  const char* name;
  std::string main_cf;
  std::string parameter;
  std::string expanded;  // empty with error set: an error
  std::string error;
  std::vector<std::string> unknown = {};
};

class Expand : public ::testing::TestWithParam<ExpandCase> {};

TEST_P(Expand, AsPostconf) {
  const auto& c = GetParam();
  auto cf = parse_main_cf(c.main_cf, "main.cf");
  std::vector<std::string> unknown;
  if (!c.error.empty()) {
    try {
      expand(cf, c.parameter, kSystem, &unknown);
      FAIL() << "no error";
    } catch (const ImportError& e) {
      EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
    }
    return;
  }
  EXPECT_EQ(expand(cf, c.parameter, kSystem, &unknown), c.expanded);
  EXPECT_EQ(unknown, c.unknown);
}

INSTANTIATE_TEST_SUITE_P(
    Table, Expand,
    ::testing::Values(
        ExpandCase{"Defaults", "", "mydestination",
                   "host.example.org, localhost.example.org, localhost", ""},
        ExpandCase{"MyDomainFromHostname", "myhostname = mx.a.example\n", "mydomain", "a.example",
                   ""},
        ExpandCase{"MyDomainSingleLabel", "myhostname = box\n", "mydomain", "localdomain", ""},
        ExpandCase{"AllThreeForms", "a = 1\nb = $a ${a} $(a)\n", "b", "1 1 1", ""},
        ExpandCase{"Nested", "a = $b.x\nb = ${c}y\nc = z\n", "a", "zy.x", ""},
        ExpandCase{"Conditional", "a = 1\ne =\nb = ${a?yes}${e?no}${a:no}${e:empty}\n", "b",
                   "yesempty", ""},
        ExpandCase{"ConditionalNested", "a = 1\nc = C\nb = ${a?<${c}>}\n", "b", "<C>", ""},
        ExpandCase{"Dollar", "b = $$a\n", "b", "$a", ""},
        ExpandCase{"LoneDollar", "b = cost 5$\n", "b", "cost 5$", ""},
        ExpandCase{"Unknown", "b = x$nosuch.y\n", "b", "x.y", "", {"nosuch"}},
        ExpandCase{"Loop", "a = $b\nb = $a\n", "a", "", "main.cf:1: $"},
        ExpandCase{"SelfLoop", "a = x $a\n", "a", "", "deeper than"},
        ExpandCase{"Unclosed", "a = ${b\n", "a", "", "main.cf:1: '${' without '}'"},
        ExpandCase{"Huge",
                   "a = " + std::string(60000, 'x') +
                       "\nb = $a$a\nc = $b$b\nd = $c$c\ne = $d$d\nf = $e$e\n",
                   "f", "", "expands to more than"}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- tables

struct TableCase {
  const char* name;
  std::string text;
  bool aliases;
  std::vector<std::pair<std::string, std::string>> entries;
  std::string error;
};

class TableParse : public ::testing::TestWithParam<TableCase> {};

TEST_P(TableParse, AsPostmap) {
  const auto& c = GetParam();
  if (!c.error.empty()) {
    try {
      parse_table(c.text, "t", c.aliases);
      FAIL() << "no error";
    } catch (const ImportError& e) {
      EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
    }
    return;
  }
  std::vector<std::pair<std::string, std::string>> got;
  for (const auto& e : parse_table(c.text, "t", c.aliases).entries)
    got.emplace_back(e.key, e.value);
  EXPECT_EQ(got, c.entries);
}

INSTANTIATE_TEST_SUITE_P(
    Table, TableParse,
    ::testing::Values(
        TableCase{"KeyValue",
                  "# virtual\nSales@Example.NET  alice@example.net, bob\n\nexample.net x\n",
                  false,
                  {{"sales@example.net", "alice@example.net, bob"}, {"example.net", "x"}},
                  ""},
        TableCase{"Continuation", "list a,\n  b,\n  c\n", false, {{"list", "a, b, c"}}, ""},
        TableCase{"KeyOnly", "example.net\n", false, {{"example.net", ""}}, ""},
        TableCase{"FirstWins", "a 1\nA 2\n", false, {{"a", "1"}}, ""},
        TableCase{
            "Aliases",
            "postmaster:    root\nroot: admin@example.org,\n  \\root\n"
            "\"odd name\": x\n",
            true,
            {{"postmaster", "root"}, {"root", "admin@example.org, \\root"}, {"\"odd name\"", "x"}},
            ""},
        TableCase{"AliasWithoutColon", "root admin\n", true, {}, "t:1: expected 'name: value'"},
        TableCase{"ContinuationFirst", " a b\n", false, {}, "t:1: a line starting with white"},
        TableCase{"LongLine",
                  "k " + std::string(kMaxLineLength, 'v') + "\n",
                  false,
                  {},
                  "t:1: line longer than"}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- translation

struct TranslateCase {
  const char* name;
  std::string main_cf;
  std::map<std::string, std::string> tables;  // path -> source text
  std::map<std::string, std::string> files;   // expected: name -> exact text ("estafette.conf":
                                              // each line given must be in it)
  std::vector<std::string> translated;        // substrings, each of some line
  std::vector<std::string> not_translated;    // substrings, each of some line
};

class Translate : public ::testing::TestWithParam<TranslateCase> {};

bool has(const std::vector<std::string>& lines, const std::string& part) {
  for (const auto& l : lines)
    if (l.find(part) != std::string::npos) return true;
  return false;
}

TEST_P(Translate, FilesAndReport) {
  const auto& c = GetParam();
  Reader read = [&](const std::string& path, std::size_t,
                    std::string* error) -> std::optional<std::string> {
    auto it = c.tables.find(path);
    if (it == c.tables.end()) {
      *error = "No such file or directory";
      return std::nullopt;
    }
    return it->second;
  };
  auto result = translate(parse_main_cf(c.main_cf, "/etc/postfix/main.cf"), kSystem, read);
  ASSERT_TRUE(result.files.count("estafette.conf"));
  ASSERT_TRUE(result.files.count("import-report.txt"));
  for (const auto& [name, text] : c.files) {
    ASSERT_TRUE(result.files.count(name)) << name;
    if (name == "estafette.conf") {
      std::size_t from = 0;
      std::string want = text;
      while (from < want.size()) {
        auto end = want.find('\n', from);
        std::string line = want.substr(from, end - from);
        EXPECT_NE(result.files["estafette.conf"].find("\n" + line + "\n"), std::string::npos)
            << line << " not in\n"
            << result.files["estafette.conf"];
        from = end + 1;
      }
    } else {
      EXPECT_EQ(result.files[name], text) << name;
    }
  }
  // Every parameter main.cf gives is in the report, translated or not.
  for (const auto& [name, p] : parse_main_cf(c.main_cf, "main.cf").params)
    EXPECT_TRUE(has(result.translated, name) || has(result.not_translated, name))
        << name << " is not in the report\n"
        << result.report();
  for (const auto& t : c.translated)
    EXPECT_TRUE(has(result.translated, t)) << t << "\n" << result.report();
  for (const auto& n : c.not_translated)
    EXPECT_TRUE(has(result.not_translated, n)) << n << "\n" << result.report();

  // Whatever was written, Estafette's own parser takes it (files beside it, in a directory).
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() /
                 ("estafette-import-" + std::string(c.name) + "-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const auto& [name, text] : result.files) std::ofstream(dir / name) << text;
  EXPECT_NO_THROW(config::parse_config(result.files["estafette.conf"],
                                       (dir / "estafette.conf").string(), dir.string()))
      << result.files["estafette.conf"];
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Table, Translate,
    ::testing::Values(
        TranslateCase{
            "Satellite",
            "compatibility_level = 3.6\n"
            "myhostname = sat.example.org\n"
            "mydestination = $myhostname, localhost.$mydomain, localhost\n"
            "relayhost = [smtp.example.org]:587\n"
            "mynetworks = 127.0.0.1/8 [::1]/128 192.0.2.0/24\n"
            "alias_maps = hash:/etc/aliases\n"
            "inet_interfaces = loopback-only\ninet_protocols = ipv4\n"
            "message_size_limit = 52428800\n"
            "biff = no\n",
            {{"/etc/aliases",
              "postmaster: root\nroot: admin@example.org\nlog: /var/log/mail.copy\n"
              "prog: \"|/usr/bin/true\"\n"}},
            {{"estafette.conf",
              "hostname = sat.example.org\n"
              "local_domains = sat.example.org, localhost.example.org, localhost\n"
              "local_mailboxes = system\n"
              "relay_clients = 127.0.0.0/8, ::1/128, 192.0.2.0/24\n"
              "smarthost = [smtp.example.org]:587\n"
              "max_message_size = 52428800\n"
              "listen = 127.0.0.1:25 mx\n"
              "aliases = aliases\n"
              "allow_program_delivery = yes\n"
              "BOFHCHECKDNS = no\n"},
             {"aliases", "postmaster: root\nroot: admin@example.org\nprog: \"|/usr/bin/true\"\n"}},
            {"relayhost = [smtp.example.org]:587 -> smarthost", "127.0.0.1/8 has host bits set",
             "alias_maps = hash:/etc/aliases -> aliases: 3 local parts"},
            {"log: target /var/log/mail.copy: delivery to a file", "biff = no"}},
        TranslateCase{
            "VirtualMailboxHost",
            "compatibility_level = 3.6\n"
            "myhostname = mx.example.net\n"
            "mydestination = localhost\n"
            "virtual_mailbox_domains = example.net, hash:/etc/postfix/vdomains\n"
            "virtual_mailbox_base = /var/vmail\n"
            "virtual_mailbox_maps = hash:/etc/postfix/vmailbox\n"
            "virtual_alias_maps = hash:/etc/postfix/virtual\n"
            "virtual_uid_maps = static:5000\n"
            "transport_maps = hash:/etc/postfix/transport\n"
            "relay_domains = relay.example\n"
            "mynetworks = 127.0.0.0/8\n"
            "local_recipient_maps =\n",
            {{"/etc/postfix/vdomains", "example.com OK\n"},
             {"/etc/postfix/vmailbox",
              "alice@example.net example.net/alice/\nbob@example.com example.com/bob\n"
              "@example.net catchall/\ncarol@elsewhere.example x/\n"},
             {"/etc/postfix/virtual",
              "sales@example.net alice@example.net, bob@example.com\n"
              "info@example.net staff\n@example.com bob@example.com\n"},
             {"/etc/postfix/transport",
              "relay.example smtp:[192.0.2.7]:2525\n.partner.example relay:mx.partner.example\n"
              "*.bad.example error:nope\nlocal.example local:\n"}},
            {{"estafette.conf",
              "local_domains = localhost\nlocal_mailboxes = create\nrelay_domains = relay.example\n"
              "hosteddomains = hosteddomains\nhosted_mailboxes = hosted_mailboxes\n"
              "maildir_root = /var/vmail\nesmtproutes = esmtproutes\n"},
             {"hosteddomains", "example.net\nexample.com\n"},
             {"hosted_mailboxes",
              "alice@example.net: example.net/alice/\nbob@example.com: example.com/bob\n"},
             {"aliases",
              "sales@example.net: alice@example.net, bob@example.com\n"
              "info@example.net: staff@mx.example.net\n"},
             {"esmtproutes",
              "relay.example: 192.0.2.7,2525\n.partner.example: mx.partner.example,25\n"}},
            {"virtual_mailbox_maps = hash:/etc/postfix/vmailbox -> hosted_mailboxes: 2 mailboxes",
             "-> esmtproutes: relay.example: 192.0.2.7,2525"},
            {"@example.net: a catch-all mailbox",
             "carol@elsewhere.example: elsewhere.example is not", "example.com/bob is an mbox file",
             "@example.com: a catch-all alias", "transport error", "transport local",
             "virtual_uid_maps"}},
        TranslateCase{
            "MiltersRblsPolicy",
            "compatibility_level = 3.6\n"
            "myhostname = gw.example.com\nmydestination =\n"
            "relayhost = [10.0.0.5]\n"
            "smtpd_milters = inet:127.0.0.1:8891, { unix:/run/opendkim.sock, "
            "default_action=accept }, inet:[::1]:8893\n"
            "non_smtpd_milters = $smtpd_milters\n"
            "milter_default_action = accept\nmilter_command_timeout = 2m\n"
            "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination,\n"
            "  permit_dnswl_client list.dnswl.org=127.0.[0..255].[1..3],\n"
            "  reject_rbl_client zen.spamhaus.org=127.0.0.[2..11],\n"
            "  reject_rbl_client bl.spamcop.net,\n"
            "  check_policy_service inet:127.0.0.1:10023,\n"
            "  check_policy_service unix:private/policyd-spf,\n"
            "  reject_unknown_sender_domain, reject_non_fqdn_sender,\n"
            "  check_sender_access hash:/etc/postfix/access\n"
            "smtpd_tls_security_level = none\nsmtpd_tls_cert_file = /etc/ssl/x.pem\n"
            "smtpd_policy_service_timeout = 30\n"
            "spooky_parameter = $nosuch\n",
            {},
            {{"estafette.conf",
              "smarthost = [10.0.0.5]:25\n"
              "filters = milter:inet:8891@127.0.0.1, milter:unix:/run/opendkim.sock, "
              "milter:inet6:8893@::1, policy:inet:10023@127.0.0.1, "
              "policy:unix:/var/spool/postfix/private/policyd-spf\n"
              "milter_default_action = accept\nmilter_command_timeout = 2m\n"
              "policy_timeout = 30s\nBOFHCHECKDNS = yes\ndnsbl = dnsbl\n"},
             {"dnsbl",
              "list.dnswl.org 127.0.[0..255].[1..3] -100\nzen.spamhaus.org 127.0.0.[2..11] 1\n"
              "bl.spamcop.net - 1\n"}},
            {"non_smtpd_milters", "reject_unknown_sender_domain -> BOFHCHECKDNS = yes"},
            {"default_action=accept }: per-milter options",
             "reject_non_fqdn_sender: not translated", "check_sender_access: not translated",
             "smtpd_tls_cert_file = /etc/ssl/x.pem: Postfix's",
             "spooky_parameter = $nosuch: import-postfix does not know it",
             "$nosuch: not a "
             "parameter"}},
        TranslateCase{"MissingTable",
                      "myhostname = a.example\nalias_maps = hash:/etc/aliases, nis:mail.aliases\n"
                      "virtual_alias_maps = ldap:/etc/postfix/ldap.cf\n",
                      {},
                      {},
                      {},
                      {"table hash:/etc/aliases: cannot read its source /etc/aliases: No such file",
                       "a nis: table cannot be read", "a ldap: table cannot be read"}},
        TranslateCase{
            "OwnVariablesAndTls",
            "compatibility_level = 3.6\nmyhostname = a.example\nmydestination =\n"
            "local_recipient_maps =\nhome_mailbox = Maildir/\n"
            "office = 198.51.100.0/24\nmynetworks = 127.0.0.0/8 $office\n"
            "smtpd_tls_security_level = encrypt\n"
            "smtpd_tls_chain_files = /etc/ssl/rsa.pem, /etc/ssl/ec.pem\n"
            "inet_interfaces = 192.0.2.1, 2001:db8::1\n",
            {},
            {{"estafette.conf",
              "relay_clients = 127.0.0.0/8, 198.51.100.0/24\n"
              "tls_cert_file = /etc/ssl/rsa.pem, /etc/ssl/ec.pem\n"
              "listen = 192.0.2.1:25 mx tls_required, [2001:db8::1]:25 mx tls_required\n"}},
            {"office = 198.51.100.0/24 -> expanded in mynetworks",
             "mydestination =  -> local_domains = (none)"},
            {}},
        TranslateCase{"OldCompatibilityRelayDomains",
                      "myhostname = a.example\nrelay_domains = r.example\n",
                      {},
                      {{"estafette.conf", "relay_domains = r.example, .r.example\n"}},
                      {"compatibility_level < 3: subdomains match too"},
                      {}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Translate, TableParseErrorNamesFileAndLine) {
  Reader read = [](const std::string&, std::size_t, std::string*) -> std::optional<std::string> {
    return std::string("root: x\nno colon here\n");
  };
  try {
    translate(parse_main_cf("alias_maps = hash:/etc/aliases\n", "main.cf"), kSystem, read);
    FAIL() << "no error";
  } catch (const ImportError& e) {
    EXPECT_EQ(std::string(e.what()), "/etc/aliases:2: expected 'name: value'");
  }
}

}  // namespace
}  // namespace estafette::admin::postfix
