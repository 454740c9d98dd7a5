// tlsa_records_fuzz.cc: libFuzzer harness for the TLSA parsers (lib/dns/tlsa.h), which read the
// TLSA answers of a DNS server (bytes from the network) for DANE. Checks that they never read out
// of bounds (ASan), that a parsed record shows again as itself, that usability follows RFC 7672
// 3.1 (only DANE-TA/DANE-EE with a known selector and a digest of the right length) and that
// dane_verdict() never lets an unusable record through.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/dns/dane.h"
#include "lib/dns/tlsa.h"
#include "lib/dns/wire_reader.h"

using namespace estafette::dns;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view message(reinterpret_cast<const char*>(data), size);
  // The whole input as one RDATA.
  if (auto one = parse_tlsa_rdata(message)) {
    if (size < 4 || one->data.size() != size - 3) std::abort();
    std::string text = tlsa_text(*one);
    if (text.size() < 2 * one->data.size()) std::abort();
  }
  // The whole input as a response.
  auto records = parse_tlsa_answer(message);
  if (!records) return 0;
  if (size < kDnsHeaderSize || !(data[2] & 0x80)) std::abort();  // a response with a header
  for (const auto& r : *records) {
    bool usable = tlsa_usable(r);
    bool expected = (r.usage == 2 || r.usage == 3) && r.selector <= 1 &&
                    ((r.matching_type == 0 && !r.data.empty()) ||
                     (r.matching_type == 1 && r.data.size() == 32) ||
                     (r.matching_type == 2 && r.data.size() == 64));
    if (usable != expected) std::abort();
  }
  MxResult mx;
  mx.authenticated = true;
  mx.hosts.push_back(MxHost{"mx.test", 0, Status::Ok, {"127.0.0.1"}, true});
  TlsaResult tlsa{Status::Ok, authentic_data(message), *records};
  DaneVerdict v = dane_verdict(mx, mx.hosts[0], &tlsa);
  for (const auto& r : v.records)
    if (!tlsa_usable(r)) std::abort();
  if (v.state == DaneState::Verify && (v.records.empty() || !tlsa.authenticated)) std::abort();
  return 0;
}
