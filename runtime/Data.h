#pragma once
// Data sources named in train blocks, and their train/validation/test
// splits.

#include "runtime/Plan.h"

#include <torch/torch.h>

#include <map>
#include <ostream>
#include <string>

namespace unroll::runtime {

/// synthetic_sparse: a Gaussian dictionary with unit-norm columns,
/// Bernoulli-Gaussian codes and noisy measurements x = D y + noise.
struct SparseCodingData {
  torch::Tensor x;     // [n, p]
  torch::Tensor D;     // [p, d]
  torch::Tensor codes; // [n, d], the codes that generated x
};

/// Same seed, same data. `density` is the probability that a code entry is
/// non-zero; `noise` the standard deviation added to each measurement.
SparseCodingData syntheticSparse(int64_t n, int64_t p, int64_t d,
                                 double density, double noise, uint64_t seed);

/// Reads an IDX file (gzip-compressed or not) as a uint8 tensor with the
/// file's dimensions. Throws FileError on a missing, truncated or malformed
/// file.
torch::Tensor readIdx(const std::string &path);

/// The inputs of an algorithm for one split: data inputs as
/// [n, shape...], given inputs as [shape...].
struct Split {
  std::map<std::string, torch::Tensor> inputs;
  int64_t size = 0;
  /// The target per instance where the data source gives it ([n, shape]);
  /// undefined where a classical solver computes it.
  torch::Tensor target;
};

struct Dataset {
  Split train, validation, test;
};

/// Builds the splits from the plan's `train.data` sources:
///   synthetic_sparse(n, density = 0.1, noise = 0.01): n training instances
///     plus n/10 (at least 1) each for validation and test, sharing one
///     dictionary; needs one data input [p] and one given input [p, d].
///   fashion_mnist(mask = center, n = 54000, path = DIR): images in [0, 1];
///     validation is the last 6000 training images, test the t10k file; the
///     given input is the mask (1 observed, 0 missing: a centred square of
///     half the side, or with mask = random each pixel missing with
///     probability 1/2, one mask drawn from the seed for all images), the
///     first data input the masked image, the second (if any) the clean
///     image.
///   synthetic_federated(samples, n = 200, heldout = 40, graph = random |
///     ring | complete, seed): n training instances plus heldout ones
///     (half validation, half test), each a federated softmax
///     classification: Gaussian features X [agents, samples, features] and
///     one-hot labels Y drawn from a Gaussian classifier (with a bias) that
///     all of the instance's agents share; the given input is the graph's
///     adjacency matrix over its largest eigenvalue (a random graph is a
///     ring plus each other edge with probability 2 ln(agents) / agents).
///   synthetic_piecewise(n, jumps = 4, noise = 0.1, seed): n training
///     instances plus n/10 (at least 1) each for validation and test, each
///     a piecewise-constant signal of `jumps` jumps at random positions
///     between levels drawn from U(-1, 1); the first data input [d] is the
///     signal plus Gaussian noise of standard deviation `noise`, the
///     second (if any) the clean signal.
///   npy(dir, NAME = FILE, valid = 0.1, test = 0.1): the user's arrays
///     (readNpy): for each data input a file of [N, shape...], for each
///     given input one of [shape...], and for the target (if its file is
///     named or in dir) one of [N, shape...]; a file named NAME = FILE, or
///     else dir/NAME.npy. The first instances train, the next `valid`
///     share validate, the last `test` share test; or, where dir holds
///     train/, valid/ and test/ subdirectories, each split's per-instance
///     files come from its own (given ones from dir or dir/train).
/// Same seed, same data. Throws PlanError (unknown source, inputs that do
/// not fit) or FileError (missing or corrupt files).
Dataset loadDataset(const Algorithm &alg, uint64_t seed);

/// Writes the given inputs of `split` to RUN_DIR/given.safetensors (by
/// name, float32), atomically; nothing for a plan without given inputs.
void writeGivenValues(const std::string &runDir, const Algorithm &alg,
                      const Split &split);

/// Replaces the given inputs of every split of `data` by those a run
/// recorded in RUN_DIR/given.safetensors, logging each that differs from
/// the source's now; false (and nothing changed) where the run has none.
/// Throws FileError on a damaged file or one that does not fit the plan.
bool useRecordedGivenValues(const std::string &runDir, const Algorithm &alg,
                            Dataset &data, std::ostream &log);

} // namespace unroll::runtime
