#include "Suggest.h"

#include "dsl/Diagnostics.h"

#include <filesystem>

namespace unroll::driver {

namespace {

/// The named option of `app` that `arg` ("--out", "--out=DIR", "-o")
/// stands for, or null.
const CLI::Option *optionOf(const CLI::App &app, const std::string &arg) {
  const std::string name = arg.substr(0, arg.find('='));
  for (const CLI::Option *o : app.get_options()) {
    for (const std::string &l : o->get_lnames())
      if (name == "--" + l)
        return o;
    for (const std::string &s : o->get_snames())
      if (name == "-" + s)
        return o;
  }
  return nullptr;
}

/// "unrollc" or "unrollc train", for messages.
std::string commandName(const CLI::App &app) {
  const CLI::App *parent = app.get_parent();
  return parent ? commandName(*parent) + " " + app.get_name() : "unrollc";
}

std::string unknownOption(const CLI::App &scope, const std::string &arg,
                          const std::string &next,
                          const std::vector<std::string> &settings) {
  const std::string name = arg.substr(0, arg.find('='));
  std::vector<std::string> known;
  for (const CLI::Option *o : scope.get_options())
    for (const std::string &l : o->get_lnames())
      known.push_back("--" + l);
  const std::string head =
      "unknown option '" + name + "' for '" + commandName(scope) + "'";
  const std::string option = dsl::closestMatch(name, known);
  if (!option.empty())
    return head + "; did you mean '" + option + "'?";
  std::string bare = name;
  while (!bare.empty() && bare[0] == '-')
    bare.erase(0, 1);
  std::string key = dsl::closestMatch(bare, settings);
  for (const std::string &s : settings)
    if (s == bare)
      key = s;
  if (!key.empty()) {
    std::string value = arg.find('=') != std::string::npos
                            ? arg.substr(arg.find('=') + 1)
                        : !next.empty() && next[0] != '-' ? next
                                                          : "VALUE";
    return head + "; did you mean '--set " + key + "=" + value + "'?";
  }
  return head + "; see '" + commandName(scope) + " --help'";
}

} // namespace

std::string suggestFix(const CLI::App &app,
                       const std::vector<std::string> &args,
                       const std::vector<std::string> &settings) {
  std::vector<std::string> commands;
  for (const CLI::App *sub : app.get_subcommands({}))
    commands.push_back(sub->get_name());
  const CLI::App *cmd = nullptr;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    const CLI::App &scope = cmd ? *cmd : app;
    if (a.size() > 1 && a[0] == '-') {
      if (a == "--")
        return "";
      const CLI::Option *o = optionOf(scope, a);
      if (!o)
        return unknownOption(scope, a, i + 1 < args.size() ? args[i + 1] : "",
                             settings);
      // An option's value is the next argument unless written with '='.
      if (o->get_items_expected_min() > 0 && a.find('=') == std::string::npos)
        ++i;
      continue;
    }
    if (cmd)
      continue;
    for (const CLI::App *sub : app.get_subcommands({}))
      if (sub->get_name() == a)
        cmd = sub;
    if (cmd)
      continue;
    // Not a command: a spec file for --emit, unless it is none and reads
    // like a command mistyped.
    std::error_code ec;
    const std::string close = dsl::closestMatch(a, commands);
    if (!close.empty() && !std::filesystem::exists(a, ec))
      return "unknown command '" + a + "'; did you mean '" + close + "'?";
  }
  return "";
}

} // namespace unroll::driver
