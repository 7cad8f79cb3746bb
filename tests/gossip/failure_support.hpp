#pragma once
// What the rerouting tests share: a transport that reports failed peers one
// by one, and a wait for the victim's thread to have died.
#include <terse/core/verbs.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace gossip_test {

inline terse::transport_options per_peer()
{
  using namespace std::chrono_literals;
  return {.timeout = 5s, .checked = true, .failures = terse::failure_scope::peer};
}

inline void wait_for(const std::atomic<int>& count, int target)
{
  while (count.load() < target) {
    std::this_thread::yield();
  }
}

}  // namespace gossip_test
