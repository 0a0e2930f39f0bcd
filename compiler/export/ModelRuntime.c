/* The model-independent part of the C implementation that `unrollc export`
 * writes for a model (compiler/export/Export.cpp writes the rest), after
 * `#define UNROLL_RELEASE_MEMORY NAME_release_memory` and the includes
 * below. Embedded in unrollc as text; the `model-runtime` test compiles it
 * on its own.
 *
 * The allocator NAME_run installs as Halide's (and uses for its scratch
 * arrays) keeps freed blocks for the next call, and NAME_release_memory
 * frees them. A block of 128 KiB or more that glibc returns to the kernel
 * comes back as fresh pages, each faulted in and zeroed on first touch, on
 * every call, so a model's speed would depend on what else its process had
 * allocated and freed before. Blocks have the layout of Halide's default
 * allocator (the malloc'd start just before the aligned pointer), so either
 * frees the other's. */
#include "HalideRuntime.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef UNROLL_RELEASE_MEMORY
#error "define UNROLL_RELEASE_MEMORY as the model's NAME_release_memory"
#endif

/* Freed blocks kept for the next call (the least recently freed
 * goes when all slots are taken). */
#define CACHE_SLOTS 32
#define CACHE_MAGIC 0x756e726f6c6c3031ULL
typedef struct {
  void *block;
  size_t size;
  unsigned long long freed;
} cache_slot;
static cache_slot cache[CACHE_SLOTS];
static unsigned long long cache_clock;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* 128-byte aligned; before it, the malloc'd start, the size and a magic
 * word; 64 bytes after it that may be read. */
static void *cache_malloc(void *user_context, size_t size) {
  (void)user_context;
  void *block = NULL;
  pthread_mutex_lock(&cache_lock);
  for (int i = 0; i < CACHE_SLOTS; ++i)
    if (cache[i].block && cache[i].size == size) {
      block = cache[i].block;
      cache[i].block = NULL;
      break;
    }
  pthread_mutex_unlock(&cache_lock);
  if (block)
    return block;
  char *start = (char *)malloc(size + 32 + 128 + 64);
  if (!start)
    return NULL;
  char *p = (char *)(((uintptr_t)start + 32 + 127) & ~(uintptr_t)127);
  ((void **)p)[-1] = start;
  ((uint64_t *)p)[-2] = (uint64_t)size;
  ((uint64_t *)p)[-3] = CACHE_MAGIC;
  return p;
}

static void cache_free(void *user_context, void *p) {
  (void)user_context;
  if (!p)
    return;
  if (((uint64_t *)p)[-3] != CACHE_MAGIC) { /* Halide's default allocator's */
    free(((void **)p)[-1]);
    return;
  }
  void *evicted = NULL;
  pthread_mutex_lock(&cache_lock);
  int slot = 0;
  for (int i = 0; i < CACHE_SLOTS; ++i) {
    if (!cache[i].block) {
      slot = i;
      break;
    }
    if (cache[i].freed < cache[slot].freed)
      slot = i;
  }
  if (cache[slot].block)
    evicted = ((void **)cache[slot].block)[-1];
  cache[slot].block = p;
  cache[slot].size = (size_t)((uint64_t *)p)[-2];
  cache[slot].freed = ++cache_clock;
  pthread_mutex_unlock(&cache_lock);
  free(evicted);
}

static void cache_install(void) {
  halide_set_custom_malloc(cache_malloc);
  halide_set_custom_free(cache_free);
}

void UNROLL_RELEASE_MEMORY(void) {
  void *blocks[CACHE_SLOTS];
  pthread_mutex_lock(&cache_lock);
  for (int i = 0; i < CACHE_SLOTS; ++i) {
    blocks[i] = cache[i].block ? ((void **)cache[i].block)[-1] : NULL;
    cache[i].block = NULL;
  }
  pthread_mutex_unlock(&cache_lock);
  for (int i = 0; i < CACHE_SLOTS; ++i)
    free(blocks[i]);
}

/* The kept blocks go when the library is unloaded. */
__attribute__((destructor)) static void cache_release_at_unload(void) {
  UNROLL_RELEASE_MEMORY();
}

/* A dense row-major array as a Halide buffer (axes reversed). */
static void view(halide_buffer_t *b, halide_dimension_t *dims,
                 const float *data, int rank, const int64_t *sizes) {
  memset(b, 0, sizeof *b);
  b->host = (uint8_t *)data;
  b->type.code = halide_type_float;
  b->type.bits = 32;
  b->type.lanes = 1;
  b->dimensions = rank;
  b->dim = dims;
  int64_t stride = 1;
  for (int k = rank - 1; k >= 0; --k) {
    halide_dimension_t *d = &dims[rank - 1 - k];
    d->min = 0;
    d->extent = (int32_t)sizes[k];
    d->stride = (int32_t)stride;
    d->flags = 0;
    stride *= sizes[k];
  }
}
