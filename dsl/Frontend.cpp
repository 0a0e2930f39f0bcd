#include "dsl/Frontend.h"

#include "dsl/Settings.h"

#include <cstdlib>
#include <filesystem>

#ifndef UNROLL_STDLIB_DIR
#define UNROLL_STDLIB_DIR ""
#endif
#ifndef UNROLL_INSTALLED_STDLIB_DIR
#define UNROLL_INSTALLED_STDLIB_DIR ""
#endif

namespace unroll::dsl {

std::vector<std::string> defaultLibraryPath() {
  std::vector<std::string> out;
  if (const char *env = std::getenv("UNROLL_STDLIB"); env && *env)
    out.push_back(env);
  for (const char *d : {UNROLL_INSTALLED_STDLIB_DIR, UNROLL_STDLIB_DIR}) {
    std::error_code ec;
    if (*d && std::filesystem::is_directory(d, ec))
      out.push_back(d);
  }
  return out;
}

std::unique_ptr<Frontend> runFrontend(const std::string &path,
                                      const std::string *text,
                                      const FrontendOptions &opts,
                                      std::ostream &err) {
  auto fe = std::make_unique<Frontend>();
  fe->diag = std::make_unique<DiagnosticEngine>(fe->sources, err);
  fe->loader =
      std::make_unique<Loader>(fe->sources, *fe->diag, opts.libraryPath);
  fe->main =
      text ? fe->loader->loadMainText(path, *text) : fe->loader->loadMain(path);
  if (!fe->main || opts.parseOnly)
    return fe;
  if (!opts.settings.empty() && !fe->main->hadSyntaxErrors &&
      !applySettings(*fe->main->ast, opts.settings, err)) {
    fe->badSettings = true;
    return fe;
  }
  fe->sema = std::make_unique<Sema>(fe->sources, *fe->diag, *fe->loader);
  fe->sema->checkAll();
  return fe;
}

} // namespace unroll::dsl
