#include "runtime/BuildInfo.h"

#include <torch/torch.h>

#include <cstdlib>
#include <sstream>
#include <thread>

namespace unroll::runtime {

std::string describeTorch() {
  torch::Tensor t = torch::ones({2, 3});
  std::ostringstream os;
  os << "LibTorch " << TORCH_VERSION << " (check sum " << t.sum().item<float>()
     << ", CUDA " << (torch::cuda::is_available() ? "available" : "absent")
     << ")";
  return os.str();
}

int useAllCores() {
  const char *env = std::getenv("OMP_NUM_THREADS");
  unsigned n = std::thread::hardware_concurrency();
  if ((!env || !*env) && n > 0)
    torch::set_num_threads(static_cast<int>(n));
  return torch::get_num_threads();
}

} // namespace unroll::runtime
