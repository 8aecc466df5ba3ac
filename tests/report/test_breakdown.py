"""The profile's time by kind of operator: hand-worked sums over given layers, and on a
compiled attention block and a feed-forward block the kinds' cycles add up to the total,
the activation x activation MATMULs and the softmax are NPU layers with their bounds, and
the text and JSON carry the table."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

from npukit.api import CompiledModel
from npukit.compiler import compile_graph
from npukit.ir.graph import DType, Graph, MatMulAttrs, Node, Op, SoftmaxAttrs, Tensor
from npukit.report.breakdown import breakdown, kind_of
from npukit.report.profile import LayerProfile

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sim"))
sys.path.insert(0, str(ROOT / "transformer"))
from test_sim_vs_reference import small_arch  # noqa: E402
from test_wide_graph import feed_forward_graph  # noqa: E402

BOUNDS = {"compute", "memory", "vpu", "overhead"}


def _layer(op: str, target: str, cycles: int, bound: str, energy: float) -> LayerProfile:
    return LayerProfile(op, op, [op], target, 0, cycles, 0, 0, 0, 0, 0, bound, 1.0, energy, {})


def test_breakdown_of_hand_made_layers():
    layers = [_layer("matmul", "npu", 300, "compute", 1.0), _layer("softmax", "npu", 100, "vpu", 0.5),
              _layer("matmul", "npu", 200, "memory", 1.0), _layer("layer_norm", "host", 250, "host", 2.0),
              _layer("reshape", "npu", 50, "memory", 0.25), _layer("layer_norm", "npu", 50, "vpu", 0.25),
              _layer("transpose", "npu", 50, "memory", 0.0)]
    rows = {r["kind"]: r for r in breakdown(layers, 1000)}
    assert list(rows) == ["matmul (act x act)", "softmax", "layer norm", "data movement"]     # KINDS order
    mm, ln, move = rows["matmul (act x act)"], rows["layer norm"], rows["data movement"]
    assert (mm["layers"], mm["cycles"], mm["share"], mm["bounds"]) == (2, 500, 0.5, {"compute": 300, "memory": 200})
    assert (ln["layers"], ln["host_layers"], ln["cycles"], ln["host_cycles"]) == (2, 1, 300, 250)
    assert ln["bounds"] == {"host": 250, "vpu": 50} and ln["energy_uj"] == 2.25
    assert (move["ops"], move["cycles"], move["share"]) == (["reshape", "transpose"], 100, 0.1)
    assert kind_of("gelu") == "GELU" and kind_of("fully_connected") == "dense" and kind_of("new_op") == "new_op"


def attention_block() -> Graph:
    """softmax(q k^T) v: two activation x activation MATMULs around a softmax."""
    act = lambda name: Tensor(name, (1, 2, 6, 8), DType.F32)  # noqa: E731
    scores = lambda name: Tensor(name, (1, 2, 6, 6), DType.F32)  # noqa: E731
    t = {n: act(n) for n in ("q", "k", "v", "o")} | {n: scores(n) for n in ("s", "p")}
    nodes = (Node(Op.MATMUL, "qk", ("q", "k"), ("s",), MatMulAttrs(True)),
             Node(Op.SOFTMAX, "softmax", ("s",), ("p",), SoftmaxAttrs()),
             Node(Op.MATMUL, "pv", ("p", "v"), ("o",), MatMulAttrs(False)))
    return Graph(nodes, t, ("q", "k", "v"), ("o",))


def _profile(g: Graph, calib: dict, **how):
    arch = small_arch(64, 64, 64, 16, 16, "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, calib, sqnr=False, **how)
    return CompiledModel(prog, arch, qg).profile()


def _adds_up(p) -> dict:
    rows = {r["kind"]: r for r in p.breakdown}
    assert sum(r["cycles"] for r in rows.values()) == p.total_cycles == sum(la.cycles for la in p.layers)
    assert sum(r["layers"] for r in rows.values()) == len(p.layers)
    assert abs(sum(r["share"] for r in rows.values()) - 1.0) < 1e-3
    for r in rows.values():
        assert sum(r["bounds"].values()) == r["cycles"]
    return rows


def test_attention_block_matmuls_and_softmax_are_npu_layers_with_bounds():
    rng = np.random.default_rng(0)
    calib = {n: rng.standard_normal((3, 1, 2, 6, 8)).astype(np.float32) for n in ("q", "k", "v")}
    p = _profile(attention_block(), calib)
    rows = _adds_up(p)
    for op, kind, n in (("matmul", "matmul (act x act)", 2), ("softmax", "softmax", 1)):
        layers = [la for la in p.layers if la.op == op]
        assert len(layers) == n and all(la.target == "npu" and la.bound in BOUNDS and la.cycles > 0 for la in layers)
        assert rows[kind]["layers"] == n and rows[kind]["host_layers"] == 0
        assert rows[kind]["cycles"] == sum(la.cycles for la in layers)
    assert "where the time goes" in str(p) and "matmul (act x act)" in str(p)
    assert json.loads(json.dumps(p.to_dict()))["breakdown"] == p.breakdown


def test_feed_forward_kinds_follow_the_ir_operator_wherever_it_runs():
    rng = np.random.default_rng(0)
    p = _profile(feed_forward_graph(rng), {"x": rng.standard_normal((6, 1, 6, 32)).astype(np.float32)},
                 int16_below_db=80.0)
    rows = _adds_up(p)
    for op, kind in (("layer_norm", "layer norm"), ("fully_connected", "dense"), ("gelu", "GELU"),
                     ("add", "element-wise")):
        layers = [la for la in p.layers if la.op == op]
        assert layers and rows[kind]["layers"] == len(layers)
        assert rows[kind]["host_layers"] == sum(la.target == "host" for la in layers)
        assert rows[kind]["host_cycles"] == sum(la.cycles for la in layers if la.target == "host")
