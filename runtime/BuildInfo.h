#pragma once
#include <string>

namespace unroll::runtime {

/// Describes the LibTorch this runtime was built against, after exercising it
/// once (a small tensor reduction) so a broken install shows up here.
std::string describeTorch();

/// Gives LibTorch one intra-op thread per hardware thread unless
/// OMP_NUM_THREADS says otherwise (it may otherwise count physical cores
/// and use one thread on a small VM). Returns the thread count in use.
int useAllCores();

} // namespace unroll::runtime
