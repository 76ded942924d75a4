#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

namespace chansim {
namespace {

std::atomic<int> g_override{0};

int default_threads() {
  if (const char* env = std::getenv("CHANSIM_NUM_THREADS")) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    if (end != env && v >= 1 && v <= 1024) return static_cast<int>(v);
  }
  const unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(std::min(hc, 1024u));
}

}  // namespace

int num_threads() {
  const int o = g_override.load(std::memory_order_relaxed);
  return o >= 1 ? o : default_threads();
}

void set_num_threads(int n) { g_override.store(n >= 1 ? std::min(n, 1024) : 0, std::memory_order_relaxed); }

void parallel_for(std::size_t n, std::size_t grain, std::size_t align,
                  const std::function<void(std::size_t, std::size_t)>& fn) {
  if (n == 0) return;
  if (align == 0) align = 1;
  grain = std::max<std::size_t>(grain, 1);
  const std::size_t max_parts = std::max<std::size_t>(1, n / grain);
  const std::size_t parts = std::min<std::size_t>(static_cast<std::size_t>(num_threads()), max_parts);
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  std::size_t per = (n + parts - 1) / parts;
  per = (per + align - 1) / align * align;
  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors(parts);
  workers.reserve(parts - 1);
  for (std::size_t t = 1; t < parts; ++t) {
    const std::size_t b = std::min(n, t * per), e = std::min(n, (t + 1) * per);
    if (b >= e) break;
    workers.emplace_back([&, t, b, e] {
      try {
        fn(b, e);
      } catch (...) {
        errors[t] = std::current_exception();
      }
    });
  }
  try {
    fn(0, std::min(n, per));
  } catch (...) {
    errors[0] = std::current_exception();
  }
  for (auto& w : workers) w.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace chansim
