// Thread count and a blocking parallel-for over index ranges.
//
// Results never depend on the thread count: every kernel that uses this writes
// element i from its address alone, so splitting the range is only a schedule.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace chansim {

// Threads used by native calls: set_num_threads(n) if called with n >= 1,
// else CHANSIM_NUM_THREADS, else std::thread::hardware_concurrency().
int num_threads();
void set_num_threads(int n);  // n <= 0 restores the default

// Calls fn(begin, end) on disjoint ranges covering [0, n). Range boundaries are
// multiples of `align`; no range is shorter than `grain` unless n is.
void parallel_for(std::size_t n, std::size_t grain, std::size_t align,
                  const std::function<void(std::size_t, std::size_t)>& fn);

}  // namespace chansim
