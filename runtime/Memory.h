#pragma once
// How the runtime's process manages freed memory.

namespace unroll::runtime {

/// Makes glibc's malloc keep memory freed during training and evaluation
/// for the next allocation instead of returning it to the system. By
/// default glibc maps every block above a threshold (at most 32 MiB) anew
/// and unmaps it when freed, so each step faults its large temporaries in
/// again and the kernel zeroes every page: a third of a SURF epoch. The
/// process's resident memory then stays at its peak (as with LibTorch's
/// caching GPU allocator). Process-wide and idempotent; a malloc setting
/// in the environment (GLIBC_TUNABLES, MALLOC_MMAP_THRESHOLD_,
/// MALLOC_TRIM_THRESHOLD_) is left as the user set it, and elsewhere than
/// glibc it does nothing.
void retainFreedMemory();

/// Whether the environment tunes glibc's malloc (GLIBC_TUNABLES naming a
/// glibc.malloc setting, MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_),
/// in which case retainFreedMemory leaves malloc as it is.
bool mallocTunedByEnvironment();

} // namespace unroll::runtime
