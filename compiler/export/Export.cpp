#include "compiler/export/Export.h"
#include "compiler/export/ParallelFor.h"

#include "compiler/kernels/CudaKernels.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <mutex>
#include <sstream>
#include <sys/wait.h>

namespace unroll::compiler {

namespace fs = std::filesystem;

/// compiler/export/ModelRuntime.c, as text.
extern const char *const kModelRuntimeText;
using Halide::Expr;
using Halide::Func;
using Halide::Var;

namespace {

std::string upper(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string identifier(std::string s) {
  for (char &c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)))
      c = '_';
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])))
    s = "m_" + s;
  return s;
}

int64_t elements(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t s : shape)
    n *= s;
  return n;
}

/// What NAME_run writes for one state variable: its final value and,
/// optionally, its value after every layer.
using Output = ExportSummary::State;

/// One output per state variable. With one state (LISTA, GLOW-Prox, SURF)
/// the arguments are `out` and `layers`; with more, `<state>_out` and
/// `<state>_layers`, all finals first, then all per-layer arrays.
std::vector<Output> outputsOf(const std::string &n,
                              const InferencePipeline &pipe) {
  const std::string N = upper(n);
  if (pipe.stateNames.size() == 1)
    return {{pipe.stateNames[0], "out", "layers", N + "_OUTPUT_SIZE",
             pipe.stateShapes[0]}};
  std::vector<Output> outs;
  for (size_t i = 0; i < pipe.stateNames.size(); ++i) {
    const std::string id = identifier(pipe.stateNames[i]);
    outs.push_back({pipe.stateNames[i], id + "_out", id + "_layers",
                    N + "_" + upper(id) + "_OUTPUT_SIZE", pipe.stateShapes[i]});
  }
  // An input named like an output argument would make two C parameters of
  // one name.
  for (const InferenceInput &in : pipe.inputs)
    for (const Output &o : outs)
      for (const std::string &arg : {o.out, o.layers})
        if (identifier(in.name) == arg || identifier(in.name) == arg + "_len" ||
            identifier(in.name) + "_len" == arg)
          throw ExportError("export: input '" + in.name +
                            "' clashes with the output argument '" + arg +
                            "'; rename it in the spec");
  return outs;
}

/// `int NAME_run(...)`: the batch, each input with its length, the outputs
/// and the optional per-layer outputs with theirs.
std::string runSignature(const std::string &n, const InferencePipeline &pipe,
                         const std::vector<Output> &outs) {
  std::string sig = "int " + n + "_run(int64_t batch";
  for (const InferenceInput &in : pipe.inputs) {
    std::string a = identifier(in.name);
    sig += ", const float *" + a + ", int64_t " + a + "_len";
  }
  for (const Output &o : outs)
    sig += ", float *" + o.out + ", int64_t " + o.out + "_len";
  for (const Output &o : outs)
    sig += ", float *" + o.layers + ", int64_t " + o.layers + "_len";
  return sig + ")";
}

/// The public header: sizes as macros, one run function, status codes.
std::string header(const std::string &n, const InferencePipeline &pipe,
                   const std::vector<Output> &outs, int64_t layers,
                   const std::string &run) {
  std::string N = upper(n);
  const bool one = outs.size() == 1;
  std::ostringstream h;
  h << "/* " << n << ".h: the trained '" << pipe.algorithm
    << "' exported by unrollc from " << run << ".\n"
    << " * Arrays are dense, row-major float32, batch first. */\n"
    << "#ifndef " << N << "_H\n#define " << N << "_H\n\n"
    << "#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
    << "#define " << N << "_LAYERS " << layers << "\n";
  for (const Output &o : outs)
    h << "#define " << o.macro << " " << elements(o.shape)
      << " /* floats per instance of the final state"
      << (one ? "" : " '" + o.name + "'") << " */\n";
  for (const InferenceInput &in : pipe.inputs)
    h << "#define " << N << "_" << upper(identifier(in.name)) << "_SIZE "
      << elements(in.shape)
      << (in.batched ? " /* floats per instance"
                     : " /* floats, shared by all instances")
      << (in.note.empty() ? "" : ": " + in.note) << " */\n";
  h << "\nenum " << n << "_status {\n  " << N << "_OK = 0,\n  " << N
    << "_BAD_ARGUMENT = 1, /* a null pointer, or batch < 1 or > 2^31 - 1 */\n  "
    << N << "_BAD_SIZE = 2,     /* an array length that does not match */\n  "
    << N << "_FAILED = 3,       /* the generated code reported an error */\n  "
    << N
    << "_NO_MEMORY = 4,    /* no memory for the states between layers */\n  "
    << N << "_NOT_FINITE = 5    /* an input holds NaN or Inf */\n"
    << "};\n\n"
    << "/* Runs all " << layers << " layers on `batch` instances. Each array "
    << "comes with its\n * length in floats. ";
  if (one)
    h << "`layers` may be null; otherwise it receives\n * batch * (" << N
      << "_LAYERS + 1) * " << outs[0].macro
      << " floats: the state after\n * every layer, the initial one first. "
         "*/\n";
  else
    h << "The `*_layers` arrays are all null, or each\n * receives batch * ("
      << N << "_LAYERS + 1) * its state's output size floats: the state\n"
      << " * after every layer, the initial one first. */\n";
  h << runSignature(n, pipe, outs) << ";\n"
    << "\n/* A sentence for a status code. */\nconst char *" << n
    << "_status_string(int status);\n\n"
    << "/* " << n
    << "_run keeps the blocks of memory it frees (the values "
       "between\n * layers) for its next call; this frees them. Safe to "
       "call at any time. */\nvoid "
    << n << "_release_memory(void);\n\n"
    << "#ifdef __cplusplus\n}\n#endif\n\n#endif\n";
  return h.str();
}

/// The start of the C implementation of the public header: `view`, the
/// status strings, and NAME_run up to its inputs as Halide buffers (b0,
/// b1, ... in the order of pipe.inputs) and its outputs' sizes (sout0,
/// ...).
std::string wrapperStart(const std::string &n, const InferencePipeline &pipe,
                         const std::vector<Output> &outs, int64_t layers,
                         const std::vector<std::string> &libraries) {
  std::string N = upper(n);
  std::ostringstream c;
  c << "#include \"" << n << ".h\"\n";
  for (const std::string &lib : libraries)
    c << "#include \"lib" << lib << ".h\"\n";
  c << "#define UNROLL_RELEASE_MEMORY " << n << "_release_memory\n"
    << kModelRuntimeText << "\n"
    << "const char *" << n << "_status_string(int status) {\n"
    << "  switch (status) {\n  case " << N << "_OK: return \"ok\";\n"
    << "  case " << N
    << "_BAD_ARGUMENT: return \"a null pointer, or a batch below 1 or above "
       "2^31 - 1\";\n"
    << "  case " << N
    << "_BAD_SIZE: return \"an array length does not match the model\";\n"
    << "  case " << N
    << "_FAILED: return \"the generated code reported an error\";\n"
    << "  case " << N
    << "_NO_MEMORY: return \"no memory for the states between layers\";\n"
    << "  case " << N << "_NOT_FINITE: return \"an input holds NaN or Inf\";\n"
    << "  default: return \"unknown status\";\n  }\n}\n\n"
    << runSignature(n, pipe, outs) << " {\n"
    << "  pthread_once(&cache_once, cache_install);\n"
    << "  if (batch < 1 || batch > 0x7fffffff";
  for (const Output &o : outs)
    c << " || !" << o.out;
  for (const InferenceInput &in : pipe.inputs)
    c << " || !" << identifier(in.name);
  c << ")\n    return " << N << "_BAD_ARGUMENT;\n";
  // Per-layer arrays: all or none.
  std::string anyLayers, allLayers;
  for (size_t k = 0; k < outs.size(); ++k) {
    anyLayers += (k ? " || " : "") + outs[k].layers;
    allLayers += (k ? " && " : "") + outs[k].layers;
  }
  c << "  const int with_layers = " << anyLayers << ";\n";
  if (outs.size() > 1)
    c << "  if (with_layers && !(" << allLayers << "))\n    return " << N
      << "_BAD_ARGUMENT;\n";
  for (const InferenceInput &in : pipe.inputs) {
    std::string a = identifier(in.name);
    c << "  if (" << a << "_len != " << (in.batched ? "batch * " : "")
      << elements(in.shape) << "LL)\n"
      << "    return " << N << "_BAD_SIZE;\n";
  }
  for (const Output &o : outs) {
    int64_t size = elements(o.shape);
    c << "  if (" << o.out << "_len != batch * " << size << "LL || ("
      << o.layers << " && " << o.layers << "_len != batch * "
      << (layers + 1) * size << "LL))\n    return " << N << "_BAD_SIZE;\n";
  }
  // Non-finite inputs are refused: the layers' thresholds and
  // activations would turn NaN into plausible zeros.
  for (const InferenceInput &in : pipe.inputs) {
    std::string a = identifier(in.name);
    c << "  for (int64_t i = 0; i < " << a << "_len; ++i)\n"
      << "    if (!isfinite(" << a << "[i]))\n      return " << N
      << "_NOT_FINITE;\n";
  }
  int i = 0;
  for (const InferenceInput &in : pipe.inputs) {
    std::vector<int64_t> sizes;
    if (in.batched)
      sizes.push_back(-1);
    sizes.insert(sizes.end(), in.shape.begin(), in.shape.end());
    c << "  halide_dimension_t d" << i << "["
      << std::max<size_t>(1, sizes.size()) << "];\n  halide_buffer_t b" << i
      << ";\n  const int64_t s" << i << "[] = {";
    for (size_t k = 0; k < sizes.size(); ++k)
      c << (k ? ", " : "")
        << (sizes[k] < 0 ? "batch" : std::to_string(sizes[k]));
    if (sizes.empty())
      c << "1";
    c << "};\n  view(&b" << i << ", d" << i << ", " << identifier(in.name)
      << ", " << sizes.size() << ", s" << i << ");\n";
    ++i;
  }
  for (size_t k = 0; k < outs.size(); ++k) {
    c << "  const int64_t sout" << k << "[] = {batch";
    for (int64_t d : outs[k].shape)
      c << ", " << d;
    c << "};\n";
  }
  return c.str();
}

/// NAME_run over one pipeline for all layers, compiled twice: with the
/// per-layer outputs (NAME_halide) and without (NAME_halide_final).
std::string wrapper(const std::string &n, const InferencePipeline &pipe,
                    const std::vector<Output> &outs, int64_t layers) {
  std::string N = upper(n);
  std::ostringstream c;
  c << wrapperStart(n, pipe, outs, layers,
                    {n + "_halide", n + "_halide_final"});
  std::string inputs;
  for (size_t k = 0; k < pipe.inputs.size(); ++k)
    inputs += "&b" + std::to_string(k) + ", ";
  std::string finals, all;
  for (size_t k = 0; k < outs.size(); ++k) {
    const Output &o = outs[k];
    const std::string s = std::to_string(k);
    c << "  halide_dimension_t dout" << s << "[" << o.shape.size() + 1
      << "], dlayers" << s << "[" << o.shape.size() + 2 << "];\n"
      << "  halide_buffer_t bout" << s << ", blayers" << s << ";\n";
    c << "  const int64_t slayers" << s << "[] = {batch, " << layers + 1;
    for (int64_t d : o.shape)
      c << ", " << d;
    c << "};\n  view(&bout" << s << ", dout" << s << ", " << o.out << ", "
      << o.shape.size() + 1 << ", sout" << s << ");\n";
    finals += (k ? ", " : "") + ("&bout" + s);
    all += ", &blayers" + s;
  }
  // Without per-layer arrays, the pipeline that computes only the final
  // states: the other would write every layer to a scratch array.
  c << "  int rc;\n  if (!with_layers) {\n    rc = " << n << "_halide_final("
    << inputs << finals << ");\n  } else {\n";
  for (size_t k = 0; k < outs.size(); ++k) {
    const std::string s = std::to_string(k);
    c << "    view(&blayers" << s << ", dlayers" << s << ", " << outs[k].layers
      << ", " << outs[k].shape.size() + 2 << ", slayers" << s << ");\n";
  }
  c << "    rc = " << n << "_halide(" << inputs << finals << all
    << ");\n  }\n  return rc == 0 ? " << N << "_OK : " << N << "_FAILED;\n}\n";
  return c.str();
}

/// NAME_run over a pipeline per layer: NAME_halide_0 computes the initial
/// states, NAME_halide_l (l >= 1) the states after layer l from those
/// before it. Each writes into the per-layer arrays if the caller passed
/// them, else into two scratch arrays a state, taken in turns (the last
/// layer into the final outputs).
std::string stagedWrapper(const std::string &n, const InferencePipeline &pipe,
                          const std::vector<Output> &outs, int64_t layers,
                          const std::vector<InferencePipeline> &stages) {
  std::string N = upper(n);
  std::vector<std::string> libraries;
  for (int64_t l = 0; l <= layers; ++l)
    libraries.push_back(n + "_halide_" + std::to_string(l));
  std::ostringstream c;
  c << wrapperStart(n, pipe, outs, layers, libraries);
  const size_t S = outs.size();
  c << "  float *scratch[" << S << "] = {0};\n  int rc = 0;\n"
    << "  if (!with_layers) {\n";
  for (size_t i = 0; i < S; ++i)
    c << "    scratch[" << i
      << "] = (float *)cache_malloc(NULL, (size_t)batch * "
      << 2 * elements(outs[i].shape) << " * sizeof(float));\n"
      << "    if (!scratch[" << i << "])\n      rc = -1;\n";
  c << "  }\n";
  c << "  if (rc != 0) {\n    for (int i = 0; i < " << S
    << "; ++i)\n      cache_free(NULL, scratch[i]);\n    return " << N
    << "_NO_MEMORY;\n  }\n";
  // The states after layer l: in the per-layer arrays (instances
  // (layers + 1) states apart) or a scratch array.
  auto state = [&](int64_t l, size_t i) {
    return "st" + std::to_string(l) + "_" + std::to_string(i);
  };
  for (int64_t l = 0; l <= layers; ++l) {
    for (size_t i = 0; i < S; ++i) {
      const Output &o = outs[i];
      const int64_t size = elements(o.shape);
      const std::string st = state(l, i);
      const std::string scratch =
          l == layers ? o.out
                      : "scratch[" + std::to_string(i) + "] + " +
                            std::to_string(l % 2) + " * batch * " +
                            std::to_string(size);
      c << "  halide_dimension_t d" << st << "[" << o.shape.size() + 1
        << "];\n  halide_buffer_t " << st << ";\n  view(&" << st << ", d" << st
        << ", with_layers ? " << o.layers << " + " << l * size << " : "
        << scratch << ", " << o.shape.size() + 1 << ", sout" << i
        << ");\n  if (with_layers)\n    d" << st << "[" << o.shape.size()
        << "].stride = " << (layers + 1) * size << ";\n";
    }
    std::string args;
    for (const InferenceInput &in : stages[l].inputs) {
      if (in.state >= 0) {
        args += "&" + state(l - 1, in.state) + ", ";
        continue;
      }
      size_t k = 0;
      while (k < pipe.inputs.size() && pipe.inputs[k].name != in.name)
        ++k;
      assert(k < pipe.inputs.size() && "a layer's input is the program's");
      args += "&b" + std::to_string(k) + ", ";
    }
    for (size_t i = 0; i < S; ++i)
      args += (i ? ", &" : "&") + state(l, i);
    c << "  if (rc == 0)\n    rc = " << n << "_halide_" << l << "(" << args
      << ");\n";
  }
  for (size_t i = 0; i < S; ++i) {
    const int64_t size = elements(outs[i].shape);
    c << "  for (int64_t b = 0; rc == 0 && with_layers && b < batch; ++b)\n"
      << "    memcpy(" << outs[i].out << " + b * " << size << ", "
      << outs[i].layers << " + (b * " << layers + 1 << " + " << layers << ") * "
      << size << ", " << size << " * sizeof(float));\n";
  }
  c << "  for (int i = 0; i < " << S
    << "; ++i)\n    cache_free(NULL, scratch[i]);\n"
    << "  return rc == 0 ? " << N << "_OK : " << N << "_FAILED;\n}\n";
  return c.str();
}

std::string cmakeConfig(const std::string &n, const std::string &version) {
  const std::string soname = sharedLibraryName(n, version);
  std::ostringstream c;
  c << "# " << n << " " << version << " exported by unrollc: find_package(" << n
    << ") gives " << n << "::" << n << " (static) and " << n
    << "::shared.\ninclude(CMakeFindDependencyMacro)\n"
    << "find_dependency(Threads)\n"
    << "get_filename_component(_prefix \"${CMAKE_CURRENT_LIST_DIR}/../../..\" "
       "ABSOLUTE)\n"
    << "if(NOT TARGET " << n << "::" << n << ")\n"
    << "  add_library(" << n << "::" << n << " STATIC IMPORTED)\n"
    << "  set_target_properties(" << n << "::" << n << " PROPERTIES\n"
    << "    IMPORTED_LOCATION \"${_prefix}/lib/lib" << n << ".a\"\n"
    << "    INTERFACE_INCLUDE_DIRECTORIES \"${_prefix}/include\"\n"
    << "    INTERFACE_LINK_LIBRARIES \"Threads::Threads;${CMAKE_DL_LIBS};m\")\n"
    << "  add_library(" << n << "::shared SHARED IMPORTED)\n"
    << "  set_target_properties(" << n << "::shared PROPERTIES\n"
    << "    IMPORTED_LOCATION \"${_prefix}/lib/" << soname << "\"\n"
    << "    IMPORTED_SONAME \"" << soname << "\"\n"
    << "    INTERFACE_INCLUDE_DIRECTORIES \"${_prefix}/include\")\n"
    << "endif()\nunset(_prefix)\n";
  return c.str();
}

/// NAMEConfigVersion.cmake: `find_package(NAME X.Y)` accepts this export
/// when X is its major version and X.Y is not newer than it (CMake's
/// SameMajorVersion rule), on 64-bit builds only.
std::string cmakeConfigVersion(const std::string &version) {
  std::ostringstream c;
  c << "set(PACKAGE_VERSION \"" << version << "\")\n"
    << "if(PACKAGE_FIND_VERSION_RANGE)\n"
    << "  if(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION_MIN OR\n"
    << "     (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL \"INCLUDE\" AND\n"
    << "      PACKAGE_VERSION VERSION_GREATER PACKAGE_FIND_VERSION_MAX) OR\n"
    << "     (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL \"EXCLUDE\" AND\n"
    << "      PACKAGE_VERSION VERSION_GREATER_EQUAL "
       "PACKAGE_FIND_VERSION_MAX))\n"
    << "    set(PACKAGE_VERSION_COMPATIBLE FALSE)\n"
    << "  else()\n    set(PACKAGE_VERSION_COMPATIBLE TRUE)\n  endif()\n"
    << "elseif(NOT PACKAGE_FIND_VERSION)\n"
    << "  set(PACKAGE_VERSION_COMPATIBLE TRUE)\n"
    << "elseif(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION OR\n"
    << "       NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL \"" << majorOf(version)
    << "\")\n"
    << "  set(PACKAGE_VERSION_COMPATIBLE FALSE)\n"
    << "else()\n  set(PACKAGE_VERSION_COMPATIBLE TRUE)\n"
    << "  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)\n"
    << "    set(PACKAGE_VERSION_EXACT TRUE)\n  endif()\nendif()\n"
    << "if(NOT CMAKE_SIZEOF_VOID_P STREQUAL \"8\")\n"
    << "  set(PACKAGE_VERSION \"${PACKAGE_VERSION} (64bit)\")\n"
    << "  set(PACKAGE_VERSION_UNSUITABLE TRUE)\nendif()\n";
  return c.str();
}

/// The arguments of `pipe`'s compiled function: its inputs, in order.
std::vector<Halide::Argument> argumentsOf(const InferencePipeline &pipe) {
  std::vector<Halide::Argument> args;
  for (const InferenceInput &in : pipe.inputs)
    args.push_back(in.param);
  return args;
}

/// `base` as the name of a Func for state `i`: suffixed with the state's
/// name when there is more than one.
std::string stateFunc(const std::string &base, const std::vector<Output> &outs,
                      size_t i) {
  return outs.size() == 1 ? base : base + "_" + identifier(outs[i].name);
}

/// Output `name` of a pipeline: a copy of `states[0]` (a Func over the
/// state's axes and the batch, as in InferencePipeline::states), vectorised
/// and parallel over the batch; with `layer`, of every `states[l]` along
/// an axis of layers before the batch.
Func outputOf(const std::string &name, const std::vector<Func> &states,
              size_t rank, bool layer, const Halide::Target &target) {
  std::vector<Var> vs;
  for (size_t k = 0; k < rank; ++k)
    vs.emplace_back("x" + std::to_string(k));
  Var l("l"), b("b");
  std::vector<Var> args = vs;
  if (layer)
    args.push_back(l);
  args.push_back(b);
  std::vector<Expr> at(vs.begin(), vs.end());
  at.push_back(b);
  Func f(name);
  Expr e = states[0](at);
  for (size_t k = 1; layer && k < states.size(); ++k)
    e = Halide::select(l == static_cast<int>(k), states[k](at), e);
  f(args) = e;
  if (layer)
    f.bound(l, 0, static_cast<int>(states.size()));
  if (target.has_gpu_feature()) {
    scheduleForGpu(f);
    return f;
  }
  // Vectorised copies, one unrolled case per layer (no chain of selects),
  // parallel over the batch.
  if (layer)
    f.unroll(l);
  if (!vs.empty())
    f.vectorize(vs[0], target.natural_vector_size<float>(),
                Halide::TailStrategy::GuardWithIf);
  f.parallel(b);
  return f;
}

/// The last states of `pipe` (lowered for one layer, or the initial
/// states), compiled into DIR/lib<fn>.a as the function `fn`.
void compileStage(const InferencePipeline &pipe, const std::string &n,
                  const std::vector<Output> &outs, const std::string &fn,
                  const Halide::Target &target, const fs::path &dir) {
  // A layer's outputs are the pipeline's (a copy would read and write
  // every state once more); the initial states are copied (they may be
  // inputs).
  std::vector<Func> states = pipe.states.back();
  for (size_t i = 0; pipe.states.size() == 1 && i < outs.size(); ++i)
    states[i] = outputOf(stateFunc(n + "_state", outs, i), {states[i]},
                         outs[i].shape.size(), false, target);
  for (auto &schedule : pipe.schedules)
    schedule(target);
  Halide::Pipeline(states).compile_to_static_library(
      (dir / ("lib" + fn)).string(), argumentsOf(pipe), fn, target);
}

} // namespace

bool validVersion(const std::string &v) {
  int parts = 0;
  size_t i = 0;
  while (i <= v.size()) {
    size_t j = v.find('.', i);
    if (j == std::string::npos)
      j = v.size();
    if (j == i || j - i > 9)
      return false;
    for (size_t k = i; k < j; ++k)
      if (!std::isdigit(static_cast<unsigned char>(v[k])))
        return false;
    ++parts;
    i = j + 1;
  }
  return parts == 3;
}

std::string majorOf(const std::string &version) {
  return version.substr(0, version.find('.'));
}

std::string sharedLibraryName(const std::string &name,
                              const std::string &version) {
  return "lib" + name + ".so." + majorOf(version);
}

ExportSummary
exportModel(const abi::Plan &plan,
            const std::map<std::string, Halide::Buffer<float>> &params,
            const ExportOptions &opts, std::ostream &log) {
  const bool gpu = opts.target == "host-cuda";
  if (opts.target != "host" && !gpu)
    throw ExportError("target '" + opts.target +
                      "' is not supported; use --target host or host-cuda");
  if (!validVersion(opts.version))
    throw ExportError("--model-version '" + opts.version +
                      "' is not a version MAJOR.MINOR.PATCH of numbers");
  if (opts.split != "auto" && opts.split != "none" && opts.split != "layers")
    throw ExportError("--split '" + opts.split +
                      "' is not one of auto, none, layers");
  InferencePipeline pipe = lowerForInference(plan, params);
  const std::string n =
      identifier(opts.name.empty() ? pipe.algorithm : opts.name);
  const std::vector<Output> outs = outputsOf(n, pipe);
  const int64_t L = pipe.layers;
  const bool split = opts.split == "layers" ||
                     (opts.split == "auto" && pipe.layerOps > kSplitOps);
  // host-cuda: the layers run as CUDA kernels (PTX for compute capability
  // 7.5 inside the library), the arrays stay in host memory and Halide's
  // runtime copies them to and from the GPU.
  const Halide::Target target =
      gpu ? cudaTarget(75, /*hostFeatures=*/true) : Halide::get_host_target();
  for (size_t i = 0; i < outs.size(); ++i)
    if (!pipe.states[0][i].defined())
      throw ExportError("export: the initial state '" + outs[i].name +
                        "' is undefined");

  // Absolute: the packaging commands run in other directories.
  fs::path out = fs::absolute(opts.outDir);
  fs::path inc = out / "include", lib = out / "lib",
           cmake = out / "lib" / "cmake" / n, build = out / "build";
  std::error_code ec;
  for (const fs::path &d : {inc, lib, cmake, build})
    fs::create_directories(d, ec);
  if (ec)
    throw ExportError("cannot create '" + out.string() + "': " + ec.message());

  log << opts.command << ": compiling " << pipe.algorithm << " (" << L
      << " layers"
      << (split ? ", " + std::to_string(pipe.layerOps) +
                      " ops: a pipeline per layer"
                : "")
      << ") with Halide for " << target.to_string() << "\n";
  if (!gpu && pipe.products > 0)
    log << opts.command << ": " << pipe.productsInTiles << " of "
        << pipe.products
        << " matrix products computed in the tiles of the layer output that "
           "reads them\n";
  // The Halide libraries to archive (DIR/build/lib<name>.a), and the C
  // wrapper over them.
  std::vector<std::string> libraries;
  std::string cWrapper;
  if (!split) {
    // Outputs, per state variable: the final value, and every layer's
    // stacked on a layer axis.
    std::vector<Func> finals, alls;
    for (size_t i = 0; i < outs.size(); ++i) {
      std::vector<Func> layers;
      for (const std::vector<Func> &s : pipe.states)
        layers.push_back(s[i]);
      finals.push_back(outputOf(stateFunc(n + "_final", outs, i),
                                {layers.back()}, outs[i].shape.size(), false,
                                target));
      alls.push_back(outputOf(stateFunc(n + "_layers", outs, i), layers,
                              outs[i].shape.size(), true, target));
    }
    // Layer outputs and products once each (the pipeline's schedules): on
    // the CPU in register-blocked tiles or vectorised and parallel over
    // the batch, on the GPU one thread per element.
    for (auto &schedule : pipe.schedules)
      schedule(target);
    const std::vector<Halide::Argument> args = argumentsOf(pipe);
    std::vector<Func> both = finals;
    both.insert(both.end(), alls.begin(), alls.end());
    Halide::Pipeline(both).compile_to_static_library(
        (build / ("lib" + n + "_halide")).string(), args, n + "_halide",
        target);
    // The same Funcs as a pipeline with the final state only; Halide's
    // runtime is in the first library already.
    Halide::Pipeline(finals).compile_to_static_library(
        (build / ("lib" + n + "_halide_final")).string(), args,
        n + "_halide_final", target.with_feature(Halide::Target::NoRuntime));
    libraries = {n + "_halide", n + "_halide_final"};
    cWrapper = wrapper(n, pipe, outs, L);
  } else {
    // Layer l from the states after layer l - 1 (l = 0: the initial
    // states from the inputs), each lowered and compiled on its own, on
    // as many threads as asked (Halide compiles pipelines that share no
    // Exprs concurrently); Halide's runtime goes into the first library
    // only.
    std::vector<InferencePipeline> stages(static_cast<size_t>(L + 1));
    for (int64_t l = 0; l <= L; ++l)
      libraries.push_back(n + "_halide_" + std::to_string(l));
    std::mutex logMutex;
    parallelFor(L + 1, opts.jobs, [&](int64_t l) {
      const auto start = std::chrono::steady_clock::now();
      stages[l] = lowerForInference(plan, params,
                                    StateRange{std::max<int64_t>(0, l - 1), l});
      compileStage(stages[l], n, outs, libraries[l],
                   l == 0 ? target
                          : target.with_feature(Halide::Target::NoRuntime),
                   build);
      const std::chrono::duration<double> took =
          std::chrono::steady_clock::now() - start;
      std::ostringstream line;
      line << opts.command << ": "
           << (l == 0
                   ? std::string("initial state")
                   : "layer " + std::to_string(l) + " of " + std::to_string(L))
           << " compiled (" << std::fixed << std::setprecision(1)
           << took.count() << " s)\n";
      std::lock_guard<std::mutex> lock(logMutex);
      log << line.str() << std::flush;
    });
    cWrapper = stagedWrapper(n, pipe, outs, L, stages);
  }

  writeText(inc / (n + ".h"), header(n, pipe, outs, L, opts.runDir));
  writeText(build / (n + ".c"), cWrapper);
  writeText(cmake / (n + "Config.cmake"), cmakeConfig(n, opts.version));
  writeText(cmake / (n + "ConfigVersion.cmake"),
            cmakeConfigVersion(opts.version));

  const fs::path logFile = build / "tools.log";
  const std::string halideInc = "/usr/include/halide14";
  const fs::path object = build / (n + ".o");
  runTool(cCompiler() +
              std::vector<std::string>{
                  "-O2", "-fPIC", "-c", (build / (n + ".c")).string(),
                  "-I" + inc.string(), "-I" + build.string(), "-I" + halideInc,
                  "-o", object.string()},
          logFile);
  // Static: the wrapper plus the objects of the Halide archives, each
  // archive into its own folder (their members' names may clash).
  fs::path objs = build / "objs";
  fs::remove_all(objs, ec);
  std::vector<std::string> members{object.string()}, archives;
  for (size_t k = 0; k < libraries.size(); ++k) {
    const fs::path dir = objs / std::to_string(k);
    const std::string archive =
        (build / ("lib" + libraries[k] + ".a")).string();
    fs::create_directories(dir);
    runTool({"ar", "x", archive}, logFile, dir);
    std::vector<std::string> extracted;
    for (const fs::directory_entry &e : fs::directory_iterator(dir))
      if (e.path().extension() == ".o")
        extracted.push_back(e.path().string());
    std::sort(extracted.begin(), extracted.end());
    members.insert(members.end(), extracted.begin(), extracted.end());
    archives.push_back(archive);
  }
  fs::path staticLib = lib / ("lib" + n + ".a");
  fs::remove(staticLib, ec);
  runTool(std::vector<std::string>{"ar", "rcs", staticLib.string()} + members,
          logFile);
  // The shared library exports the C API only: its Halide runtime (thread
  // pool, allocator, caches) stays its own, not bound to that of another
  // exported library in the same process. Its SONAME carries the major
  // version, so a program linked against it records that name, not the
  // export folder's path, and finds it wherever the folder moves.
  const fs::path symbols = build / (n + ".map");
  writeText(symbols, "{\n  global:\n    " + n + "_run;\n    " + n +
                         "_status_string;\n    " + n +
                         "_release_memory;\n  local:\n    *;\n};\n");
  const std::string soname = sharedLibraryName(n, opts.version);
  const fs::path shared = lib / soname;
  std::vector<std::string> link =
      cCompiler() +
      std::vector<std::string>{"-shared",
                               "-o",
                               shared.string(),
                               object.string(),
                               "-Wl,-soname," + soname,
                               "-Wl,--version-script=" + symbols.string(),
                               "-Wl,--whole-archive"};
  link = link + archives +
         std::vector<std::string>{"-Wl,--no-whole-archive", "-lpthread", "-ldl",
                                  "-lm"};
  runTool(link, logFile);
  // libNAME.so, the name a linker looks for, points at it.
  const fs::path linkName = lib / ("lib" + n + ".so");
  fs::remove(linkName, ec);
  fs::create_symlink(soname, linkName, ec);
  if (ec)
    throw ExportError("cannot write '" + linkName.string() +
                      "': " + ec.message());
  ExportSummary summary;
  summary.name = n;
  for (const InferenceInput &in : pipe.inputs)
    summary.inputs.push_back(
        {in.name, identifier(in.name), in.shape, in.batched, in.note});
  summary.states = outs;
  summary.layers = L;
  summary.includeDir = inc.string();
  summary.staticLibrary = staticLib.string();
  summary.sharedLibrary = (lib / ("lib" + n + ".so")).string();
  summary.cmakeConfig = (cmake / (n + "Config.cmake")).string();
  return summary;
}

} // namespace unroll::compiler
