#include "dsl/Loader.h"

#include "dsl/Parser.h"

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace unroll::dsl {

LoadedFile *Loader::loadMain(const std::string &path) {
  std::string err;
  uint32_t id = sm_.addFile(path, err);
  if (!id) {
    diag_.error(SourceLoc{}, err);
    return nullptr;
  }
  return finish(id, "");
}

LoadedFile *Loader::loadMainText(const std::string &path,
                                 const std::string &text) {
  return finish(sm_.addBuffer(path, text), "");
}

LoadedFile *Loader::finish(uint32_t id, const std::string &libName) {
  auto f = std::make_unique<LoadedFile>();
  f->id = id;
  f->libName = libName;
  unsigned before = diag_.errorCount();
  f->ast = parseFile(sm_, id, diag_);
  f->hadSyntaxErrors = diag_.errorCount() != before;
  LoadedFile *raw = f.get();
  files_.push_back(std::move(f));
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(sm_.path(id), ec);
  byPath_[ec ? sm_.path(id) : canon.string()] = raw;
  stack_.push_back(raw);
  resolveImports(raw);
  stack_.pop_back();
  ordered_.push_back(raw);
  return raw;
}

std::string Loader::findLibrary(const std::string &name, uint32_t from) const {
  std::vector<fs::path> dirs;
  dirs.push_back(fs::path(sm_.path(from)).parent_path());
  for (const std::string &d : searchPath_)
    dirs.push_back(d);
  for (const fs::path &d : dirs) {
    fs::path p = d / (name + ".unroll");
    std::error_code ec;
    if (fs::is_regular_file(p, ec))
      return p.string();
  }
  return "";
}

void Loader::resolveImports(LoadedFile *f) {
  for (const ImportDecl &imp : f->ast->imports) {
    std::string path = findLibrary(imp.name, f->id);
    if (path.empty()) {
      std::string hint = closestMatch(imp.name, availableLibraries());
      diag_.error(imp.loc,
                  "unknown library '" + imp.name + "'" +
                      (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      continue;
    }
    std::error_code ec;
    std::string key = fs::weakly_canonical(path, ec).string();
    if (ec)
      key = path;
    auto it = byPath_.find(key);
    if (it != byPath_.end()) {
      LoadedFile *dep = it->second;
      if (std::find(stack_.begin(), stack_.end(), dep) != stack_.end()) {
        std::string chain;
        bool on = false;
        for (LoadedFile *s : stack_) {
          on |= s == dep;
          if (on)
            chain +=
                (s->libName.empty() ? fs::path(sm_.path(s->id)).stem().string()
                                    : s->libName) +
                " -> ";
        }
        diag_.error(imp.loc, "import cycle: " + chain + imp.name);
        continue;
      }
      f->imports.push_back(dep);
      continue;
    }
    std::string err;
    uint32_t id = sm_.addFile(path, err);
    if (!id) {
      diag_.error(imp.loc, err);
      continue;
    }
    f->imports.push_back(finish(id, imp.name));
  }
}

std::vector<std::string> Loader::availableLibraries() const {
  std::vector<std::string> out;
  for (const std::string &d : searchPath_) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(d, ec);
         !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->path().extension() == ".unroll")
        out.push_back(it->path().stem().string());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> Loader::namesDefinedBy(const std::string &lib) {
  auto it = libNames_.find(lib);
  if (it != libNames_.end())
    return it->second;
  std::vector<std::string> names;
  for (const std::string &d : searchPath_) {
    fs::path p = fs::path(d) / (lib + ".unroll");
    std::error_code ec;
    if (!fs::is_regular_file(p, ec))
      continue;
    // Parsed into a private SourceManager: its errors are not the user's.
    SourceManager quietSm;
    std::ostringstream sink;
    DiagnosticEngine quiet(quietSm, sink);
    std::string err;
    uint32_t id = quietSm.addFile(p.string(), err);
    if (!id)
      break;
    auto m = parseFile(quietSm, id, quiet);
    for (auto &f : m->fns)
      names.push_back(f->name);
    for (auto &md : m->modules)
      names.push_back(md->name);
    for (auto &pr : m->problems)
      names.push_back(pr->name);
    break;
  }
  return libNames_[lib] = names;
}

} // namespace unroll::dsl
