#include "runtime/BuildInfo.h"

#include <torch/torch.h>

#include <sstream>

namespace unroll::runtime {

std::string describeTorch() {
  torch::Tensor t = torch::ones({2, 3});
  std::ostringstream os;
  os << "LibTorch " << TORCH_VERSION << " (check sum " << t.sum().item<float>()
     << ", CUDA " << (torch::cuda::is_available() ? "available" : "absent")
     << ")";
  return os.str();
}

} // namespace unroll::runtime
