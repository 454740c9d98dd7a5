#include "lib/dns/answer_cache.h"

namespace estafette::dns {

std::string AnswerCache::key(std::string_view name, int type) {
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  std::string k;
  k.reserve(name.size() + 8);
  for (char c : name) k += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  k += '/';
  k += std::to_string(type);
  return k;
}

const AnswerCache::Entry* AnswerCache::find(const std::string& key, Clock::time_point now) {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  auto node = it->second;
  if (node->entry.expires <= now) {
    index_.erase(it);
    lru_.erase(node);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, node);
  return &node->entry;
}

void AnswerCache::insert(const std::string& key, int status, std::string_view answer,
                         Clock::time_point expires, Clock::time_point now) {
  if (capacity_ == 0 || expires <= now) return;
  auto it = index_.find(key);
  if (it != index_.end()) {
    auto node = it->second;
    node->entry = Entry{status, std::string(answer), expires};
    lru_.splice(lru_.begin(), lru_, node);
    return;
  }
  if (index_.size() >= capacity_) {
    index_.erase(std::string_view(lru_.back().key));
    lru_.pop_back();
  }
  lru_.push_front(Node{key, Entry{status, std::string(answer), expires}});
  index_.emplace(std::string_view(lru_.front().key), lru_.begin());
}

}  // namespace estafette::dns
