#include "compiler/plan/PlanLowering.h"

#include "compiler/dialect/UnrollDialect.h"

#include "llvm/ADT/DenseSet.h"

namespace unroll::compiler {

namespace {

using nlohmann::json;
using namespace mlir;

class PlanWriter {
public:
  LogicalResult algorithm(ir::AlgorithmOp alg, json &out) {
    out = json{
        {"name", alg.getSymName().str()}, {"problem", alg.getProblem().str()},
        {"layer_count", alg.getLayers()}, {"inputs", json::array()},
        {"params", json::array()},        {"states", json::array()},
        {"targets", json::array()},       {"layers", json::array()},
        {"constraints", json::array()},   {"noise", json::array()},
        {"prelude", json::array()}};
    if (auto train = alg->getAttrOfType<DictionaryAttr>("train"))
      out["train"] = attr(train);
    for (Operation &op : alg.getBody().front()) {
      if (auto in = dyn_cast<ir::InputOp>(op)) {
        preludeSafe_.insert(in.getResult());
        out["inputs"].push_back(
            {{"id", define(in.getResult())},
             {"name", in.getName().str()},
             {"role", ir::stringifyRole(in.getRole()).str()},
             {"shape", shape(in.getType())}});
      } else if (auto p = dyn_cast<ir::ParamOp>(op)) {
        json j{{"name", p.getName().str()},
               {"binding", ir::stringifyBinding(p.getBinding()).str()},
               {"shape", shape(p.getType())},
               {"init", body(p.getInit())}};
        if (auto l = p.getLayer())
          j["layer"] = *l;
        j["id"] = define(p.getResult());
        out["params"].push_back(j);
      } else if (auto s = dyn_cast<ir::StateOp>(op)) {
        json j{{"name", s.getName().str()},
               {"shape", shape(s.getType())},
               {"random", s.getRandom()},
               {"init", body(s.getInit())}};
        if (s.getAlgorithm())
          j["algorithm"] = true;
        j["id"] = define(s.getResult());
        out["states"].push_back(j);
      } else if (auto t = dyn_cast<ir::TargetOp>(op)) {
        json j{{"id", define(t.getResult())},
               {"name", t.getName().str()},
               {"solver", t.getSolver().str()},
               {"shape", shape(t.getType())}};
        if (auto tol = t.getTol())
          j["tol"] = tol->convertToDouble();
        if (auto it = t.getIters())
          j["iters"] = *it;
        out["targets"].push_back(j);
      } else if (auto l = dyn_cast<ir::LayerOp>(op)) {
        json j{{"index", l.getIndex()},
               {"state", ids(l.getState())},
               {"body", body(l.getBody())}};
        for (Value r : l.getResults())
          j["results"].push_back(define(r));
        out["layers"].push_back(j);
      } else if (auto o = dyn_cast<ir::ObjectiveOp>(op)) {
        out["objective"] = body(o.getBody());
      } else if (auto c = dyn_cast<ir::CompositeOp>(op)) {
        out["solver"] = {{"prox", c.getProx().str()},
                         {"body", body(c.getBody())}};
      } else if (auto px = dyn_cast<ir::ProximalOp>(op)) {
        // After the unroll.composite, which writes the solver section.
        out["solver"]["proximal"] = {{"of", px.getOf().str()},
                                     {"body", body(px.getBody())}};
      } else if (auto ct = dyn_cast<ir::ComposedTermOp>(op)) {
        // After the unroll.composite too.
        out["solver"]["composed"].push_back({{"of", ct.getOf().str()},
                                             {"map", body(ct.getMap())},
                                             {"adjoint", body(ct.getAdjoint())},
                                             {"prox", body(ct.getProx())}});
      } else if (auto pr = dyn_cast<ir::ProjectionOp>(op)) {
        out["projections"].push_back({{"set", pr.getSet().str()},
                                      {"on", pr.getOn().str()},
                                      {"body", body(pr.getBody())}});
      } else if (auto lo = dyn_cast<ir::LossOp>(op)) {
        out["loss"] = body(lo.getBody());
      } else if (auto c = dyn_cast<ir::ConstraintOp>(op)) {
        out["constraints"].push_back(
            {{"form", c.getForm().str()},
             {"on", c.getOn().str()},
             {"eps", c.getEps().convertToDouble()},
             {"mode", ir::stringifyConstraintMode(c.getMode()).str()},
             {"body", body(c.getBody())}});
      } else if (auto n = dyn_cast<ir::NoiseOp>(op)) {
        out["noise"].push_back(
            {{"on", n.getOn().str()},
             {"distribution",
              ir::stringifyDistribution(n.getDistribution()).str()},
             {"body", body(n.getBody())}});
      } else if (isa<ir::StepOp, ir::GradOp>(op)) {
        return op.emitError("plan lowering needs unrolled, differentiated "
                            "IR; run unroll-layers and differentiate first");
      } else {
        // Algorithm-level computations (`let`s) are shared by all layers.
        // The runtime runs them right after reading the inputs, so they may
        // use only inputs and each other.
        for (Value v : op.getOperands())
          if (!preludeSafe_.count(v)) {
            failed_ = true;
            op.emitError("plan lowering: an algorithm-level computation uses "
                         "a parameter, state or target");
          }
        out["prelude"].push_back(opJson(op));
        for (Value r : op.getResults())
          preludeSafe_.insert(r);
      }
    }
    return failure(failed_);
  }

private:
  int64_t define(Value v) {
    int64_t id = next_++;
    ids_[v] = id;
    return id;
  }
  int64_t id(Value v) {
    auto it = ids_.find(v);
    if (it == ids_.end()) {
      failed_ = true;
      if (Operation *d = v.getDefiningOp())
        d->emitError("plan lowering: value used before it is defined");
      return -1;
    }
    return it->second;
  }
  json ids(ValueRange vs) {
    json a = json::array();
    for (Value v : vs)
      a.push_back(id(v));
    return a;
  }
  static json shape(Type t) {
    json a = json::array();
    for (int64_t d : cast<RankedTensorType>(t).getShape())
      a.push_back(d);
    return a;
  }

  json attr(Attribute a) {
    if (auto s = dyn_cast<StringAttr>(a))
      return s.str();
    // Enumerated attributes are integers in the IR, their names in the plan.
    if (auto d = dyn_cast<ir::DistributionAttr>(a))
      return ir::stringifyDistribution(d.getValue()).str();
    if (auto i = dyn_cast<IntegerAttr>(a))
      return i.getInt();
    if (auto f = dyn_cast<FloatAttr>(a))
      return f.getValueAsDouble();
    if (isa<UnitAttr>(a))
      return true;
    if (auto arr = dyn_cast<ArrayAttr>(a)) {
      json j = json::array();
      for (Attribute e : arr)
        j.push_back(attr(e));
      return j;
    }
    if (auto d = dyn_cast<DictionaryAttr>(a)) {
      json j = json::object();
      for (NamedAttribute n : d)
        j[n.getName().str()] = attr(n.getValue());
      return j;
    }
    failed_ = true;
    return nullptr;
  }

  /// A block: its argument ids, its ops in order, and what it yields.
  json body(Region &r) {
    Block &b = r.front();
    json j{{"args", json::array()}, {"ops", json::array()}};
    for (Value a : b.getArguments())
      j["args"].push_back(define(a));
    for (Operation &op : b.without_terminator())
      j["ops"].push_back(opJson(op));
    j["yield"] = ids(b.getTerminator()->getOperands());
    return j;
  }

  json opJson(Operation &op) {
    json j{{"op", op.getName().stripDialect().str()},
           {"args", ids(op.getOperands())}};
    for (NamedAttribute n : op.getAttrs())
      j[n.getName().str()] = attr(n.getValue());
    if (op.getNumResults() == 1) {
      j["shape"] = shape(op.getResult(0).getType());
      j["id"] = define(op.getResult(0));
    } else if (op.getNumResults() > 1) {
      for (Value r : op.getResults()) {
        j["shapes"].push_back(shape(r.getType()));
        j["ids"].push_back(define(r));
      }
    }
    if (auto f = dyn_cast<ir::FusedOp>(op)) {
      j["body"] = body(f.getBody());
      for (Value v : f.getInputs())
        j["arg_shapes"].push_back(shape(v.getType()));
    } else if (op.getNumRegions() != 0) {
      failed_ = true;
      op.emitError("plan lowering: unexpected op with regions");
    }
    return j;
  }

  llvm::DenseMap<Value, int64_t> ids_;
  llvm::DenseSet<Value> preludeSafe_;
  int64_t next_ = 0;
  bool failed_ = false;
};

} // namespace

FailureOr<json> lowerToPlan(ModuleOp module) {
  json plan{{"format", "unroll-plan"},
            {"version", kPlanVersion},
            {"algorithms", json::array()}};
  for (auto alg : module.getOps<ir::AlgorithmOp>()) {
    PlanWriter w;
    json a;
    if (failed(w.algorithm(alg, a)))
      return failure();
    plan["algorithms"].push_back(a);
  }
  return plan;
}

} // namespace unroll::compiler
