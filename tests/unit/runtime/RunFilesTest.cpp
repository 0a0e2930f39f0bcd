// Files the runtime reads and writes: safetensors checkpoints (round trip,
// atomic replacement, corrupt input) and IDX datasets (gzip or not).
#include "runtime/Data.h"
#include "runtime/Safetensors.h"

#include <catch2/catch.hpp>

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace unroll;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("unroll-test-" + std::to_string(::getpid()) + "-" +
            std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int &counter() {
    static int c = 0;
    return c;
  }
  std::string operator/(const std::string &f) const {
    return (path / f).string();
  }
};

void writeBytes(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// An IDX file of unsigned bytes with the given dimensions.
std::string idx(const std::vector<uint32_t> &dims,
                const std::vector<uint8_t> &data) {
  std::string s{0, 0, 8, static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int k = 3; k >= 0; --k)
      s += static_cast<char>((d >> (8 * k)) & 0xff);
  s.append(data.begin(), data.end());
  return s;
}

void writeGz(const std::string &path, const std::string &bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
          static_cast<int>(bytes.size()));
  gzclose(f);
}

} // namespace

TEST_CASE("safetensors: round trip of dtypes, shapes and metadata",
          "[runfiles]") {
  TempDir dir;
  runtime::TensorFile f;
  f.tensors["a"] = torch::randn({3, 4});
  f.tensors["b.x"] = torch::arange(5, torch::kInt64);
  f.tensors["c"] = torch::tensor(2.5, torch::kFloat64);
  f.tensors["empty"] = torch::zeros({0, 3});
  f.tensors["strided"] = torch::randn({4, 3}).t(); // not contiguous
  f.metadata["epoch"] = "7";
  runtime::writeSafetensors(dir / "x.safetensors", f);
  auto g = runtime::readSafetensors(dir / "x.safetensors");
  REQUIRE(g.tensors.size() == 5);
  for (auto &[name, t] : f.tensors) {
    INFO(name);
    CHECK(g.tensors[name].scalar_type() == t.scalar_type());
    CHECK(torch::equal(g.tensors[name], t));
  }
  CHECK(g.metadata["epoch"] == "7");
  // The header is padded to 8 bytes, as the format asks.
  std::string bytes = readBytes(dir / "x.safetensors");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  CHECK(n % 8 == 0);
  CHECK(bytes[8] == '{');
}

TEST_CASE("safetensors: replacing a file is atomic and leaves no temp file",
          "[runfiles]") {
  TempDir dir;
  runtime::TensorFile f;
  f.tensors["w"] = torch::ones({2});
  runtime::writeSafetensors(dir / "c.safetensors", f);
  f.tensors["w"] = torch::full({2}, 3.0);
  runtime::writeSafetensors(dir / "c.safetensors", f);
  CHECK(
      torch::equal(runtime::readSafetensors(dir / "c.safetensors").tensors["w"],
                   torch::full({2}, 3.0)));
  int files = 0;
  for (auto &e : fs::directory_iterator(dir.path)) {
    (void)e;
    ++files;
  }
  CHECK(files == 1);
  // A directory that does not exist: an error, nothing written.
  CHECK_THROWS_AS(runtime::writeSafetensors(dir / "no/such/c.safetensors", f),
                  runtime::FileError);
}

TEST_CASE("safetensors: corrupt files are rejected with the file's name",
          "[runfiles]") {
  TempDir dir;
  runtime::TensorFile f;
  f.tensors["w"] = torch::randn({16});
  runtime::writeSafetensors(dir / "good", f);
  std::string good = readBytes(dir / "good");
  auto rejects = [&](const std::string &bytes, const std::string &why) {
    writeBytes(dir / "bad", bytes);
    CHECK_THROWS_WITH(runtime::readSafetensors(dir / "bad"),
                      Catch::Contains(dir / "bad") && Catch::Contains(why));
  };
  rejects("", "shorter than its 8-byte header length");
  rejects(good.substr(0, good.size() - 4), "lies outside the data");
  std::string huge = good;
  huge[7] = 0x7f;
  rejects(huge, "exceeds the file size");
  std::string notJson = good;
  notJson[8] = '[';
  rejects(notJson, "not a JSON object");
  std::string dtype = good;
  dtype.replace(dtype.find("F32"), 3, "Q99");
  rejects(dtype, "unsupported dtype");
  CHECK_THROWS_WITH(runtime::readSafetensors(dir / "missing"),
                    Catch::Contains("cannot open"));
}

TEST_CASE("safetensors: a flipped bit in tensor data fails its checksum",
          "[runfiles]") {
  TempDir dir;
  runtime::TensorFile f;
  f.tensors["w"] = torch::randn({64});
  f.tensors["v"] = torch::arange(10, torch::kInt64);
  runtime::writeSafetensors(dir / "good", f);
  runtime::TensorFile g = runtime::readSafetensors(dir / "good");
  CHECK(g.metadata.at(runtime::checksumKey("w")) ==
        runtime::checksumOf(f.tensors["w"]));
  const std::string good = readBytes(dir / "good");
  // Every bit of the data section, one at a time in steps: each flip is
  // caught and names the tensor it hit.
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(good[i])) << (8 * i);
  const size_t start = 8 + n;
  int caught = 0, tried = 0;
  for (size_t byte = start; byte < good.size(); byte += 37)
    for (int bit = 0; bit < 8; bit += 3) {
      std::string bad = good;
      bad[byte] = static_cast<char>(bad[byte] ^ (1 << bit));
      writeBytes(dir / "bad", bad);
      ++tried;
      try {
        runtime::readSafetensors(dir / "bad");
      } catch (const runtime::FileError &e) {
        caught += std::string(e.what()).find("does not match its checksum") !=
                  std::string::npos;
      }
    }
  CHECK(tried > 20);
  CHECK(caught == tried);
  // A file without checksums (another tool's) still reads.
  std::string plain = good;
  const size_t at = plain.find("\"crc32.");
  REQUIRE(at != std::string::npos);
  plain.replace(at, 6, "\"xxxxx");
  writeBytes(dir / "plain", plain);
  CHECK_NOTHROW(runtime::readSafetensors(dir / "plain"));
}

TEST_CASE("IDX files: gzip and plain, dimensions, corrupt input",
          "[runfiles]") {
  TempDir dir;
  std::vector<uint8_t> pixels(2 * 3 * 4);
  for (size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = static_cast<uint8_t>(i * 10);
  writeGz(dir / "img.gz", idx({2, 3, 4}, pixels));
  writeBytes(dir / "img", idx({2, 3, 4}, pixels));
  for (const std::string name : {"img.gz", "img"}) {
    INFO(name);
    torch::Tensor t = runtime::readIdx(dir / name);
    CHECK(t.sizes() == torch::IntArrayRef({2, 3, 4}));
    CHECK(t[1][2][3].item<int>() == 230);
  }
  writeGz(dir / "short.gz", idx({2, 3, 4}, {1, 2, 3}));
  CHECK_THROWS_WITH(runtime::readIdx(dir / "short.gz"),
                    Catch::Contains("expected 24 data bytes, found 3"));
  writeGz(dir / "magic.gz", "\x01\x02\x03\x04");
  CHECK_THROWS_WITH(runtime::readIdx(dir / "magic.gz"),
                    Catch::Contains("bad magic number"));
  CHECK_THROWS_AS(runtime::readIdx(dir / "missing.gz"), runtime::FileError);
}

TEST_CASE("Fashion-MNIST from the system dataset package", "[runfiles]") {
  const std::string file =
      "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  if (!fs::exists(file)) {
    WARN("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  torch::Tensor labels = runtime::readIdx(file);
  CHECK(labels.sizes() == torch::IntArrayRef({10000}));
  CHECK(labels.max().item<int>() == 9);
}
