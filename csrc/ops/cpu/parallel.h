// Minimal fork-join parallel loop over std::thread, used by every CPU kernel.
// Threads are spawned per call (tens of microseconds); callers pass a grain so that small problems
// stay on the calling thread.
#pragma once

#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <thread>
#include <vector>

namespace fhsdk {
namespace cpu {

// Cores this process may run on (respects taskset/cgroup affinity), overridable by FHSDK_NUM_THREADS.
inline int default_num_threads() {
  if (const char* env = std::getenv("FHSDK_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

// Calls fn(begin, end) on disjoint ranges covering [0, n), using at most num_threads threads
// (<= 0: default_num_threads()) and at least `grain` items per thread.
template <class Fn>
void parallel_for(std::int64_t n, std::int64_t grain, int num_threads, Fn&& fn) {
  if (n <= 0) return;
  const std::int64_t useful = n / std::max<std::int64_t>(1, grain);
  // One grain of work: run inline without asking the OS for the core count (a syscall per call).
  const std::int64_t threads =
      useful <= 1 ? 1 : std::min<std::int64_t>(num_threads > 0 ? num_threads : default_num_threads(), useful);
  if (threads <= 1) {
    fn(std::int64_t(0), n);
    return;
  }
  const std::int64_t chunk = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (std::int64_t t = 1; t < threads; ++t) {
    const std::int64_t b = t * chunk, e = std::min(n, b + chunk);
    if (b < e) pool.emplace_back([&fn, b, e] { fn(b, e); });
  }
  fn(std::int64_t(0), std::min(n, chunk));  // the calling thread takes the first chunk
  for (auto& th : pool) th.join();
}

}  // namespace cpu
}  // namespace fhsdk
