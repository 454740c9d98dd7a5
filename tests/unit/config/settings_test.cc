// The settings table (lib/config/settings.h): names are unique, each entry's default is what an
// absent setting means, the embedded default is what the table says, each entry rejects a bad
// value with "file:line: name: reason", aliases are the same setting, and the listing that
// `estafette settings` prints has one row per name.
#include "lib/config/settings.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace estafette::config {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += i + ",";
  return out;
}

// Every field of a Config that a setting sets, as text (the "file:line" of settings left out):
// two Configs that describe the same are configured the same.
std::string describe(const Config& c) {
  std::ostringstream o;
  auto hps = [](const auto& v) {  // listen (Listener) and dns_servers (HostPort)
    std::string out;
    for (const auto& hp : v) out += hp.to_string() + ",";
    return out;
  };
  o << "tls=" << join(c.tls_cert_files) << "/" << join(c.tls_key_files) << "/"
    << join(c.tls_protocols) << "/" << c.tls_ciphers << "/" << c.tls_ciphersuites << "/"
    << c.tls_groups << "/" << c.tls_session_tickets << "/" << c.tls_session_timeout.count() << "/"
    << c.tls_handshake_timeout.count() << "\n";
  o << "hostname=" << c.hostname << "\nstate_dir=" << c.state_dir << "\nlisten=" << hps(c.listen)
    << "\nlocal_domains=" << join(c.local_domains) << "\nrelay_domains=" << join(c.relay_domains)
    << "\nrelay_clients=";
  for (const auto& n : c.relay_clients) o << n.to_string() << ",";
  o << "\nroutes=" << c.routes.exact.size() << "/" << c.routes.suffix.size() << "/"
    << (c.routes.smarthost ? c.routes.smarthost->to_string() : "-")
    << "\nmaildir_root=" << c.maildir_root << "\nlocals=" << c.locals.path
    << "\nhosteddomains=" << c.hosteddomains.path
    << "\nhosted_mailboxes=" << c.hosted_mailboxes.path << "\naliases=" << c.aliases.path
    << "\nlocal_mailboxes=" << static_cast<int>(c.local_mailboxes)
    << "\nlocal_transport=" << c.local_transport.to_string()
    << "\nmax_mailbox_message_size=" << c.max_mailbox_message_size
    << "\nallow_program_delivery=" << c.allow_program_delivery
    << "\nprogram_user=" << c.program_user << "\nprogram_timeout=" << c.program_timeout.count()
    << "\nmax_message_size=" << c.max_message_size << "\nmax_recipients=" << c.max_recipients
    << "\nmax_line_length=" << c.max_line_length << "\nsmtpd_timeout=" << c.smtpd_timeout.count()
    << "\nmax_sessions=" << c.max_sessions << "\nmax_per_ip=" << c.max_per_ip
    << "\nmax_per_c=" << c.max_per_c << "\nrdns_check=" << c.rdns_check
    << "\ndnsbl=" << c.dnsbl.size() << "\ndnsbl_threshold=" << c.dnsbl_threshold
    << "\ndnsbl_action=" << static_cast<int>(c.dnsbl_action) << "\nident_check=" << c.ident_check
    << "\nident_timeout=" << c.ident_timeout.count() << "\ngreet_wait=" << c.greet_wait.count()
    << "\nsender_dns_check=" << c.sender_dns_check << "\ndns_cache_size=" << c.dns_cache_size
    << "\naccess=" << c.access.size() << "\nfilters=";
  for (const auto& f : c.filters) o << f.kind << ":" << f.target << ",";
  o << "\nmilter_default_action=" << c.milter_default_action
    << "\nmilter_connect_timeout=" << c.milter_connect_timeout.count()
    << "\nmilter_command_timeout=" << c.milter_command_timeout.count()
    << "\nmilter_content_timeout=" << c.milter_content_timeout.count()
    << "\nfilter_callback_warn_time=" << c.filter_callback_warn_time.count()
    << "\nesmtpd_processes=" << c.esmtpd_processes
    << "\nesmtpclient_processes=" << c.esmtpclient_processes
    << "\nlocal_processes=" << c.local_processes << "\nqueue_backend=" << c.queue_backend
    << "\nqueue_verify_bodies=" << c.queue_verify_bodies << "\nmax_deliveries=" << c.max_deliveries
    << "\nmax_per_host=" << c.max_per_host
    << "\ninitial_host_concurrency=" << c.initial_host_concurrency << "\nmax_rcpt=" << c.max_rcpt
    << "\nretry_base=" << c.retry_base.count() << "\nretry_max=" << c.retry_max.count()
    << "\nhost_backoff=" << c.host_backoff.count()
    << "\nqueue_lifetime=" << c.queue_lifetime.count() << "\nwarn_time=" << c.warn_time.count()
    << "\ndestinations=" << c.destinations.domains.size() << "/" << c.destinations.routes.size()
    << "\nesmtp_port=" << c.esmtp_port << "\nconnect_timeout=" << c.connect_timeout.count()
    << "\ngreeting_timeout=" << c.greeting_timeout.count()
    << "\nmail_timeout=" << c.mail_timeout.count() << "\nrcpt_timeout=" << c.rcpt_timeout.count()
    << "\ndata_timeout=" << c.data_timeout.count()
    << "\ndata_block_timeout=" << c.data_block_timeout.count()
    << "\ndata_end_timeout=" << c.data_end_timeout.count()
    << "\nidle_reuse=" << c.idle_reuse.count() << "\ndns_servers=" << hps(c.dns_servers)
    << "\ndns_timeout=" << c.dns_timeout.count() << "\ndns_tries=" << c.dns_tries
    << "\nuser=" << c.user << "\nlog_file=" << c.log_file << "\nsyslog=" << c.syslog
    << "\nlog_level=" << c.log_level << "\n";
  return o.str();
}

// Every name and alias, with the entry it belongs to.
std::vector<std::pair<std::string, const Setting*>> all_names() {
  std::vector<std::pair<std::string, const Setting*>> out;
  for (const auto& s : settings()) {
    out.emplace_back(std::string(s.name), &s);
    if (!s.alias.empty()) out.emplace_back(std::string(s.alias), &s);
  }
  return out;
}

TEST(ConfigSettings, NamesAreUniqueAndFound) {
  std::set<std::string> seen;
  for (const auto& [name, setting] : all_names()) {
    EXPECT_TRUE(seen.insert(name).second) << "twice: " << name;
    EXPECT_EQ(find_setting(name), setting) << name;
    EXPECT_FALSE(setting->doc.empty()) << name;
    EXPECT_NE(setting->parse, nullptr) << name;
  }
  EXPECT_GT(seen.size(), 50u);
  EXPECT_EQ(find_setting("colour"), nullptr);
  EXPECT_EQ(find_setting("maxdels"), nullptr);  // names are case-sensitive
  EXPECT_EQ(find_setting(""), nullptr);
}

class ConfigSettingDefault : public ::testing::TestWithParam<std::string> {};

// `name = <default>` configures exactly what leaving the setting out does.
TEST_P(ConfigSettingDefault, ParsesToWhatAbsenceMeans) {
  const Setting* s = find_setting(GetParam());
  ASSERT_NE(s, nullptr);
  std::string absent = describe(parse_config("", "t.conf", ""));
  if (!s->value) {  // computed at load time: only `hostname`, the system's name
    EXPECT_EQ(s->name, "hostname");
    EXPECT_FALSE(s->shown.empty());
    char host[256] = "localhost";
    ::gethostname(host, sizeof host - 1);
    EXPECT_EQ(parse_config("", "t.conf", "").hostname, host);
    return;
  }
  std::string line = GetParam() + " = " + std::string(*s->value) + "\n";
  EXPECT_EQ(describe(parse_config(line, "t.conf", "")), absent) << line;
  EXPECT_EQ(s->default_text(), s->shown.empty() && s->value->empty() ? "none"
                               : s->shown.empty()                    ? *s->value
                                                                     : s->shown);
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const auto& [name, setting] : all_names()) out.push_back(name);
  return out;
}
INSTANTIATE_TEST_SUITE_P(Table, ConfigSettingDefault, ::testing::ValuesIn(names()));

TEST(ConfigSettings, EmbeddedDefaultIsTheTablesEmbeddedValues) {
  // A file that gives every setting its embedded value (or else its default) configures what
  // the embedded default does, and the embedded default sets nothing else.
  std::string all;
  std::size_t differing = 0;
  for (const auto& s : settings()) {
    if (s.embedded) {
      ++differing;
      EXPECT_NE(s.embedded, s.value) << s.name;
    }
    if (s.embedded || s.value)
      all += std::string(s.name) + " = " + std::string(s.embedded ? *s.embedded : *s.value) + "\n";
  }
  EXPECT_EQ(describe(load_config("")), describe(parse_config(all, "(embedded default)", "")));
  std::size_t lines = 0;
  for_each_line(embedded_default_config(), "e", [&](const std::string&, std::string_view body) {
    ++lines;
    auto key = std::string(trim(body.substr(0, body.find('='))));
    const Setting* s = find_setting(key);
    ASSERT_NE(s, nullptr) << key;
    EXPECT_TRUE(s->embedded) << key;
  });
  EXPECT_EQ(lines, differing);
  // What differs, as it always has: the test domains, mailboxes made on first delivery, no DNS.
  auto c = load_config("");
  EXPECT_EQ(join(c.local_domains), "estafette.test,localhost,");
  EXPECT_EQ(c.local_mailboxes, Config::LocalMailboxes::Create);
  EXPECT_FALSE(c.rdns_check);
  EXPECT_FALSE(c.sender_dns_check);
  auto f = parse_config("", "t.conf", "");
  EXPECT_TRUE(f.local_domains.empty());
  EXPECT_EQ(f.local_mailboxes, Config::LocalMailboxes::Existing);
  EXPECT_TRUE(f.rdns_check);
  EXPECT_TRUE(f.sender_dns_check);
}

// A bad value for every setting: the error names the file, the line and the setting as
// written, then the reason ("" here: any reason).
const std::map<std::string, std::pair<std::string, std::string>> kBad = {
    {"hostname", {"bad/host", "bad host name"}},
    {"state_dir", {"", "must not be empty"}},
    {"user", {"a b", "bad user name 'a b'"}},
    {"syslog", {"maybe", "expected yes or no"}},
    {"log_level", {"loud", "expected one of"}},
    {"listen", {"127.0.0.1:99999", "bad address '127.0.0.1:99999'"}},
    {"local_domains", {"bad/domain", "bad domain 'bad/domain'"}},
    {"relay_domains", {"ok.example, b@d", "bad domain 'b@d'"}},
    {"relay_clients", {"10.0.0.0/33", "bad network '10.0.0.0/33'"}},
    {"max_message_size", {"1000", "must be at least 1024"}},
    {"max_header_count", {"0", "expected a positive number"}},
    {"max_header_size", {"999", "must be at least 1000"}},
    {"message_memory_budget", {"lots", "expected a size such as"}},
    {"max_recipients", {"0", "expected a positive number"}},
    {"max_hops", {"0", "expected a positive number"}},
    {"allow_untrusted_routing", {"sometimes", "expected yes or no"}},
    {"max_line_length", {"big", "expected a size"}},
    {"smtpd_timeout", {"500ms", "expected a duration >= 1s"}},
    {"max_sessions", {"0", "expected a positive number"}},
    {"MAXDAEMONS", {"many", "expected a positive number"}},
    {"MAXPERIP", {"-1", "expected a number (0 = no limit)"}},
    {"MAXPERC", {"x", "expected a number (0 = no limit)"}},
    {"smtpaccess", {"/nonexistent/smtpaccess", "cannot open"}},
    {"esmtpd_processes", {"0", "expected auto or a number from 1 to 256"}},
    {"queue_backend", {"rocksdb", "expected segment or file"}},
    {"queue_verify_bodies", {"sometimes", "expected yes or no"}},
    {"courierd_notify_backlog", {"0", "expected a positive number"}},
    {"rdns_check", {"perhaps", "expected yes or no"}},
    {"dnsbl", {"/nonexistent/dnsbl", "cannot open"}},
    {"dnsbl_threshold", {"0", "expected a positive number"}},
    {"dnsbl_action", {"drop", "expected reject_rcpt or reject_greeting"}},
    {"ident_check", {"2", "expected yes or no"}},
    {"ident_timeout", {"soon", "expected a duration such as"}},
    {"greet_wait", {"-1s", "expected a duration such as"}},
    {"BOFHCHECKDNS", {"x", "expected yes or no"}},
    {"dns_cache_size", {"-1", "expected a number (0 = no limit)"}},
    {"filters",
     {"inet:8891@127.0.0.1",
      "expected milter:SOCKET, module:PATH, module-inline:PATH, module-isolated:PATH or "
      "policy:SOCKET"}},
    {"milter_default_action", {"discard", "expected tempfail, accept or reject"}},
    {"milter_connect_timeout", {"x", "expected a duration"}},
    {"milter_command_timeout", {"x", "expected a duration"}},
    {"milter_content_timeout", {"x", "expected a duration"}},
    {"filter_callback_warn_time", {"soon", "expected a duration"}},
    {"policy_timeout", {"x", "expected a duration"}},
    {"policy_default_action", {"", "expected an action"}},
    {"local_mailboxes", {"all", "expected create, existing or system"}},
    {"local_transport",
     {"lmtp:unix:run/lmtp", "the LMTP socket must be an absolute path (lmtp:unix:/path)"}},
    {"smarthost", {"host:0", "bad smarthost"}},
    {"esmtproutes", {"/nonexistent/routes", "cannot open"}},
    {"max_mailbox_message_size", {"x", "expected a size"}},
    {"allow_program_delivery", {"x", "expected yes or no"}},
    {"program_user", {"root", "must name a user other than root"}},
    {"submit_allowed_users", {"alice, @", "bad user or @group '@'"}},
    {"program_timeout", {"0", "expected a duration >= 1s"}},
    {"MAXDELS", {"lots", "expected a positive number"}},
    {"MAXHOST", {"0", "expected a positive number"}},
    {"initial_host_concurrency", {"0", "expected a positive number"}},
    {"MAXRCPT", {"0", "expected a positive number"}},
    {"retry_base", {"soon", "expected a duration"}},
    {"retry_max", {"5y", "expected a duration"}},
    {"host_backoff", {"x", "expected a duration"}},
    {"queue_lifetime", {"0", "expected a duration >= 1s"}},
    {"queuetime", {"0", "expected a duration >= 1s"}},
    {"warntime", {"later", "expected a duration"}},
    {"destinations", {"/nonexistent/destinations", "cannot open"}},
    {"local_processes", {"0", "expected auto or a number"}},
    {"esmtpclient_processes", {"257", "expected auto or a number"}},
    {"esmtp_port", {"65536", "expected a port number"}},
    {"connect_timeout", {"0", "expected a duration >= 1s"}},
    {"greeting_timeout", {"0", "expected a duration >= 1s"}},
    {"mail_timeout", {"0", "expected a duration >= 1s"}},
    {"rcpt_timeout", {"0", "expected a duration >= 1s"}},
    {"data_timeout", {"0", "expected a duration >= 1s"}},
    {"data_block_timeout", {"0", "expected a duration >= 1s"}},
    {"data_end_timeout", {"0", "expected a duration >= 1s"}},
    {"idle_reuse", {"0", "expected a duration >= 1s"}},
    {"dns_servers", {"127.0.0.1:0", "bad address '127.0.0.1:0'"}},
    {"tls_policy",
     {"sts", "expected none, may, dane, encrypt, dane-only, verify, secure or mta-sts"}},
    {"tls_ca_file", {"a.pem b.pem", "expected one file"}},
    {"tls_fallback_time", {"soon", "expected a duration"}},
    {"client_credentials", {"a b", "expected one file"}},
    {"client_auth_plaintext", {"perhaps", "expected yes or no"}},
    {"dns_timeout", {"x", "expected a duration"}},
    {"dns_tries", {"11", "expected 1 to 10"}},
    {"session_deadline", {"0", "expected a duration >= 1s"}},
    {"greet_pause", {"soon", "expected a duration"}},
    {"smtpd_junk_command_limit", {"-1", "expected a number (0 = no limit)"}},
    {"ipv6_prefix_length", {"129", "expected 1 to 128"}},
    {"tls_cert_file", {"a.pem, a.pem", "'a.pem' listed twice"}},
    {"tls_key_file", {"k.pem k.pem", "'k.pem' listed twice"}},
    {"tls_protocols", {"SSLv3", "unknown protocol 'SSLv3'"}},
    {"tls_ciphers", {"HIGH;!aNULL", "unexpected character ';'"}},
    {"tls_ciphersuites", {"TLS_AES_256_GCM_SHA384$", "unexpected character '$'"}},
    {"tls_groups", {"X25519/P-256", "unexpected character '/'"}},
    {"tls_session_tickets", {"maybe", "expected yes or no"}},
    {"tls_session_timeout", {"0", "expected a duration >= 1s"}},
    {"tls_handshake_timeout", {"500ms", "expected a duration >= 1s"}},
    {"tls_client_ca_file", {"ca.pem, other.pem", "expected one file"}},
    {"mta_sts", {"maybe", "expected yes or no"}},
    {"mta_sts_timeout", {"0", "expected a duration >= 1s"}},
    {"mta_sts_cache_size", {"0", "expected a positive number"}},
    {"tls_reporting", {"daily", "expected yes or no"}},
    {"metrics_listen", {"host:0", "expected host[:port]"}},
    {"tls_report_contact", {"postmaster", "expected a mailbox"}},
    {"tls_report_organization", {"caf\xc3\xa9", "printable ASCII only"}},
    {"relay_clientcerts", {"a b", "expected one file"}},
    {"auth_backend", {"ldap:x", "expected file:PATH or dovecot:SOCKET"}},
    {"auth_allow_plaintext", {"sure", "expected yes or no"}},
    {"auth_fail_limit", {"-1", "expected a number (0 = no limit)"}},
    {"auth_fail_window", {"forever", "expected a duration"}},
};
// Paths that only lib/routing's Router (or lib/auth) reads, and paths made at run time: any
// value is taken.
const std::set<std::string> kAnyValue = {"maildir_root",    "log_file",         "locals",
                                         "hosteddomains",   "hosted_mailboxes", "aliases",
                                         "sender_login_map"};

class ConfigSettingBad : public ::testing::TestWithParam<std::string> {};

TEST_P(ConfigSettingBad, RejectedWithFileLineAndReason) {
  const std::string& name = GetParam();
  if (kAnyValue.count(name)) {
    EXPECT_EQ(kBad.count(name), 0u) << name;
    EXPECT_NO_THROW(parse_config(name + " = anything/at/all\n", "t.conf", "/tmp")) << name;
    return;
  }
  auto bad = kBad.find(name);
  ASSERT_NE(bad, kBad.end()) << "no bad value for " << name << " in kBad";
  std::string text = "# line 1\n" + name + " = " + bad->second.first + "  # why\n";
  try {
    parse_config(text, "bad.conf", "/tmp");
    FAIL() << "accepted: " << text;
  } catch (const ConfigError& e) {
    std::string what = e.what();
    std::string prefix = "bad.conf:2: " + name + ": ";
    EXPECT_EQ(what.substr(0, prefix.size()), prefix) << what;
    EXPECT_NE(what.find(bad->second.second), std::string::npos) << what;
  }
}
INSTANTIATE_TEST_SUITE_P(Table, ConfigSettingBad, ::testing::ValuesIn(names()));

TEST(ConfigSettings, MessageMemoryBudgetHoldsAMaximalMessage) {
  EXPECT_THROW(
      parse_config("max_message_size = 20M\nmessage_memory_budget = 10M\n", "t.conf", "/tmp"),
      ConfigError);
  EXPECT_EQ(parse_config("message_memory_budget = 0\n", "t.conf", "/tmp").message_memory_budget,
            0u);
  Config c = parse_config("", "t.conf", "/tmp");
  EXPECT_EQ(c.max_header_count, 1000u);
  EXPECT_EQ(c.max_header_size, 102400u);
  EXPECT_EQ(c.message_memory_budget, 256u << 20);
}

TEST(ConfigSettings, TlsProtocolsAreARange) {
  EXPECT_EQ(join(parse_config("tls_protocols = TLSv1.3, TLSv1.2\n", "t", "/").tls_protocols),
            "TLSv1.2,TLSv1.3,");
  EXPECT_EQ(join(parse_config("tls_protocols = TLSv1.3\n", "t", "/").tls_protocols), "TLSv1.3,");
  EXPECT_THROW(parse_config("tls_protocols = TLSv1 TLSv1.3\n", "t", "/"), ConfigError);
  EXPECT_EQ(join(parse_config("", "t", "/").tls_protocols), "TLSv1.2,TLSv1.3,");
}

TEST(ConfigSettings, TlsCrossChecks) {
  // A key per certificate, or none (the keys are in the cert files).
  EXPECT_NO_THROW(parse_config("tls_cert_file = a.pem b.pem\n", "t", "/"));
  EXPECT_THROW(parse_config("tls_cert_file = a.pem b.pem\ntls_key_file = a.key\n", "t", "/"),
               ConfigError);
  // Port 465 is TLS from the first byte: it needs a certificate.
  EXPECT_THROW(parse_config("listen = 127.0.0.1:465 submissions\n", "t", "/"), ConfigError);
  EXPECT_NO_THROW(parse_config(
      "listen = 127.0.0.1:465 submissions\ntls_cert_file = a.pem\nauth_backend = file:p\n", "t",
      "/"));
  // tls_required needs a certificate too.
  EXPECT_THROW(parse_config("listen = 127.0.0.1:25 mx tls_required\n", "t", "/"), ConfigError);
}

TEST(ConfigSettings, AuthCrossChecks) {
  // Submission roles and the auth option need an auth backend; mx alone does not.
  EXPECT_NO_THROW(parse_config("listen = 127.0.0.1:25\n", "t", "/"));
  for (const char* listen : {"127.0.0.1:587 submission", "127.0.0.1:25 mx auth"}) {
    std::string text = std::string("listen = ") + listen + "\n";
    try {
      parse_config(text, "t", "/");
      ADD_FAILURE() << listen << " accepted without auth_backend";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("needs an auth_backend"), std::string::npos) << e.what();
    }
    EXPECT_NO_THROW(
        parse_config(text + "auth_backend = dovecot:/run/dovecot/auth-client\n", "t", "/"));
  }
  auto c = parse_config("auth_backend = dovecot:auth\n", "t", "/etc/estafette");
  EXPECT_EQ(c.auth_backend, "dovecot:/etc/estafette/auth");
  EXPECT_EQ(c.auth_fail_limit, 10u);
  EXPECT_EQ(c.auth_fail_window, Seconds(600));
  EXPECT_FALSE(c.auth_allow_plaintext);
}

TEST(ConfigSettings, EveryBadCaseIsASetting) {
  for (const auto& [name, bad] : kBad) EXPECT_NE(find_setting(name), nullptr) << name;
}

TEST(ConfigSettings, AliasesAreTheSameSetting) {
  int aliases = 0;
  for (const auto& s : settings()) {
    if (s.alias.empty()) continue;
    ++aliases;
    EXPECT_EQ(find_setting(s.alias), &s);
  }
  EXPECT_GE(aliases, 2);
  EXPECT_EQ(find_setting("queuetime")->name, "queue_lifetime");
  EXPECT_EQ(find_setting("MAXDAEMONS")->name, "max_sessions");
  EXPECT_EQ(parse_config("queuetime = 2d\n", "t.conf", "/tmp").queue_lifetime.count(), 2 * 86400);
  EXPECT_EQ(describe(parse_config("queuetime = 2d\n", "t.conf", "/tmp")),
            describe(parse_config("queue_lifetime = 2d\n", "t.conf", "/tmp")));
  EXPECT_EQ(describe(parse_config("MAXDAEMONS = 7\n", "t.conf", "/tmp")),
            describe(parse_config("max_sessions = 7\n", "t.conf", "/tmp")));
  // The later line wins, whichever name it uses.
  EXPECT_EQ(parse_config("queue_lifetime = 1h\nqueuetime = 2h\n", "t.conf", "/tmp")
                .queue_lifetime.count(),
            7200);
}

TEST(ConfigSettings, ListingHasARowPerNameInColumns) {
  std::istringstream in(settings_listing());
  std::string header;
  std::getline(in, header);
  auto def_at = header.find("DEFAULT"), doc_at = header.find("DESCRIPTION");
  ASSERT_EQ(header.rfind("NAME", 0), 0u) << header;
  ASSERT_NE(def_at, std::string::npos);
  ASSERT_NE(doc_at, std::string::npos);
  auto expected = all_names();
  std::size_t row = 0;
  for (std::string line; std::getline(in, line); ++row) {
    ASSERT_LT(row, expected.size()) << line;
    const auto& [name, s] = expected[row];
    auto column = [&](std::size_t from, std::size_t to) {
      auto text = line.substr(from, to == std::string::npos ? to : to - from);
      return std::string(trim(text));
    };
    EXPECT_EQ(column(0, def_at), name) << line;
    EXPECT_EQ(column(def_at, doc_at), s->default_text()) << line;
    EXPECT_EQ(line.substr(def_at - 2, 2), "  ") << line;  // columns at least two blanks apart
    EXPECT_EQ(line.substr(doc_at - 2, 2), "  ") << line;
    std::string doc = column(doc_at, std::string::npos);
    if (name == s->name) {
      EXPECT_EQ(doc.rfind(std::string(s->doc), 0), 0u) << line;
    } else {
      EXPECT_EQ(doc, "The same as " + std::string(s->name) + ".") << line;
    }
    if (s->embedded && name == s->name) {
      EXPECT_NE(doc.find("Embedded default: " + std::string(*s->embedded)), std::string::npos);
    }
  }
  EXPECT_EQ(row, expected.size());
}

}  // namespace
}  // namespace estafette::config

namespace estafette::config {
namespace {

// `filters =`: entries split at commas and white space; a quoted entry carries a module's
// arguments.
struct FiltersCase {
  std::string value;
  std::string want;  // "kind:target[arg|arg]; ..." or "error: <start of the reason>"
};

std::string show(const std::vector<FilterSpec>& specs) {
  std::string out;
  for (const auto& f : specs) {
    out += (out.empty() ? "" : "; ") + f.kind + ":" + f.target;
    if (!f.args.empty()) {
      out += "[";
      for (std::size_t i = 0; i < f.args.size(); ++i) out += (i ? "|" : "") + f.args[i];
      out += "]";
    }
  }
  return out;
}

class ConfigFilters : public ::testing::TestWithParam<FiltersCase> {};

TEST_P(ConfigFilters, Parses) {
  std::string got;
  try {
    got = show(parse_filters(GetParam().value, "/etc/estafette", "conf:3"));
  } catch (const std::invalid_argument& e) {
    got = std::string("error: ") + e.what();
  }
  if (GetParam().want.starts_with("error: "))
    EXPECT_EQ(got.rfind(GetParam().want, 0), 0u) << got;
  else
    EXPECT_EQ(got, GetParam().want);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigFilters,
    ::testing::Values(
        FiltersCase{"", ""},
        FiltersCase{"milter:inet:8891@127.0.0.1, module:/x.so policy:unix:/p",
                    "milter:inet:8891@127.0.0.1; module:/x.so; policy:unix:/p"},
        FiltersCase{"module:x.so", "module:/etc/estafette/x.so"},
        FiltersCase{"\"module:/x.so -p inet:9999@127.0.0.1\", milter:unix:/m",
                    "module:/x.so[-p|inet:9999@127.0.0.1]; milter:unix:/m"},
        FiltersCase{"\"module:/x.so  -c a,b\tlast\"", "module:/x.so[-c|a,b|last]"},
        FiltersCase{"\"module:/x.so\"", "module:/x.so"},
        FiltersCase{"\"module:/a.so -v\",\"module:/b.so -w\"",
                    "module:/a.so[-v]; module:/b.so[-w]"},
        FiltersCase{
            "module:/x.so -p inet:9999@127.0.0.1",
            "error: expected milter:SOCKET, module:PATH, module-inline:PATH, "
            "module-isolated:PATH or policy:SOCKET (policy-data:SOCKET, policy-eom:SOCKET), not "
            "'-p' (arguments of a module go inside quotes with it: \"module:/x.so -p ...\")"},
        FiltersCase{"module-isolated:x.so", "module-isolated:/etc/estafette/x.so"},
        FiltersCase{"\"module-inline:x.so -v\"", "module-inline:/etc/estafette/x.so[-v]"},
        FiltersCase{"\"module-isolated:/x.so -v\", module:/y.so",
                    "module-isolated:/x.so[-v]; module:/y.so"},
        FiltersCase{"module-isolated:/x.so -v",
                    "error: expected milter:SOCKET, module:PATH, module-inline:PATH, "
                    "module-isolated:PATH or policy:SOCKET (policy-data:SOCKET, "
                    "policy-eom:SOCKET), not '-v' (arguments of a module go inside quotes with "
                    "it: \"module-isolated:/x.so -v ...\")"},
        FiltersCase{"\"module:/x.so -p", "error: a quoted entry without its closing quote"},
        FiltersCase{"\"  \"", "error: an empty quoted entry"},
        FiltersCase{"\"module:/x.so -p\"x", "error: text right after a quoted entry"},
        FiltersCase{"module:\"/x y.so\"", "error: a quote inside an entry"},
        FiltersCase{"\"milter:inet:1@127.0.0.1 -p\"",
                    "error: only a module takes arguments, not 'milter:inet:1@127.0.0.1'"},
        FiltersCase{"inet:8891@127.0.0.1", "error: expected milter:SOCKET"}));

}  // namespace
}  // namespace estafette::config
