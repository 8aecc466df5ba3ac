"""precision int8 | int16 | auto and the accuracy summary, against onnxruntime's float outputs.

A chain of dense convolutions (the NPU runs 16x8 dense conv today, int16 in and out) is
compiled in int8, int16 and auto; the simulator's outputs are compared with onnxruntime's
float outputs, and the summaries with a compile on the samples not held out. The selection itself (widest /
blocks / greedy) is checked on a hand-made graph with a stand-in placement check, so that it
does not depend on which int16 kernels exist.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.codegen.context import CompileOptions
from npukit.codegen.options import QUANT_OPTIONS
from npukit.codegen.partition import npu_support
from npukit.errors import InputError
from npukit.ir.graph import DType, Graph, Node, Op, Tensor
from npukit.quant.precision import (Rates, blocks, compare, folds, greedy, heldout_count, looks_like_scores, score_outputs, units,
                                   widest, worst_sqnr)
from npukit.testing.fixtures import run_cli

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"
INT8_TFLITE = ROOT / "tests" / "data" / "mlperf_tiny" / "resnet8.tflite"
N = 10          # calibration samples: 8 calibrate, the last 2 are held out


def conv_chain(path: Path) -> Path:
    """x[1,3,8,8] -> conv3x3+relu -> conv3x3+relu -> conv1x1 -> y[1,4,8,8]."""
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i, (cin, cout, k, relu) in enumerate([(3, 8, 3, True), (8, 8, 3, True), (8, 4, 1, False)]):
        inits += [numpy_helper.from_array((rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k))
                                          .astype(np.float32), f"w{i}"),
                  numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), f"b{i}")]
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[k // 2] * 4))
        x = f"c{i}"
        if relu:
            nodes.append(helper.make_node("Relu", [x], [f"r{i}"]))
            x = f"r{i}"
    nodes.append(helper.make_node("Identity", [x], ["y"]))
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def float_outputs(path: Path, xs: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [sess.run(None, {"x": x})[0] for x in xs]


def sqnr_db(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    f = np.concatenate([np.ravel(r) for r in ref]).astype(np.float64)
    q = np.concatenate([np.ravel(r) for r in got]).astype(np.float64)
    return float(10 * np.log10(f @ f / ((f - q) @ (f - q))))


def folded(path: Path, xs: np.ndarray, compile_on) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """onnxruntime's float outputs and the outputs of `compile_on(the other samples)` on each
    pair of the N samples in turn."""
    ref, got = [], []
    for i in range(0, N, 2):
        m = compile_on(np.delete(xs, [i, i + 1], axis=0))
        ref += float_outputs(path, xs[i:i + 2])
        got += [m.run({"x": x})[m.output_names[0]] for x in xs[i:i + 2]]
    return ref, got


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    d = tmp_path_factory.mktemp("precision")
    path = conv_chain(d / "chain.onnx")
    xs = np.random.default_rng(1).standard_normal((N, 1, 3, 8, 8)).astype(np.float32)
    built = {p: npukit.compile(path, "npu-m", calibration={"x": xs}, precision=p, options={"timed_candidates": 1})
             for p in ("int8", "int16")}
    fresh = np.random.default_rng(3).standard_normal((4, 1, 3, 8, 8)).astype(np.float32)   # not calibrated on
    ref = float_outputs(path, fresh)
    measured = {p: sqnr_db(ref, [m.run({"x": x})["y"] for x in fresh]) for p, m in built.items()}
    return path, xs, built, measured


def test_int16_widens_every_layer_the_npu_accepts_and_is_closer_to_float(chain):
    _, _, built, measured = chain
    qg = built["int16"].qgraph
    acts = [t for t in qg.tensors.values() if not t.is_const]
    assert acts and all(t.dtype is DType.I16 for t in acts)       # dense 16x8 convs: the whole chain
    assert all(la.target == "npu" for la in built["int16"].program.layers)
    for node in qg.nodes:       # every layer touching int16 is one the NPU runs
        assert npu_support(qg, node) == "", node.name
    assert all(t.dtype is DType.I8 for t in built["int8"].qgraph.tensors.values() if not t.is_const)
    assert measured["int16"] > measured["int8"] + 1.0             # onnxruntime is the float oracle
    p = built["int16"].precision
    assert p["mode"] == "int16" and set(p["tensors"]) == {t.name for t in acts}
    convs = [r for r in p["layers"] if r["op"] == "conv2d"]
    assert len(convs) == 3 and all(r["extra_cycles"] > 0 and r["int16"] == "in+out" for r in convs)
    assert p["cycles"] == built["int16"].profile().total_cycles
    assert p["int8_cycles"] == built["int8"].profile().total_cycles
    assert built["int8"].precision is None


def test_auto_meets_a_high_target_and_widens_nothing_for_a_low_one(chain):
    """auto measures each held-out fold (5 pairs of the 10 samples) on the graph calibrated on
    the other 8: what compiling with those 8 alone ships (the returned graph calibrates on all)."""
    path, xs, built, _ = chain
    p8, p16 = built["int8"].precision, built["int16"].precision
    assert p8 is None and p16["sqnr_db"] > p16["int8_sqnr_db"] + 1.0
    target = (p16["int8_sqnr_db"] + p16["sqnr_db"]) / 2
    hi = npukit.compile(path, "npu-m", calibration={"x": xs}, precision="auto", min_sqnr=target,
                        options={"timed_candidates": 1})
    p = hi.precision
    assert p["tensors"] and p["target_met"] and p["sqnr_db"] >= target and p["layers"]
    assert p["measured_on"] == "10 held-out samples (5 folds)"
    # the convs do not join blocks (16x8 between requantising boundaries): a part may do
    assert set(p["tensors"]) <= set(p16["tensors"])
    wide = {t.name for t in hi.qgraph.tensors.values() if not t.is_const and t.dtype is DType.I16}
    assert set(p["tensors"]) <= wide and all(la.target == "npu" for la in hi.program.layers)
    ref, got = folded(path, xs, lambda rest: npukit.compile(path, "npu-m", calibration={"x": rest}, precision="int16",
                                                            options={"timed_candidates": 1}))
    assert sqnr_db(ref, got) == pytest.approx(p16["sqnr_db"], abs=0.01)
    lo = npukit.compile(path, "npu-m", calibration={"x": xs}, precision="auto", min_sqnr=p16["int8_sqnr_db"] - 3,
                        options={"timed_candidates": 1})
    assert lo.precision["tensors"] == [] and lo.precision["layers"] == []
    assert all(t.dtype is DType.I8 for t in lo.qgraph.tensors.values() if not t.is_const)


def test_accuracy_summary_equals_numpy_on_the_held_out_samples():
    xs = np.random.default_rng(2).uniform(0, 1, (N, 1, 1, 8, 8)).astype(np.float32)
    acc = npukit.compile(DIGITS, "npu-m", {"x": (1, 1, 8, 8)}, calibration={"x": xs},
                         options={"timed_candidates": 1}).accuracy
    # measured: each pair of samples on the model calibrated on the other 8
    ref, got = folded(DIGITS, xs, lambda rest: npukit.compile(DIGITS, "npu-m", {"x": (1, 1, 8, 8)},
                                                              calibration={"x": rest}, options={"timed_candidates": 1}))
    assert acc["heldout_samples"] == N and acc["note"] == ""
    (o,) = acc["outputs"]
    f, q = np.concatenate([r.ravel() for r in ref]).astype(np.float64), np.concatenate([g.ravel() for g in got])
    assert o["cosine"] == pytest.approx(f @ q / np.linalg.norm(f) / np.linalg.norm(q), abs=1e-6)
    assert o["sqnr_db"] == pytest.approx(sqnr_db(ref, got), abs=0.01)
    agree = np.mean([np.argmax(r) == np.argmax(g) for r, g in zip(ref, got)])
    assert o["argmax_agreement"] == agree


def test_no_held_out_samples_is_said_not_measured():
    xs = np.random.default_rng(2).uniform(0, 1, (1, 1, 1, 8, 8)).astype(np.float32)
    m = npukit.compile(DIGITS, "npu-m", {"x": (1, 1, 8, 8)}, calibration={"x": xs}, options={"timed_candidates": 1})
    assert m.accuracy == {"heldout_samples": 0, "note": "no held-out samples (one calibration sample)",
                          "outputs": []}
    assert [heldout_count(n) for n in (0, 1, 2, 5, 10, 11, 1000)] == [0, 0, 1, 1, 2, 2, 32]
    assert folds(1) == [] and folds(4) == [range(i, i + 1) for i in range(4)]
    assert folds(10) == [range(i, i + 2) for i in range(0, 10, 2)] and folds(11) == [range(i, i + 2) for i in range(1, 11, 2)]
    assert folds(16) == [range(i, i + 3) for i in range(1, 16, 3)] and folds(1000) == [range(968, 1000)]
    assert looks_like_scores((1, 10)) and looks_like_scores((4, 1, 1, 10))
    assert not looks_like_scores((1, 4, 8, 8)) and not looks_like_scores((1, 1)) and not looks_like_scores((10,))


def test_selection_with_a_stand_in_placement_check(chain):
    """widest drops every group touching a refused layer until none is; blocks join groups a
    layer shares; greedy widens the block of the noisiest layer first and stops at the target."""
    from npukit.compiler import load_model
    from npukit.opt.pipeline import optimize
    from npukit.quant.calibrate import Range
    from npukit.quant.quantize import quantize_graph
    g = optimize(load_model(chain[0], None))
    ranges = {n: Range(-1.0, 1.0) for n, t in g.tensors.items() if not t.is_const}
    groups = units(g)
    convs = [n for n in g.nodes if n.op.value == "conv2d"]
    last = convs[-1]

    def refused(wide):      # pretend the last conv cannot run int16 at all
        quantize_graph(g, ranges, wide, params=False)
        return {last.name: "no"} if wide & {*last.inputs, *last.outputs} else {}
    kept = widest(g, groups, frozenset(), refused)
    kept_tensors = frozenset().union(*kept)
    assert not kept_tensors & {*last.inputs, *last.outputs}
    assert set(convs[0].inputs[:1]) <= kept_tensors        # the first conv's input is still wide
    bl = blocks(g, kept)
    assert frozenset().union(*bl) == kept_tensors and sum(map(len, bl)) == len(kept_tensors)   # a partition
    noise = {convs[0].name: 10.0, convs[1].name: 20.0, last.name: 30.0}
    calls = []

    def measure(wide):
        calls.append(wide)
        return 25.0 + 10 * len(wide)
    choice = greedy(g, bl, noise, measure, target_db=30.0)
    first = next(b for b in bl if set(convs[0].outputs) <= b)      # the noisiest layer's block first
    assert choice.int8_sqnr_db == 25.0 and choice.wide == first and choice.sqnr_db == 25.0 + 10 * len(first)
    assert choice.steps[0][0] == convs[0].name
    assert greedy(g, bl, noise, measure, target_db=20.0).wide == frozenset()


def test_blocks_do_not_join_across_a_conv(chain):
    """A conv with one side wide runs 16x8 between requantising boundaries: its input and
    output groups are separate blocks; the shipped graph has the boundary QUANTIZEs."""
    from npukit.compiler import load_model
    from npukit.opt.pipeline import optimize
    g = optimize(load_model(chain[0], None))
    groups = units(g)
    bl = blocks(g, groups)
    for conv in (n for n in g.nodes if n.op.value == "conv2d"):
        (b_in,) = [b for b in bl if conv.inputs[0] in b]
        assert conv.outputs[0] not in b_in


def test_greedy_bisects_to_the_shortest_prefix_meeting_the_target():
    """Eight one-tensor blocks, noisiest first a..h; SQNR = 10 + 3 dB per widened block:
    30 dB needs 7 (31 dB); bisection measures prefixes 0, 8, 4, 6, 7 only."""
    g = Graph(tuple(Node(Op.CLAMP, f"n{i}", (), (t,)) for i, t in enumerate("abcdefgh")), {}, (), ())
    bl = [frozenset(t) for t in "hgfedcba"]
    noise = {f"n{i}": float(i) for i in range(8)}
    seen = []

    def measure(wide):
        seen.append(len(wide))
        return 10.0 + 3 * len(wide)
    c = greedy(g, bl, noise, measure, target_db=30.0)
    assert c.wide == frozenset("abcdefg") and c.sqnr_db == 31.0 and seen == [0, 8, 4, 6, 7]
    # out of reach (34 dB with all 8): the shortest prefix within 1 dB of that (7 give 31 dB: all 8) ...
    c = greedy(g, bl, noise, lambda w: 10.0 + 3 * len(w), target_db=40.0)
    assert c.wide == frozenset("abcdefgh") and c.sqnr_db == 34.0
    # ... and widening that buys nothing widens nothing
    c = greedy(g, bl, noise, lambda w: 12.0 - 0.1 * len(w), target_db=40.0)
    assert c.wide == frozenset() and c.sqnr_db == 12.0


def test_widening_cost_counts_the_second_mxu_pass_and_each_boundary():
    """Hand-worked, npu-m rates (256 MACs, 16 lanes): x[1,5,5,2] -> conv 3x3 (OHWI [4,3,3,2]) ->
    c[1,5,5,4] -> clamp -> y. Widening c: a QUANTIZE widens x (50 elements: 50/16 cycles), the
    conv runs 16x8 (2 x 3 x 3 x 4 x 25 = 1800 MACs: 1800/256 more), the clamp reads int16
    (100/16). Widening nothing costs nothing."""
    from npukit.ir.graph import ConvAttrs
    from npukit.quant.precision import widening_cost
    from npukit.quant.wide import widen_mxu_boundaries
    w = np.zeros((4, 3, 3, 2), np.float32)
    t = {"x": Tensor("x", (1, 5, 5, 2), DType.F32), "w": Tensor("w", w.shape, DType.F32, w),
         "c": Tensor("c", (1, 5, 5, 4), DType.F32), "y": Tensor("y", (1, 5, 5, 4), DType.F32)}
    g = Graph((Node(Op.CONV2D, "conv", ("x", "w"), ("c",), ConvAttrs(pads=(1, 1, 1, 1))),
               Node(Op.CLAMP, "clamp", ("c",), ("y",))), t, ("x",), ("y",))
    bg, wide, _ = widen_mxu_boundaries(g, frozenset({"c"}))
    assert widening_cost(bg, wide, Rates(256, 16)) == pytest.approx(50 / 16 + 1800 / 256 + 100 / 16)
    assert widening_cost(g, frozenset(), Rates(256, 16)) == 0.0


def test_greedy_with_a_cost_takes_the_cheapest_prefix_that_qualifies_in_rank_order():
    """Blocks a, b, c ranked c, a, b (rank: gain per cycle); SQNR 20 + 5 dB per block: 30 dB
    needs two, bisection measures 0, 3, 1, 2; a cost that makes all three cheaper than two
    (boundaries gone) takes all three."""
    g = Graph(tuple(Node(Op.CLAMP, f"n{i}", (), (t,)) for i, t in enumerate("abc")), {}, (), ())
    bl = [frozenset(t) for t in "abc"]
    rank = {"c": 3.0, "a": 2.0, "b": 1.0}
    seen = []

    def measure(wide):
        seen.append("".join(sorted(wide)))
        return 20.0 + 5 * len(wide)
    c = greedy(g, bl, {}, measure, 30.0, rank=lambda b: rank[next(iter(b))])
    assert c.wide == frozenset("ac") and seen == ["", "abc", "c", "ac"]
    c = greedy(g, bl, {}, measure, 30.0, rank=lambda b: rank[next(iter(b))],
               cost=lambda w: {0: 0.0, 1: 5.0, 2: 9.0, 3: 8.0}[len(w)])
    assert c.wide == frozenset("abc") and c.sqnr_db == 35.0


def test_worst_sqnr_leaves_out_outputs_without_a_signal_and_scores_need_a_softmax_or_one_output():
    """Hand-worked: f = [3, 4] vs q = [3, 4.5]: SQNR 10 log10(25 / 0.25) = 20 dB; a one-number
    output f = [0.001] read as 0 is 0 dB but has no signal, so the worst is 20 dB; when every
    output lacks a signal all count."""
    a = compare("a", [np.array([[3.0, 4.0]])], [np.array([[3.0, 4.5]])])
    b = compare("b", [np.array([[0.001]])], [np.array([[0.0]])])
    c = compare("c", [np.array([[2.0, 2.0]])], [np.array([[2.0, 1.0]])])     # constant: no signal
    assert a.sqnr_db == pytest.approx(20.0) and a.signal and b.sqnr_db == 0.0 and not b.signal and not c.signal
    assert worst_sqnr([a, b, c]) == pytest.approx(20.0)
    assert worst_sqnr([c]) == pytest.approx(10 * np.log10(8 / 1)) and worst_sqnr([b, c]) == 0.0
    assert worst_sqnr([]) == float("inf")
    # class scores: a softmax's (through a reshape) or a lone output; a [1, 63] vector beside others is not
    t = {n: Tensor(n, (1, s), DType.F32) for n, s in (("x", 8), ("l", 63), ("p", 10), ("z", 10), ("f", 1))}
    nodes = [Node(Op.FULLY_CONNECTED, "fc", ("x",), ("l",)), Node(Op.SOFTMAX, "sm", ("x",), ("z",)),
             Node(Op.RESHAPE, "rs", ("z",), ("p",)), Node(Op.SIGMOID, "sg", ("x",), ("f",))]
    assert score_outputs(Graph(tuple(nodes), t, ("x",), ("l", "p", "f"))) == {"p"}
    assert score_outputs(Graph(tuple(nodes[:1]), t, ("x",), ("l",))) == {"l"}
    # a recogniser's [1, T, C] softmax: per-step scores; the same shape from a conv is not
    t3 = {"x": Tensor("x", (1, 4, 8), DType.F32), "s": Tensor("s", (1, 4, 5), DType.F32),
          "c": Tensor("c", (1, 4, 5), DType.F32)}
    seq = (Node(Op.SOFTMAX, "sm", ("x",), ("s",)), Node(Op.FULLY_CONNECTED, "fc", ("x",), ("c",)))
    assert score_outputs(Graph(seq, t3, ("x",), ("s", "c"))) == {"s"}
    assert score_outputs(Graph(seq[1:], t3, ("x",), ("c",))) == frozenset()
    o = compare("s", [np.array([[[1.0, 2.0], [3.0, 0.0]]])], [np.array([[[2.5, 2.0], [3.0, 0.0]]])], scores=True)
    assert o.argmax_agreement == 0.5


def test_options_and_api_errors():
    assert "precision" in QUANT_OPTIONS and "min_sqnr" in QUANT_OPTIONS
    assert CompileOptions().precision == "int8" and CompileOptions().min_sqnr == 30.0
    with pytest.raises(InputError, match="precision='int4' is not one of int8 | auto | int16"):
        CompileOptions(precision="int4")
    with pytest.raises(InputError, match="min_sqnr"):
        npukit.compile(DIGITS, "npu-m", {"x": (1, 1, 8, 8)}, precision="auto", min_sqnr=-1)
    with pytest.raises(InputError, match="^model is already quantised; --precision applies to float models$"):
        npukit.compile(INT8_TFLITE, "npu-m", precision="int16")


@pytest.mark.parametrize("args, message", [
    (("--precision", "int4"), "'int4' is not one of 'int8', 'auto', 'int16'"),
    (("--precision", "auto", "--min-sqnr", "-5"), "min_sqnr=-5.0 is not a number in [0.0, 200.0]"),
    (("--min-sqnr", "many"), "--min-sqnr"),
    (("--option", "precision=fp16"), "precision='fp16' is not one of int8 | auto | int16"),
])
def test_cli_errors(tmp_path, args, message):
    r = run_cli("compile", DIGITS, "--input-shape", "x=1,1,8,8", *args, "-o", tmp_path / "m.npub", cwd=ROOT)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr


def test_cli_refuses_precision_on_a_quantised_model_and_prints_the_summary(tmp_path, chain):
    r = run_cli("compile", INT8_TFLITE, "--precision", "auto", "-o", tmp_path / "m.npub", cwd=ROOT)
    assert r.returncode == 2 and r.stderr.strip() == "error: model is already quantised; --precision applies to float models"
    np.savez(tmp_path / "calib.npz", x=chain[1])
    r = run_cli("compile", chain[0], "--calib", tmp_path / "calib.npz", "--precision", "int16",
                "--option", "timed_candidates=1", "-o", tmp_path / "m.npub", "--json", tmp_path / "m.json", cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "output accuracy vs float on 10 held-out calibration samples:" in r.stdout
    assert "precision int16: worst output SQNR" in r.stdout and "layers with int16 activations" in r.stdout
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["accuracy"]["heldout_samples"] == N and saved["precision"]["mode"] == "int16"
    assert saved["precision"]["layers"] and saved["accuracy"]["outputs"][0]["sqnr_db"] == pytest.approx(
        saved["precision"]["sqnr_db"])


def test_boundaries_share_one_int16_copy_between_a_narrowing_writer_and_a_widening_reader(chain):
    """conv0 reads a wide input and writes r0 int8 (an int16 copy narrowed); conv1 reads r0
    and writes a wide output: it takes conv0's int16 copy (hand-landmark-full had the copy
    defined twice); conv2 reads r1 wide and narrows y's producer. Two QUANTIZEs, unique
    outputs, and float results unchanged (onnxruntime)."""
    from npukit.compiler import load_model
    from npukit.kernels.float_exec import run_float
    from npukit.opt.pipeline import optimize
    from npukit.quant.wide import widen_mxu_boundaries
    path, xs = chain[0], chain[1]
    g = optimize(load_model(path, None))
    c0, c1, c2 = [n for n in g.nodes if n.op is Op.CONV2D]
    wg, wide, copies = widen_mxu_boundaries(g, frozenset({c0.inputs[0], c1.outputs[0]}))
    made = [t for n in wg.nodes for t in n.outputs]
    assert len(made) == len(set(made))
    assert copies == {f"{c.outputs[0]}/int16": c.outputs[0] for c in (c0, c2)} and set(copies) <= wide
    (n1,) = [n for n in wg.nodes if n.name == c1.name]
    assert n1.inputs[0] == f"{c0.outputs[0]}/int16"
    assert [n.op for n in wg.nodes].count(Op.QUANTIZE) == 2
    got = run_float(wg, {wg.inputs[0]: xs[0]})[wg.outputs[0]]
    np.testing.assert_allclose(got, float_outputs(path, xs[:1])[0], rtol=1e-4, atol=1e-4)
