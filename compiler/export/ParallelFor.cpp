#include "compiler/export/ParallelFor.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace unroll::compiler {

void parallelFor(int64_t count, int64_t jobs,
                 const std::function<void(int64_t)> &fn) {
  if (count <= 0)
    return;
  std::atomic<int64_t> next{0};
  std::mutex mutex;
  std::exception_ptr error;
  auto work = [&] {
    for (int64_t i = next++; i < count; i = next++) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error)
          error = std::current_exception();
        // The others stop after their current item.
        next = count;
      }
    }
  };
  const int64_t hardware =
      std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t threads = std::min(jobs > 0 ? jobs : hardware, count);
  std::vector<std::thread> pool;
  for (int64_t j = 1; j < threads; ++j)
    pool.emplace_back(work);
  work();
  for (std::thread &t : pool)
    t.join();
  if (error)
    std::rethrow_exception(error);
}

} // namespace unroll::compiler
