// The schedules of the inference lowering, for the CPU and for CUDA: stored
// values, products (computed in the tiles of the layer output that reads
// them where they can be), reductions and convolutions.
#include "compiler/export/Lowering.h"

#include "compiler/kernels/CudaKernels.h"
#include "compiler/kernels/HalideKernels.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace unroll::compiler::lowering {

void scheduleStored(const HV &v, const Halide::Target &t, int batchTasks) {
  Func f = v.f;
  f.compute_root();
  if (t.has_gpu_feature()) {
    scheduleForGpu(f);
    return;
  }
  std::vector<Var> args = f.args();
  if (args.empty())
    return; // one shared number
  if (!v.shape.empty()) {
    // Vectors that fit the innermost axis, the last one shifted inwards
    // (overlapping the one before): guarded instead, a vector that holds
    // fewer elements than its lanes has its inline sums computed one
    // element at a time. SURF's per-agent products (10 columns) ran at
    // scalar speed so.
    const int n = static_cast<int>(v.shape.back());
    f.bound(args[0], 0, n);
    int lanes = t.natural_vector_size<float>();
    while (lanes > n)
      lanes /= 2;
    if (lanes > 1)
      f.vectorize(args[0], lanes, Halide::TailStrategy::ShiftInwards);
  }
  if (args.size() > 2) {
    // A batch of one instance uses every thread too.
    Var tasks("tasks");
    int64_t row = 1;
    for (size_t k = 0; k + 2 < args.size(); ++k)
      row *= v.shape[v.shape.size() - 1 - k];
    const int rowsPerTask = static_cast<int>(
        std::max<int64_t>(1, kTaskElements / std::max<int64_t>(1, row)));
    f.fuse(args[args.size() - 2], args.back(), tasks)
        .parallel(tasks, rowsPerTask, Halide::TailStrategy::GuardWithIf);
  } else if (args.size() == 2) {
    f.parallel(args.back(), batchTasks, Halide::TailStrategy::GuardWithIf);
  }
  if (v.shape.empty()) // values per instance: vectors of instances
    f.vectorize(args[0], t.natural_vector_size<float>(),
                Halide::TailStrategy::GuardWithIf);
}

/// Every schedule of the pipeline: the products', the other
/// reductions', then the layer outputs'.
std::vector<std::function<void(const Halide::Target &)>> Lowering::schedules() {
  std::vector<bool> inTiles(products_.size(), false);
  for (const Output &o : outputs_)
    for (size_t p : o.absorbed)
      inTiles[p] = true;
  std::vector<std::function<void(const Halide::Target &)>> out;
  Expr batch = batch_;
  for (size_t p = 0; p < products_.size(); ++p) {
    Product prod = products_[p];
    bool absorbed = inTiles[p];
    out.push_back([prod, absorbed, batch](const Halide::Target &t) mutable {
      const bool gpu = t.has_gpu_feature();
      if (absorbed && !gpu)
        return; // the output's tiles compute it
      // Exact bounds: the columns' extent inferred from readers that
      // decode column numbers does not simplify, and the register tile
      // needs to know its blocks have 8 columns.
      const Expr columns =
          batch.defined() ? batch * static_cast<int>(prod.columns) : Expr();
      prod.out.bound(prod.out.args()[0], 0, static_cast<int>(prod.rows));
      if (columns.defined())
        prod.out.bound(prod.col, 0, columns);
      if (gpu) {
        // One GPU thread per output, summing over k on its own.
        if (!prod.constant) {
          prod.packed.compute_root().bound(prod.panel, 0, prod.panels);
          scheduleForGpu(prod.packed);
        }
        prod.out.compute_root();
        Var thread = scheduleForGpu(prod.out);
        prod.acc.compute_at(prod.out, thread);
      } else {
        tile(prod.out, {prod}, t, columns);
      }
    });
  }
  // The reductions are vectorised with the inline sums (every reduction
  // here is one): scalar sums would leave the vector units idle.
  for (const HV &v : reductions_)
    out.push_back([v](const Halide::Target &t) { scheduleStored(v, t); });
  for (const Conv &c : convs_)
    out.push_back([c](const Halide::Target &t) { scheduleConv(c, t); });
  for (const HV &v : operands_)
    out.push_back([v](const Halide::Target &t) { scheduleStored(v, t, 16); });
  for (const Output &o : outputs_) {
    Output output = o;
    std::vector<Product> parts;
    for (size_t p : o.absorbed)
      parts.push_back(products_[p]);
    out.push_back([output, parts, batch](const Halide::Target &t) mutable {
      if (!t.has_gpu_feature() && !parts.empty())
        tile(output.v.f, parts, t, batch);
      else // tasks of 16 instances of a vector: one row is too little
        scheduleStored(output.v, t, 16);
    });
  }
  return out;
}

/// Computes `owner` (rows by columns: a layer output's vector per
/// instance, or a product's columns, `batch` of them if defined) in tiles
/// of one panel's rows by 8 columns, and inside each tile the sums of
/// `parts` (products with the same rows) in registers over their whole k
/// loops, each streaming its packed panel.
void Lowering::tile(Func owner, const std::vector<Product> &parts,
                    const Halide::Target &t, const Expr &batch) {
  const int vec = t.natural_vector_size<float>();
  const auto guard = Halide::TailStrategy::GuardWithIf;
  Var i = owner.args()[0], b = owner.args()[1];
  Var io("io"), ii("ii"), bo("bo"), bi("bi");
  // Tiles start at multiples of kPanelRows: one tile, one panel.
  // From kRowParallelBatch instances on, the last block of instances
  // shifts inwards (recomputing some) so that every tile has 8 and the
  // register tile carries no guards; below, it is guarded and the
  // tiles of rows are shared among the threads instead of the blocks
  // of instances, which are too few to keep them busy.
  auto tileRows = [&](Halide::Stage s, Halide::TailStrategy instances) {
    s.split(i, io, ii, kPanelRows, guard)
        .split(b, bo, bi, 8, instances)
        .reorder(ii, bi, io, bo)
        .vectorize(ii, vec, guard)
        .unroll(ii)
        .unroll(bi);
  };
  owner.compute_root();
  if (batch.defined()) {
    Halide::Stage small = owner.specialize(batch < kRowParallelBatch);
    tileRows(small, guard);
    small.parallel(io);
    tileRows(owner, Halide::TailStrategy::ShiftInwards);
    // Tasks of several blocks of columns where a block is little work
    // (SURF's: a few microseconds, about what the thread pool takes to
    // hand a task out), yet at least 16 tasks.
    int64_t blockWork = 0;
    for (const Product &p : parts)
      blockWork += p.panels * kPanelRows * 8 * p.depth;
    const int perTask = static_cast<int>(std::max<int64_t>(
        1, kTaskMultiplyAdds / std::max<int64_t>(1, blockWork)));
    Var task("task");
    owner
        .split(bo, task, bo,
               Halide::max(1, Halide::min(perTask, batch / (8 * 16))),
               Halide::TailStrategy::GuardWithIf)
        .parallel(task);
  } else {
    // No input is per instance (the layers read no data and the initial
    // state is not drawn): the batch is only the output's extent, which
    // may be below a block.
    tileRows(owner, guard);
    owner.parallel(io);
  }
  for (Product p : parts) {
    if (!p.constant)
      p.packed.compute_root()
          .bound(p.panel, 0, p.panels)
          .vectorize(p.row, vec)
          .parallel(p.panel);
    p.yt.compute_at(owner, bo).bound_storage(p.col, 8);
    // A tile's accumulators cover its whole panel (the padding rows are
    // zeros or copies) and have the same size in every tile and every
    // specialisation: a constant-size stack array the compiler keeps in
    // registers, not a heap allocation sized per tile.
    p.acc.compute_at(owner, io)
        .bound(p.row, 0, kPanelRows)
        .bound_storage(p.col, 8)
        .store_in(Halide::MemoryType::Stack)
        .vectorize(p.row, vec)
        .unroll(p.row)
        .unroll(p.col);
    p.acc.update()
        .reorder(p.row, p.col, p.r.x, p.panel)
        .vectorize(p.row, vec)
        .unroll(p.row)
        .unroll(p.col);
  }
}

/// Schedules convolution `c`: `out` in tiles of one vector of pixels by
/// a block of output channels, parallel over the blocks, rows and
/// instances; in each tile the taps accumulate in registers (a vector
/// read of the padded image, then one multiply-add per channel of the
/// block). Summed per output vector instead, each tap read a vector
/// and a weight for one multiply-add.
void Lowering::scheduleConv(Conv c, const Halide::Target &t) {
  Func out = c.out;
  out.compute_root();
  if (t.has_gpu_feature()) {
    Var thread = scheduleForGpu(out);
    c.acc.compute_at(out, thread);
    return;
  }
  std::vector<Var> args = out.args(); // w, h, co[, b]
  const int width = static_cast<int>(c.width);
  int lanes = t.natural_vector_size<float>();
  while (lanes > width)
    lanes /= 2;
  int block = 8;
  while (c.channels % block != 0)
    block /= 2;
  Var w = args[0], h = args[1], co = args[2];
  Var wo("wo"), wi("wi"), coo("coo"), coi("coi"), task("task");
  out.bound(w, 0, width)
      .bound(co, 0, static_cast<int>(c.channels))
      .split(w, wo, wi, lanes, Halide::TailStrategy::ShiftInwards)
      .split(co, coo, coi, block)
      .reorder(wi, coi, wo, h, coo)
      .vectorize(wi)
      .unroll(coi);
  if (args.size() > 3)
    out.fuse(coo, args[3], task).parallel(task);
  else
    out.parallel(coo);
  c.acc.compute_at(out, wo)
      .bound_storage(w, lanes)
      .bound_storage(co, block)
      .store_in(Halide::MemoryType::Stack)
      .vectorize(w)
      .unroll(co);
  c.acc.update().reorder(w, co, c.r.z, c.r.y, c.r.x).vectorize(w).unroll(co);
}

} // namespace unroll::compiler::lowering
