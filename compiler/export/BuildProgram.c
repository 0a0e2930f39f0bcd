/* The model-independent part of a program made by `unrollc build`: .npy
 * reading and writing, the command line, the checks of every input against
 * the model, and main(). unrollc embeds this file's text into the program
 * it writes, after the model's header (NAME.h) and before the model's
 * tables and unroll_run_model(), which the declarations below describe.
 * The test suite also compiles it on its own (tests/CMakeLists.txt, the
 * build-program test), so it stays valid, warning-free C. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *name;
  const char *note;
  int batched;
  int rank; /* per instance */
  int64_t shape[8];
  const char *path;
  float *data;
  int64_t count;
  /* The values the run trained with, used when NAME= is not given. */
  const float *fallback;
  int64_t fallback_count;
} input_t;

typedef struct {
  const char *name; /* the state variable */
  int rank;         /* per instance */
  int64_t shape[8];
  const char *path, *layers_path;
  float *data, *layers;
  int64_t count, layers_count;
} output_t;

/* Defined by the model's part of the program. */
extern input_t inputs[];
extern const int n_inputs;
extern output_t outputs[];
extern const int n_outputs;
extern const int64_t n_layers;
/* Runs the model on `batch` instances of the inputs into the outputs'
 * arrays; NULL on success, otherwise the library's sentence for its status.
 */
const char *unroll_run_model(int64_t batch);

static const char *program = "model";

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: error: ", program);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

/* The value after `key` in the header's dict literal, or NULL. */
static const char *npy_field(const char *header, const char *key) {
  const char *p = strstr(header, key);
  if (!p)
    return NULL;
  p += strlen(key);
  while (*p == ' ' || *p == ':')
    ++p;
  return p;
}

/* Copies the quoted string at `p` ('<i8') into `out` (at most size - 1
 * characters, quotes kept), so it can be printed after the header is
 * freed. */
static void quoted(const char *p, char *out, size_t size) {
  size_t n = 0;
  if (p && *p == '\'') {
    out[n++] = *p++;
    while (*p && *p != '\'' && n + 2 < size)
      out[n++] = *p++;
    if (*p == '\'')
      out[n++] = '\'';
  }
  out[n] = 0;
}

static void print_shape(FILE *out, int batched, int rank, const int64_t *s) {
  fputc('(', out);
  if (batched)
    fprintf(out, "batch%s", rank ? ", " : ",");
  for (int k = 0; k < rank; ++k)
    fprintf(out, "%lld%s", (long long)s[k],
            k + 1 < rank ? ", " : (rank == 1 && !batched ? "," : ""));
  fputc(')', out);
}

/* Reads a C-order float32 or float64 .npy file as float32. Returns NULL
 * after printing why. The header's element count is checked against the
 * file's size before anything is allocated. */
static float *read_npy(const char *path, int *rank, int64_t *shape,
                       int64_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fail("cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  unsigned char magic[8];
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "\x93NUMPY", 6) != 0) {
    fclose(f);
    fail("'%s' is not a .npy file", path);
    return NULL;
  }
  if (magic[6] < 1 || magic[6] > 3) {
    fclose(f);
    fail("'%s' is a .npy file of format version %d; this program reads "
         "versions 1 to 3",
         path, magic[6]);
    return NULL;
  }
  uint32_t hlen = 0;
  unsigned char lenbytes[4] = {0, 0, 0, 0};
  size_t nlen = magic[6] == 1 ? 2 : 4;
  if (fread(lenbytes, 1, nlen, f) != nlen) {
    fclose(f);
    fail("'%s' is truncated", path);
    return NULL;
  }
  hlen = lenbytes[0] | lenbytes[1] << 8 | (uint32_t)lenbytes[2] << 16 |
         (uint32_t)lenbytes[3] << 24;
  char *header = hlen < (1u << 24) ? malloc((size_t)hlen + 1) : NULL;
  if (!header || fread(header, 1, hlen, f) != hlen) {
    free(header);
    fclose(f);
    fail("'%s' is truncated", path);
    return NULL;
  }
  header[hlen] = 0;
  const char *descr = npy_field(header, "'descr'");
  const char *order = npy_field(header, "'fortran_order'");
  const char *sh = npy_field(header, "'shape'");
  int wide = 0;
  if (descr && strncmp(descr, "'<f8'", 5) == 0)
    wide = 1;
  else if (!descr || strncmp(descr, "'<f4'", 5) != 0) {
    char type[32];
    quoted(descr, type, sizeof type);
    free(header);
    fclose(f);
    if (*type)
      fail("'%s' holds %s values; expected float32 ('<f4') or float64 "
           "('<f8')",
           path, type);
    else
      fail("'%s' has no readable 'descr' in its header; expected float32 "
           "('<f4') or float64 ('<f8')",
           path);
    return NULL;
  }
  if (!order || strncmp(order, "False", 5) != 0 || !sh || *sh != '(') {
    free(header);
    fclose(f);
    fail("'%s' is not a C-order array", path);
    return NULL;
  }
  const size_t width = wide ? 8 : 4;
  *rank = 0;
  *count = 1;
  for (const char *p = sh + 1; *p && *p != ')';) {
    if (*p == ' ' || *p == ',') {
      ++p;
      continue;
    }
    char *end;
    errno = 0;
    long long d = strtoll(p, &end, 10);
    if (end == p || d < 0 || errno == ERANGE || *rank == 8) {
      free(header);
      fclose(f);
      fail("'%s' has a shape this program cannot read", path);
      return NULL;
    }
    /* The product is checked before it is formed: a header may claim any
       shape. */
    if (d > 0 && *count > (int64_t)(INT64_MAX / (int64_t)width) / d) {
      free(header);
      fclose(f);
      fail("'%s' claims more values than this program can hold", path);
      return NULL;
    }
    shape[(*rank)++] = d;
    *count *= d;
    p = end;
  }
  free(header);
  /* The data must be exactly what the shape says, checked before any
     allocation. */
  const long start = ftell(f);
  int64_t available = -1;
  if (start >= 0 && fseek(f, 0, SEEK_END) == 0) {
    const long end = ftell(f);
    if (end >= start)
      available = (int64_t)(end - start);
    if (fseek(f, start, SEEK_SET) != 0)
      available = -1;
  }
  const int64_t bytes = *count * (int64_t)width;
  if (available >= 0 && available != bytes) {
    fclose(f);
    fail("'%s' holds %s data than its header's shape says", path,
         available > bytes ? "more" : "less");
    return NULL;
  }
  unsigned char *raw = malloc((size_t)bytes + 1);
  float *data = malloc((size_t)*count * sizeof(float) + 1);
  if (!raw || !data) {
    free(raw);
    free(data);
    fclose(f);
    fail("out of memory reading '%s'", path);
    return NULL;
  }
  size_t got = fread(raw, width, (size_t)*count, f);
  int extra = fgetc(f) != EOF;
  fclose(f);
  if (got != (size_t)*count || extra) {
    free(raw);
    free(data);
    fail("'%s' holds %s data than its header's shape says", path,
         extra ? "more" : "less");
    return NULL;
  }
  for (int64_t i = 0; i < *count; ++i) {
    if (wide) {
      double v;
      memcpy(&v, raw + i * 8, 8);
      data[i] = (float)v;
    } else {
      memcpy(&data[i], raw + i * 4, 4);
    }
  }
  free(raw);
  return data;
}

/* The index of the first value of `data` that is not finite (NaN, Inf, or
 * a float64 beyond float32's range), or -1. */
static int64_t first_not_finite(const float *data, int64_t count) {
  for (int64_t i = 0; i < count; ++i)
    if (!isfinite(data[i]))
      return i;
  return -1;
}

/* Prints flat index `i` of an array of shape `shape` as (i0, i1, ...). */
static void print_index(FILE *out, int rank, const int64_t *shape, int64_t i) {
  int64_t at[8];
  for (int k = rank - 1; k >= 0; --k) {
    at[k] = shape[k] ? i % shape[k] : 0;
    i = shape[k] ? i / shape[k] : 0;
  }
  fputc('(', out);
  for (int k = 0; k < rank; ++k)
    fprintf(out, "%lld%s", (long long)at[k],
            k + 1 < rank ? ", " : (rank == 1 ? "," : ""));
  fputc(')', out);
}

/* The temporary a file is written to before it is renamed into place. */
static int temporary_of(const char *path, char *tmp, size_t size) {
  return snprintf(tmp, size, "%s.tmp", path) < (int)size;
}

/* Writes a float32 .npy file to PATH.tmp; write_outputs renames it. */
static int write_npy_tmp(const char *path, int rank, const int64_t *shape,
                         const float *data, int64_t count) {
  char dict[256];
  int n = snprintf(dict, sizeof dict,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  for (int k = 0; k < rank; ++k)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s",
                  (long long)shape[k],
                  rank == 1      ? ","
                  : k + 1 < rank ? ", "
                                 : "");
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  char tmp[4096];
  if (!temporary_of(path, tmp, sizeof tmp))
    return fail("output path too long: '%s'", path);
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return fail("cannot write '%s': %s", path, strerror(errno));
  unsigned hlen = (unsigned)(n + pad + 1);
  unsigned char pre[10] = {0x93,
                           'N',
                           'U',
                           'M',
                           'P',
                           'Y',
                           1,
                           0,
                           (unsigned char)(hlen & 0xff),
                           (unsigned char)(hlen >> 8)};
  int ok =
      fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
  for (int i = 0; ok && i < pad; ++i)
    ok = fputc(' ', f) != EOF;
  ok = ok && fputc('\n', f) != EOF &&
       fwrite(data, sizeof(float), (size_t)count, f) == (size_t)count;
  const int saved = errno;
  ok = (fclose(f) == 0) && ok;
  if (!ok) {
    remove(tmp);
    return fail("cannot write '%s': %s", path, strerror(saved ? saved : EIO));
  }
  return 0;
}

/* Whether ARG, NAME=... with `eq` at its '=' (or NULL), names NAME. */
static int names(const char *arg, const char *eq, const char *name) {
  return eq && strlen(name) == (size_t)(eq - arg) &&
         !strncmp(arg, name, (size_t)(eq - arg));
}

static void usage(FILE *out) {
  if (n_outputs == 1)
    fprintf(out,
            "usage: %s -o OUT.npy [--layers LAYERS.npy] NAME=FILE.npy ...\n"
            "Runs the trained model on the inputs (float32 or float64 "
            ".npy, C order)\nand writes the final state to OUT.npy "
            "(float32, (batch, ...)); --layers\nwrites the state after "
            "every layer, the initial one first.\n",
            program);
  else
    fprintf(out,
            "usage: %s -o STATE=OUT.npy ... [--layers STATE=LAYERS.npy "
            "...] NAME=FILE.npy ...\nRuns the trained model on the "
            "inputs (float32 or float64 .npy, C order)\nand writes the "
            "final value of each state named with -o (float32,\n(batch, "
            "...)); --layers writes a state after every layer, the "
            "initial one first.\n",
            program);
  fprintf(out, "Inputs must be finite (no NaN or Inf). Nothing is written "
               "unless every output is.\n");
  fprintf(out, "inputs:\n");
  for (int i = 0; i < n_inputs; ++i) {
    fprintf(out, "  %s=FILE.npy  shape ", inputs[i].name);
    print_shape(out, inputs[i].batched, inputs[i].rank, inputs[i].shape);
    if (*inputs[i].note)
      fprintf(out, "  %s", inputs[i].note);
    if (inputs[i].fallback)
      fprintf(out, "  (default: the values the run trained with)");
    fputc('\n', out);
  }
  fprintf(out, "states:\n");
  for (int i = 0; i < n_outputs; ++i) {
    fprintf(out, "  %s  shape ", outputs[i].name);
    print_shape(out, 1, outputs[i].rank, outputs[i].shape);
    fputc('\n', out);
  }
}

/* The output that `-o` or `--layers` names with ARG (STATE=FILE, or FILE
   for a model with one state), its file in *path; NULL if none. */
static output_t *output_for(const char *arg, const char **path) {
  if (n_outputs == 1) {
    *path = arg;
    return &outputs[0];
  }
  const char *eq = strchr(arg, '=');
  for (int i = 0; i < n_outputs; ++i)
    if (names(arg, eq, outputs[i].name)) {
      *path = eq + 1;
      return &outputs[i];
    }
  return NULL;
}

/* The k-th file asked for (each state's -o file, then its --layers file,
   state by state), or NULL when fewer were. */
static const char *file_at(int k) {
  for (int i = 0; i < n_outputs; ++i)
    for (int l = 0; l < 2; ++l) {
      const char *p = l ? outputs[i].layers_path : outputs[i].path;
      if (p && k-- == 0)
        return p;
    }
  return NULL;
}

/* Removes the temporaries of the first `done` files written. */
static void remove_temporaries(int done) {
  char tmp[4096];
  for (int k = 0; k < done; ++k)
    if (temporary_of(file_at(k), tmp, sizeof tmp))
      remove(tmp);
}

/* Writes every file asked for: all to temporaries first, then each renamed
   into place, so that a failure leaves none of them written. Returns the
   number written, or -1 after printing why. */
static int write_outputs(int64_t batch) {
  int done = 0;
  for (int i = 0; i < n_outputs; ++i) {
    output_t *o = &outputs[i];
    int64_t shape[10];
    shape[0] = batch;
    for (int k = 0; k < o->rank; ++k)
      shape[k + 1] = o->shape[k];
    if (o->path) {
      if (write_npy_tmp(o->path, o->rank + 1, shape, o->data, o->count)) {
        remove_temporaries(done);
        return -1;
      }
      ++done;
    }
    if (o->layers_path) {
      shape[1] = n_layers + 1;
      for (int k = 0; k < o->rank; ++k)
        shape[k + 2] = o->shape[k];
      if (write_npy_tmp(o->layers_path, o->rank + 2, shape, o->layers,
                        o->layers_count)) {
        remove_temporaries(done);
        return -1;
      }
      ++done;
    }
  }
  char tmp[4096];
  for (int k = 0; k < done; ++k) {
    const char *p = file_at(k);
    temporary_of(p, tmp, sizeof tmp);
    if (rename(tmp, p) != 0) {
      const int saved = errno;
      remove_temporaries(done);
      return fail("cannot write '%s': %s", p, strerror(saved)), -1;
    }
  }
  return done;
}

int main(int argc, char **argv) {
  program = argv[0];
  int any_out = 0, any_layers = 0;
  for (int a = 1; a < argc; ++a) {
    if (!strcmp(argv[a], "-h") || !strcmp(argv[a], "--help")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(argv[a], "-o") || !strcmp(argv[a], "--layers")) {
      const int is_out = !strcmp(argv[a], "-o");
      if (a + 1 == argc)
        return fail("%s needs %s", argv[a],
                    n_outputs == 1 ? "a file name" : "STATE=FILE.npy");
      const char *path = NULL;
      output_t *o = output_for(argv[++a], &path);
      if (!o) {
        usage(stderr);
        return fail("%s '%s': expected STATE=FILE.npy for a state above",
                    argv[a - 1], argv[a]);
      }
      if (is_out) {
        o->path = path;
        any_out = 1;
      } else {
        o->layers_path = path;
        any_layers = 1;
      }
      continue;
    }
    const char *eq = strchr(argv[a], '=');
    int found = 0;
    for (int i = 0; i < n_inputs; ++i)
      if (names(argv[a], eq, inputs[i].name)) {
        inputs[i].path = eq + 1;
        found = 1;
      }
    if (!found) {
      usage(stderr);
      return fail("unexpected argument '%s'", argv[a]);
    }
  }
  if (!any_out) {
    usage(stderr);
    return fail(n_outputs == 1 ? "no output file (-o OUT.npy)"
                               : "no output file (-o STATE=OUT.npy)");
  }
  int64_t batch = -1;
  const char *batch_from = NULL;
  for (int i = 0; i < n_inputs; ++i) {
    input_t *in = &inputs[i];
    if (!in->path && in->fallback) {
      in->data = (float *)in->fallback; /* read only */
      in->count = in->fallback_count;
      continue;
    }
    if (!in->path) {
      usage(stderr);
      return fail("missing input %s=FILE.npy", in->name);
    }
    int rank;
    int64_t shape[8];
    in->data = read_npy(in->path, &rank, shape, &in->count);
    if (!in->data)
      return 1;
    int lead = in->batched ? 1 : 0, ok = rank == in->rank + lead;
    for (int k = 0; ok && k < in->rank; ++k)
      ok = shape[k + lead] == in->shape[k];
    if (ok && in->batched && batch >= 0 && shape[0] != batch) {
      return fail("'%s' holds %lld instances but '%s' holds %lld", in->path,
                  (long long)shape[0], batch_from, (long long)batch);
    }
    if (!ok || (in->batched && shape[0] < 1)) {
      fprintf(stderr, "%s: error: '%s' for input %s has shape ", program,
              in->path, in->name);
      print_shape(stderr, 0, rank, shape);
      fprintf(stderr, "; the model expects ");
      print_shape(stderr, in->batched, in->rank, in->shape);
      fputc('\n', stderr);
      return 1;
    }
    if (in->batched && shape[0] > INT32_MAX)
      return fail("'%s' holds %lld instances; the model runs at most %d at "
                  "a time",
                  in->path, (long long)shape[0], INT32_MAX);
    const int64_t bad = first_not_finite(in->data, in->count);
    if (bad >= 0) {
      const float v = in->data[bad];
      fprintf(stderr, "%s: error: '%s' for input %s holds %s at index ",
              program, in->path, in->name,
              isnan(v) ? "NaN" : "Inf (or a value beyond float32's range)");
      print_index(stderr, rank, shape, bad);
      fprintf(stderr, "; inputs must be finite\n");
      return 1;
    }
    if (in->batched && batch < 0) {
      batch = shape[0];
      batch_from = in->path;
    }
  }
  if (batch < 0)
    batch = 1;
  /* Every state is computed; those not asked for go to scratch arrays.
     Per-layer arrays are all or none for the model. */
  for (int i = 0; i < n_outputs; ++i) {
    output_t *o = &outputs[i];
    int64_t per = 1;
    for (int k = 0; k < o->rank; ++k)
      per *= o->shape[k];
    if (per > 0 &&
        batch > INT64_MAX / (int64_t)sizeof(float) / per / (n_layers + 1))
      return fail("%lld instances do not fit in memory", (long long)batch);
    o->count = batch * per;
    o->layers_count = batch * (n_layers + 1) * per;
    o->data = malloc(sizeof(float) * (size_t)o->count + 1);
    o->layers =
        any_layers ? malloc(sizeof(float) * (size_t)o->layers_count + 1) : NULL;
    if (!o->data || (any_layers && !o->layers))
      return fail("out of memory for %lld instances", (long long)batch);
  }
  const char *failed = unroll_run_model(batch);
  if (failed)
    return fail("the model failed: %s", failed);
  const int written = write_outputs(batch);
  if (written < 0)
    return 1;
  fprintf(stderr, "%s: %lld instances, %lld layers: wrote", program,
          (long long)batch, (long long)n_layers);
  for (int k = 0; k < written; ++k)
    fprintf(stderr, "%s%s", k == 0 ? " " : (k + 1 == written ? " and " : ", "),
            file_at(k));
  fputc('\n', stderr);
  return 0;
}
