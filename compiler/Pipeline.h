#pragma once
// The compiler's stages in order: a spec checked by the front end, IR
// generation, the middle end (specialize, infer-shapes, differentiate,
// canonicalize, CSE, unroll-layers, and for code generation
// fuse-elementwise), and the plan.

#include "dsl/Frontend.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace unroll::compiler {

/// How far compileSpec goes; each stage includes the ones before it.
enum class Stage {
  Checked,  ///< parsed and checked by the front end
  IR,       ///< the unroll dialect, from IR generation
  Unrolled, ///< after the middle end: inlined, shaped, differentiated,
            ///< unrolled into layers
  Plan,     ///< fused and lowered to the runtime program
};

/// What compileSpec needs besides the file.
struct SpecOptions {
  /// Where `import` looks, after the spec's own folder.
  std::vector<std::string> libraryPath;
  /// `--set key=value` settings.
  std::vector<std::string> settings;
  /// With Stage::Checked: the AST as parsed, not checked.
  bool parseOnly = false;
  /// The IR after every middle-end pass, to stderr.
  bool printAfterAll = false;
};

/// A spec compiled up to a stage: what each stage made.
struct CompiledSpec {
  std::unique_ptr<dsl::Frontend> frontend;
  std::unique_ptr<mlir::MLIRContext> context;
  /// From Stage::IR on.
  mlir::OwningOpRef<mlir::ModuleOp> module;
  /// At Stage::Plan.
  std::optional<nlohmann::json> plan;
};

/// Compiles `file` up to `stage`. Diagnostics go to `err` (the front
/// end's) and to LLVM's stderr (the passes', at DSL source locations, with
/// the source line and a caret). Null after any error.
std::unique_ptr<CompiledSpec> compileSpec(const std::string &file,
                                          const SpecOptions &options,
                                          Stage stage, std::ostream &err);

/// Runs the middle-end passes on IR from generateIR; `fuse` adds the fusion
/// of elementwise chains (for plans and kernels). With `printAfterAll`, the
/// IR after every pass goes to stderr. Errors are emitted at the ops (whose
/// locations are DSL source locations).
mlir::LogicalResult runPipeline(mlir::ModuleOp module, bool printAfterAll,
                                bool fuse = false);

/// Only the first two passes: the IR with every function call inlined and
/// every shape static, still with one step and explicit unroll.grad ops.
mlir::LogicalResult runSpecialization(mlir::ModuleOp module);

} // namespace unroll::compiler
