// `unrollc build`: an exported model linked into a command-line program
// that reads .npy inputs and writes .npy outputs.
#include "compiler/export/Export.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace unroll::compiler {

namespace fs = std::filesystem;

namespace {

/// The part of the program that does not depend on the model: .npy
/// reading and writing, messages.
const char *kNpyLibrary = R"C(
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Reads a C-order float32 or float64 .npy file as float32. Returns NULL
 * after printing why. */
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
  char *header = malloc(hlen + 1);
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
    free(header);
    fclose(f);
    fail("'%s' holds %.6s values; expected float32 ('<f4') or float64 "
         "('<f8')",
         path, descr ? descr : "unknown");
    return NULL;
  }
  if (!order || strncmp(order, "False", 5) != 0 || !sh || *sh != '(') {
    free(header);
    fclose(f);
    fail("'%s' is not a C-order array", path);
    return NULL;
  }
  *rank = 0;
  *count = 1;
  for (const char *p = sh + 1; *p && *p != ')';) {
    if (*p == ' ' || *p == ',') {
      ++p;
      continue;
    }
    char *end;
    long long d = strtoll(p, &end, 10);
    if (end == p || d < 0 || *rank == 8) {
      free(header);
      fclose(f);
      fail("'%s' has a shape this program cannot read", path);
      return NULL;
    }
    shape[(*rank)++] = d;
    *count *= d;
    p = end;
  }
  free(header);
  size_t width = wide ? 8 : 4;
  unsigned char *raw = malloc((size_t)*count * width + 1);
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

/* Writes a float32 .npy file through a temporary file and a rename, so a
 * reader never sees half of it. */
static int write_npy(const char *path, int rank, const int64_t *shape,
                     const float *data, int64_t count) {
  char dict[256];
  int n = snprintf(dict, sizeof dict,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (");
  for (int k = 0; k < rank; ++k)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s",
                  (long long)shape[k], rank == 1 ? "," : k + 1 < rank ? ", " : "");
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
    return fail("output path too long: '%s'", path);
  FILE *f = fopen(tmp, "wb");
  if (!f)
    return fail("cannot write '%s': %s", tmp, strerror(errno));
  unsigned hlen = (unsigned)(n + pad + 1);
  unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                           (unsigned char)(hlen & 0xff),
                           (unsigned char)(hlen >> 8)};
  int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
  for (int i = 0; ok && i < pad; ++i)
    ok = fputc(' ', f) != EOF;
  ok = ok && fputc('\n', f) != EOF &&
       fwrite(data, sizeof(float), (size_t)count, f) == (size_t)count;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    remove(tmp);
    return fail("cannot write '%s': %s", path, strerror(errno));
  }
  return 0;
}

typedef struct {
  const char *name;
  const char *note;
  int batched;
  int rank; /* per instance */
  int64_t shape[8];
  const char *path;
  float *data;
  int64_t count;
} input_t;

typedef struct {
  const char *name; /* the state variable */
  int rank;         /* per instance */
  int64_t shape[8];
  const char *path, *layers_path;
  float *data, *layers;
  int64_t count, layers_count;
} output_t;

/* Whether ARG, NAME=... with `eq` at its '=' (or NULL), names NAME. */
static int names(const char *arg, const char *eq, const char *name) {
  return eq && strlen(name) == (size_t)(eq - arg) &&
         !strncmp(arg, name, (size_t)(eq - arg));
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
)C";

std::string shapeList(const std::vector<int64_t> &s) {
  std::string r = "{";
  for (size_t k = 0; k < s.size(); ++k)
    r += (k ? ", " : "") + std::to_string(s[k]);
  return r + (s.empty() ? "0}" : "}");
}

/// main(): arguments, checks of every shape against the model, the call.
std::string mainProgram(const ExportSummary &m) {
  const std::string &n = m.name;
  std::string N = n;
  for (char &c : N)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::ostringstream c;
  c << "/* " << n << ": a trained model as a program, made by `unrollc "
    << "build`. */\n#include \"" << n << ".h\"\n"
    << kNpyLibrary << "\n"
    << "static input_t inputs[] = {\n";
  for (const auto &in : m.inputs)
    c << "    {\"" << in.name << "\", \"" << in.note << "\", "
      << (in.batched ? 1 : 0) << ", " << in.shape.size() << ", "
      << shapeList(in.shape) << ", NULL, NULL, 0},\n";
  c << "};\nstatic const int n_inputs = " << m.inputs.size() << ";\n"
    << "static output_t outputs[] = {\n";
  for (const auto &st : m.states)
    c << "    {\"" << st.name << "\", " << st.shape.size() << ", "
      << shapeList(st.shape) << ", NULL, NULL, NULL, NULL, 0, 0},\n";
  c << "};\nstatic const int n_outputs = " << m.states.size() << ";\n"
    << "static const int64_t n_layers = " << m.layers << ";\n\n";
  c << R"C(static void usage(FILE *out) {
  if (n_outputs == 1)
    fprintf(out, "usage: %s -o OUT.npy [--layers LAYERS.npy] NAME=FILE.npy ...\n"
                 "Runs the trained model on the inputs (float32 or float64 "
                 ".npy, C order)\nand writes the final state to OUT.npy "
                 "(float32, (batch, ...)); --layers\nwrites the state after "
                 "every layer, the initial one first.\n", program);
  else
    fprintf(out, "usage: %s -o STATE=OUT.npy ... [--layers STATE=LAYERS.npy "
                 "...] NAME=FILE.npy ...\nRuns the trained model on the "
                 "inputs (float32 or float64 .npy, C order)\nand writes the "
                 "final value of each state named with -o (float32,\n(batch, "
                 "...)); --layers writes a state after every layer, the "
                 "initial one first.\n", program);
  fprintf(out, "inputs:\n");
  for (int i = 0; i < n_inputs; ++i) {
    fprintf(out, "  %s=FILE.npy  shape ", inputs[i].name);
    print_shape(out, inputs[i].batched, inputs[i].rank, inputs[i].shape);
    if (*inputs[i].note)
      fprintf(out, "  %s", inputs[i].note);
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
    o->count = batch * per;
    o->layers_count = batch * (n_layers + 1) * per;
    o->data = malloc(sizeof(float) * (size_t)o->count + 1);
    o->layers = any_layers ? malloc(sizeof(float) * (size_t)o->layers_count + 1)
                           : NULL;
    if (!o->data || (any_layers && !o->layers))
      return fail("out of memory for %lld instances", (long long)batch);
  }
)C";
  c << "  int status = " << n << "_run(batch";
  for (size_t i = 0; i < m.inputs.size(); ++i)
    c << ", inputs[" << i << "].data, inputs[" << i << "].count";
  for (size_t i = 0; i < m.states.size(); ++i)
    c << ", outputs[" << i << "].data, outputs[" << i << "].count";
  for (size_t i = 0; i < m.states.size(); ++i)
    c << ", outputs[" << i << "].layers, outputs[" << i << "].layers ? outputs["
      << i << "].layers_count : 0";
  c << ");\n"
    << "  if (status != " << N << "_OK)\n"
    << "    return fail(\"the model failed: %s\", " << n
    << "_status_string(status));\n";
  c << R"C(  int written = 0;
  for (int i = 0; i < n_outputs; ++i) {
    output_t *o = &outputs[i];
    int64_t shape[10];
    shape[0] = batch;
    for (int k = 0; k < o->rank; ++k)
      shape[k + 1] = o->shape[k];
    if (o->path) {
      if (write_npy(o->path, o->rank + 1, shape, o->data, o->count))
        return 1;
      ++written;
    }
    if (o->layers_path) {
      shape[1] = n_layers + 1;
      for (int k = 0; k < o->rank; ++k)
        shape[k + 2] = o->shape[k];
      if (write_npy(o->layers_path, o->rank + 2, shape, o->layers,
                    o->layers_count))
        return 1;
      ++written;
    }
  }
  fprintf(stderr, "%s: %lld instances, %lld layers: wrote", program,
          (long long)batch, (long long)n_layers);
  int listed = 0;
  for (int i = 0; i < n_outputs; ++i)
    for (int l = 0; l < 2; ++l) {
      const char *p = l ? outputs[i].layers_path : outputs[i].path;
      if (!p)
        continue;
      ++listed;
      fprintf(stderr, "%s%s",
              listed == 1 ? " " : (listed == written ? " and " : ", "), p);
    }
  fputc('\n', stderr);
  return 0;
}
)C";
  return c.str();
}

} // namespace

void buildExecutable(const nlohmann::json &plan,
                     const std::map<std::string, Halide::Buffer<float>> &params,
                     const std::string &exePath, const ExportOptions &opts,
                     std::ostream &log) {
  fs::path exe = fs::absolute(exePath);
  std::error_code ec;
  if (fs::is_directory(exe, ec))
    throw ExportError("'" + exePath +
                      "' is a directory; -o names the "
                      "executable to write");
  if (!fs::is_directory(exe.parent_path(), ec))
    throw ExportError("cannot write '" + exePath + "': no directory '" +
                      exe.parent_path().string() + "'");
  // The library is an intermediate: exported next to nothing the user
  // keeps, and removed whatever happens.
  char tmpl[] = "/tmp/unroll-build-XXXXXX";
  if (!mkdtemp(tmpl))
    throw ExportError("cannot create a scratch directory in /tmp");
  fs::path scratch(tmpl);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(p, e);
    }
  } cleanup{scratch};

  ExportOptions eo = opts;
  eo.outDir = (scratch / "export").string();
  eo.command = "build";
  ExportSummary m = exportModel(plan, params, eo, log);
  fs::path main = scratch / "main.c";
  {
    std::ofstream out(main);
    out << mainProgram(m);
    if (!out)
      throw ExportError("cannot write '" + main.string() + "'");
  }
  // Linked into a temporary name first: a failed build leaves any older
  // executable in place.
  fs::path tmpExe = exe.string() + ".tmp";
  fs::path logFile = scratch / "cc.log";
  std::string cmd = "cc -O2 -o '" + tmpExe.string() + "' '" + main.string() +
                    "' -I'" + m.includeDir + "' '" + m.staticLibrary +
                    "' -lpthread -ldl -lm > '" + logFile.string() + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream in(logFile);
    std::stringstream ss;
    ss << in.rdbuf();
    fs::remove(tmpExe, ec);
    throw ExportError("linking the program failed:\n" + ss.str());
  }
  fs::rename(tmpExe, exe, ec);
  if (ec)
    throw ExportError("cannot write '" + exePath + "': " + ec.message());
  log << "build: wrote " << exe.string() << " (run it with --help)\n";
}

} // namespace unroll::compiler
