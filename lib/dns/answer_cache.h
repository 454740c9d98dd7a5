// answer_cache.h: the Resolver's bounded cache of raw DNS responses, keyed by (name lower-cased,
// record type). Each entry keeps the whole response and its c-ares status (success, NXDOMAIN or
// NODATA) until its expiry (answer_ttl.h decides for how long); temporary failures are never
// stored. When full, the least recently used entry goes: find and insert are O(1).
// Loop thread only (owned by one Resolver); time is passed in, so it is tested without clocks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace estafette::dns {

class AnswerCache final {
 public:
  using Clock = std::chrono::steady_clock;

  struct Entry {
    int status = 0;      // the c-ares status the response came with
    std::string answer;  // the whole response message
    Clock::time_point expires;
  };

  explicit AnswerCache(std::size_t capacity) : capacity_(capacity) {}
  AnswerCache(const AnswerCache&) = delete;
  AnswerCache& operator=(const AnswerCache&) = delete;

  static std::string key(std::string_view name, int type);

  // The live entry for key (now marked most recently used), or nullptr; drops an expired one.
  const Entry* find(const std::string& key, Clock::time_point now);
  // Stores or replaces; evicts the least recently used entry when full. Nothing when capacity 0
  // or when expires is not after now.
  void insert(const std::string& key, int status, std::string_view answer,
              Clock::time_point expires, Clock::time_point now);

  std::size_t size() const { return index_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  struct Node {
    std::string key;
    Entry entry;
  };
  std::size_t capacity_;
  std::list<Node> lru_;  // front: most recently used
  std::unordered_map<std::string_view, std::list<Node>::iterator> index_;  // views into lru_ keys
};

}  // namespace estafette::dns
