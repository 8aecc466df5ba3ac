"""Where a network's time goes: the profile's layers grouped by the kind of their IR
operator (not by the engine that ran them), wherever each ran (NPU or host).

Each kind's cycles are the sum of its layers' cycles, which add up to the profile's total
(a layer's cycles are how far it moves the end of the network, cost.timing.layer_cycles),
so the kinds' shares add up to 100%. `bounds` splits a kind's cycles by its layers' bound
(compute, memory, vpu, overhead, host).
"""
from __future__ import annotations

# kind -> the IR operators (ir.graph.Op values) it covers, in the order shown
KINDS: dict[str, frozenset[str]] = {
    "matmul (act x act)": frozenset({"matmul"}),
    "softmax": frozenset({"softmax"}),
    "dense": frozenset({"fully_connected"}),
    "convolution": frozenset({"conv2d"}),
    "layer norm": frozenset({"layer_norm"}),
    "GELU": frozenset({"gelu"}),
    "activation": frozenset({"clamp", "leaky_relu", "prelu", "sigmoid", "tanh", "hard_swish", "unary",
                             "magnitude"}),
    "element-wise": frozenset({"add", "sub", "mul", "maximum", "minimum", "compare", "logical", "logical_not",
                               "where"}),
    "pooling / reduction": frozenset({"max_pool", "avg_pool", "mean", "reduce_sum", "reduce_max", "reduce_min",
                                      "arg_max"}),
    "data movement": frozenset({"concat", "slice", "pad", "reshape", "transpose", "resize", "gather"}),
    "requantise": frozenset({"quantize", "dequantize"}),
    "host float": frozenset({"host_float", "host_tflite"}),
}
_KIND_OF = {op: kind for kind, ops in KINDS.items() for op in ops}


def kind_of(op: str) -> str:
    """The kind of an IR operator; an operator no kind lists is its own kind."""
    return _KIND_OF.get(op, op)


def breakdown(layers, total_cycles: int) -> list[dict]:
    """One row per kind present, in KINDS order: {"kind", "ops", "layers", "host_layers",
    "cycles", "host_cycles", "share" (of total_cycles), "energy_uj", "bounds" {bound: cycles}}."""
    rows: dict[str, dict] = {}
    for la in layers:
        kind = kind_of(la.op)
        r = rows.setdefault(kind, {"kind": kind, "ops": [], "layers": 0, "host_layers": 0, "cycles": 0,
                                   "host_cycles": 0, "share": 0.0, "energy_uj": 0.0, "bounds": {}})
        if la.op not in r["ops"]:
            r["ops"].append(la.op)
        host = la.target == "host"
        r["layers"] += 1
        r["host_layers"] += host
        r["cycles"] += la.cycles
        r["host_cycles"] += la.cycles if host else 0
        r["energy_uj"] += la.energy_uj
        r["bounds"][la.bound] = r["bounds"].get(la.bound, 0) + la.cycles
    order = {k: i for i, k in enumerate(KINDS)}
    out = sorted(rows.values(), key=lambda r: (order.get(r["kind"], len(order)), r["kind"]))
    for r in out:
        r["share"] = round(r["cycles"] / total_cycles, 4) if total_cycles else 0.0
        r["ops"].sort()
    return out
