#include "dsl/Settings.h"

#include "dsl/Lexer.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace unroll::dsl {

namespace {

/// The value of a setting as the parser would have produced it; the
/// location is the one of the expression it replaces, so that later errors
/// (a non-positive size, say) still point into the spec. Null with `why`
/// set when the text is a number the language rejects.
ExprPtr parseValue(const std::string &text, SourceLoc loc, std::string &why) {
  if (text.empty())
    return nullptr;
  // A number as the lexer reads one (no "nan", "inf", hexadecimal or
  // leading '.'), with an optional sign.
  const size_t digits = text[0] == '-' || text[0] == '+' ? 1 : 0;
  bool isFloat = false;
  if (digits < text.size() &&
      std::isdigit(static_cast<unsigned char>(text[digits])) &&
      scanNumber(text, digits, isFloat) == text.size()) {
    double v = 0;
    long long integer = 0;
    if (!convertNumber(text, isFloat, v, integer, why))
      return nullptr;
    return std::make_unique<NumberExpr>(loc, v, !isFloat);
  }
  std::string lower = text;
  for (char &c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!lower.empty() && (lower[0] == '-' || lower[0] == '+'))
    lower.erase(0, 1);
  if (lower == "nan" || lower == "inf" || lower == "infinity") {
    why = "'" + text +
          "' is not a number the language accepts; values must "
          "be finite";
    return nullptr;
  }
  bool ident =
      std::isalpha(static_cast<unsigned char>(text[0])) || text[0] == '_';
  for (char c : text)
    ident = ident && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (ident)
    return std::make_unique<NameExpr>(loc, text);
  // Text in double quotes is a string ("data.path=\"/data/fmnist\"").
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"')
    return std::make_unique<StringExpr>(loc, text.substr(1, text.size() - 2));
  return nullptr;
}

/// Sets argument `name` of a call's argument list, adding it if absent.
void setArg(std::vector<Arg> &args, const std::string &name, ExprPtr v,
            SourceLoc at) {
  for (Arg &a : args)
    if (a.name == name) {
      v->loc = a.value->loc;
      a.value = std::move(v);
      return;
    }
  Arg a;
  a.name = name;
  a.loc = at;
  a.value = std::move(v);
  args.push_back(std::move(a));
}

/// The argument list of a configuration item (`adam(lr = 1)`); a bare name
/// (`adam`) becomes a call so that it can take arguments.
std::vector<Arg> *configArgs(ExprPtr &e) {
  if (e && e->kind == Expr::Kind::Name) {
    auto call = std::make_unique<CallExpr>(e->loc, std::move(e));
    e = std::move(call);
  }
  if (!e || e->kind != Expr::Kind::Call)
    return nullptr;
  return &static_cast<CallExpr &>(*e).args;
}

} // namespace

bool applySettings(Module &m, const std::vector<std::string> &settings,
                   std::ostream &err) {
  bool ok = true;
  auto fail = [&](const std::string &s, const std::string &msg) {
    err << "error: --set " << s << ": " << msg << "\n";
    ok = false;
  };
  UnrolledDecl *u = m.unrolleds.empty() ? nullptr : m.unrolleds[0].get();
  TrainDecl *t = m.trains.empty() ? nullptr : m.trains[0].get();
  for (const std::string &s : settings) {
    size_t eq = s.find('=');
    if (eq == std::string::npos || eq == 0) {
      fail(s, "expected key=value");
      continue;
    }
    std::string key = s.substr(0, eq), text = s.substr(eq + 1);
    if (key == "descend" || key == "noise") {
      if (text != "off") {
        fail(s, "the only value is 'off'");
        continue;
      }
      if (!t) {
        fail(s, "the spec has no train block");
        continue;
      }
      auto kind =
          key == "descend" ? TrainItem::Kind::Descend : TrainItem::Kind::Noise;
      auto &items = t->items;
      items.erase(
          std::remove_if(items.begin(), items.end(),
                         [&](const TrainItem &it) { return it.kind == kind; }),
          items.end());
      continue;
    }
    SourceLoc at = t ? t->loc : u ? u->loc : SourceLoc{};
    std::string why;
    ExprPtr value = parseValue(text, at, why);
    if (!value) {
      fail(s, why.empty() ? "the value must be a number, a name or a \"string\""
                          : why);
      continue;
    }
    size_t dot = key.find('.');
    if (dot != std::string::npos) {
      std::string section = key.substr(0, dot), arg = key.substr(dot + 1);
      static const std::pair<const char *, TrainItem::Kind> sections[] = {
          {"data", TrainItem::Kind::Data},
          {"primal", TrainItem::Kind::Primal},
          {"dual", TrainItem::Kind::Dual},
          {"evaluate", TrainItem::Kind::Evaluate}};
      auto sec = std::find_if(std::begin(sections), std::end(sections),
                              [&](auto &p) { return section == p.first; });
      if (sec == std::end(sections) || arg.empty()) {
        fail(s, "unknown section '" + section +
                    "'; settable sections are data, primal, dual, evaluate");
        continue;
      }
      TrainItem *item = nullptr;
      if (t)
        for (TrainItem &it : t->items)
          if (it.kind == sec->second && !item)
            item = &it;
      // primal and dual have defaults (adam, ascent): setting one of their
      // arguments writes the line out.
      if (!item && t && (section == "primal" || section == "dual")) {
        TrainItem added;
        added.kind = sec->second;
        added.loc = t->loc;
        added.value = std::make_unique<NameExpr>(
            t->loc, section == "primal" ? "adam" : "ascent");
        t->items.push_back(std::move(added));
        item = &t->items.back();
      }
      if (!item) {
        fail(s, "the train block has no '" + section + "' line to change");
        continue;
      }
      std::vector<Arg> *args = configArgs(
          sec->second == TrainItem::Kind::Data ? item->calls[0] : item->value);
      if (!args) {
        fail(s, "the '" + section + "' line takes no arguments");
        continue;
      }
      setArg(*args, arg, std::move(value), item->loc);
      continue;
    }
    if (key == "epochs" || key == "batch" || key == "seed") {
      if (!t) {
        fail(s, "the spec has no train block");
        continue;
      }
      auto kind = key == "epochs"  ? TrainItem::Kind::Epochs
                  : key == "batch" ? TrainItem::Kind::Batch
                                   : TrainItem::Kind::Seed;
      auto it =
          std::find_if(t->items.begin(), t->items.end(),
                       [&](const TrainItem &i) { return i.kind == kind; });
      if (it == t->items.end()) {
        TrainItem item;
        item.kind = kind;
        item.loc = t->loc;
        item.value = std::move(value);
        t->items.push_back(std::move(item));
      } else {
        value->loc = it->value->loc;
        it->value = std::move(value);
      }
      continue;
    }
    bool found = false;
    if (u) {
      for (std::vector<Arg> *args : {&u->options, &u->problemArgs})
        for (Arg &a : *args)
          if (!found && a.name == key) {
            value->loc = a.value->loc;
            a.value = std::move(value);
            found = true;
          }
    }
    if (!found) {
      std::vector<std::string> known{"epochs",      "batch",      "seed",
                                     "data.KEY",    "primal.KEY", "dual.KEY",
                                     "descend=off", "noise=off"};
      if (u)
        for (std::vector<Arg> *args : {&u->options, &u->problemArgs})
          for (Arg &a : *args)
            if (!a.name.empty())
              known.insert(known.begin(), a.name);
      std::string list;
      for (auto &k : known)
        list += (list.empty() ? "" : ", ") + k;
      fail(s, "unknown setting '" + key + "'; settable: " + list);
    }
  }
  return ok;
}

} // namespace unroll::dsl
