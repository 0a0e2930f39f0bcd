#pragma once
// What the user probably meant, for a command line the parser rejected:
// `unrollc trian SPEC` (train), `train SPEC --reume` (--resume),
// `train SPEC --epoch 3` (--set epochs=3).

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace unroll::driver {

/// A message for the arguments `args` (argv without the program) of `app`
/// naming the first unknown subcommand or option and the closest known
/// one, or "" when there is nothing better to say than the parser's own
/// message. `settings` are keys that --set takes (an option that names one
/// is suggested as --set KEY=VALUE).
std::string suggestFix(const CLI::App &app,
                       const std::vector<std::string> &args,
                       const std::vector<std::string> &settings);

} // namespace unroll::driver
