#include "runtime/KernelLibrary.h"

#include "runtime/Plan.h"
#include "runtime/Run.h"

#include <dlfcn.h>
#include <elf.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace unroll::runtime {

namespace {

/// Why `path` is not a whole x86-64 shared object, or "". dlopen maps the
/// file as its headers say: a truncated one crashes it (SIGBUS) instead of
/// failing, so the headers are checked against the file's size first.
std::string elfProblem(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  const uint64_t size = bytes.size();
  Elf64_Ehdr h;
  if (size < sizeof h)
    return "not a shared object";
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0 ||
      h.e_ident[EI_CLASS] != ELFCLASS64 || h.e_type != ET_DYN)
    return "not a 64-bit shared object";
  if (h.e_machine != EM_X86_64)
    return "built for another processor";
  auto fits = [&](uint64_t off, uint64_t n, uint64_t each) {
    return off <= size && n <= (size - off) / (each ? each : 1);
  };
  if (h.e_phentsize != sizeof(Elf64_Phdr) ||
      !fits(h.e_phoff, h.e_phnum, h.e_phentsize) ||
      !fits(h.e_shoff, h.e_shnum, h.e_shentsize))
    return "truncated";
  for (uint16_t i = 0; i < h.e_phnum; ++i) {
    Elf64_Phdr ph;
    std::memcpy(&ph, bytes.data() + h.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_LOAD && !fits(ph.p_offset, ph.p_filesz, 1))
      return "truncated";
  }
  return "";
}

} // namespace

std::unique_ptr<KernelLibrary>
KernelLibrary::open(const std::string &path, const std::string &planText) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw RunError("kernel library '" + path +
                   "' does not exist; compile the program with `unrollc "
                   "compile SPEC -o DIR`, or run it with --backend=eager");
  if (std::string why = elfProblem(path); !why.empty())
    throw RunError("cannot load kernel library '" + path + "': " + why +
                   " (is it damaged, or built for another machine?)");
  // dlopen needs a path with a slash to not search the library path.
  std::string abs = std::filesystem::absolute(path).string();
  void *handle = dlopen(abs.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char *why = dlerror();
    throw RunError("cannot load kernel library '" + path +
                   "': " + (why ? why : "unknown error") +
                   " (is it damaged, or built for another machine?)");
  }
  using Get = const unroll_kernel_library *(*)();
  auto get = reinterpret_cast<Get>(dlsym(handle, UNROLL_KERNEL_LIBRARY_SYMBOL));
  if (!get)
    throw RunError("'" + path + "' is not an Unroll kernel library (no " +
                   UNROLL_KERNEL_LIBRARY_SYMBOL + ")");
  const unroll_kernel_library *lib = get();
  if (!lib || lib->abi_version != UNROLL_RUNTIME_ABI_VERSION)
    throw RunError("kernel library '" + path +
                   "' was built for runtime "
                   "interface " +
                   std::to_string(lib ? lib->abi_version : -1) +
                   "; this runtime has " +
                   std::to_string(UNROLL_RUNTIME_ABI_VERSION) +
                   ": recompile it with this version's `unrollc compile`");
  if (planHash(planText) != lib->plan_hash)
    throw RunError("kernel library '" + path +
                   "' was compiled from another program (the spec or its "
                   "settings differ); recompile it with `unrollc compile`");
  if (!lib->kernels.run || (lib->kernels.device != UNROLL_KERNELS_CPU &&
                            lib->kernels.device != UNROLL_KERNELS_CUDA))
    throw RunError("kernel library '" + path + "' is malformed");
  return std::unique_ptr<KernelLibrary>(new KernelLibrary(path, lib));
}

} // namespace unroll::runtime
