#pragma once
#include <string>

namespace unroll::runtime {

/// Describes the LibTorch this runtime was built against, after exercising it
/// once (a small tensor reduction) so a broken install shows up here.
std::string describeTorch();

} // namespace unroll::runtime
