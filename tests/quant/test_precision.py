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
from npukit.ir.graph import DType
from npukit.quant.precision import blocks, greedy, heldout_count, looks_like_scores, units, widest
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
    """auto measures on the held-out samples (the last 2 of 10) the graph calibrated on the
    other 8: that is what compiling with those 8 alone ships (the returned graph calibrates on all)."""
    path, xs, built, _ = chain
    p8, p16 = built["int8"].precision, built["int16"].precision
    assert p8 is None and p16["sqnr_db"] > p16["int8_sqnr_db"] + 1.0
    target = (p16["int8_sqnr_db"] + p16["sqnr_db"]) / 2
    hi = npukit.compile(path, "npu-m", calibration={"x": xs}, precision="auto", min_sqnr=target,
                        options={"timed_candidates": 1})
    p = hi.precision
    assert p["tensors"] and p["target_met"] and p["sqnr_db"] >= target and p["layers"]
    assert p["measured_on"] == "2 held-out samples"
    assert set(p["tensors"]) == set(p16["tensors"])      # the chain is one block: all of it
    held = xs[N - 2:]
    on8 = npukit.compile(path, "npu-m", calibration={"x": xs[:N - 2]}, precision="int16",
                         options={"timed_candidates": 1})
    assert sqnr_db(float_outputs(path, held), [on8.run({"x": x})["y"] for x in held]) == \
        pytest.approx(p["sqnr_db"], abs=0.01)
    lo = npukit.compile(path, "npu-m", calibration={"x": xs}, precision="auto", min_sqnr=p16["int8_sqnr_db"] - 3,
                        options={"timed_candidates": 1})
    assert lo.precision["tensors"] == [] and lo.precision["layers"] == []
    assert all(t.dtype is DType.I8 for t in lo.qgraph.tensors.values() if not t.is_const)


def test_accuracy_summary_equals_numpy_on_the_held_out_samples():
    xs = np.random.default_rng(2).uniform(0, 1, (N, 1, 1, 8, 8)).astype(np.float32)
    acc = npukit.compile(DIGITS, "npu-m", {"x": (1, 1, 8, 8)}, calibration={"x": xs},
                         options={"timed_candidates": 1}).accuracy
    # measured: the model calibrated on the first 8 samples, on the last 2
    m = npukit.compile(DIGITS, "npu-m", {"x": (1, 1, 8, 8)}, calibration={"x": xs[:N - 2]},
                       options={"timed_candidates": 1})
    held = xs[N - 2:]
    ref = float_outputs(DIGITS, held)
    got = [m.run({"x": x})[m.output_names[0]] for x in held]
    assert acc["heldout_samples"] == 2 and acc["note"] == ""
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

    def refused(qg, wide):      # pretend the last conv cannot run int16 at all
        return {last.name: "no"} if wide & {*last.inputs, *last.outputs} else {}
    kept = widest(g, groups, frozenset(), refused, lambda w: quantize_graph(g, ranges, w, params=False))
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
    assert choice.int8_sqnr_db == 25.0 and choice.sqnr_db >= 30.0 and len(choice.steps) == 1
    assert choice.steps[0][0] == convs[0].name             # the noisiest layer's block first
    assert greedy(g, bl, noise, measure, target_db=20.0).wide == frozenset()


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
    assert "output accuracy vs float on 2 held-out calibration samples:" in r.stdout
    assert "precision int16: worst output SQNR" in r.stdout and "layers with int16 activations" in r.stdout
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["accuracy"]["heldout_samples"] == 2 and saved["precision"]["mode"] == "int16"
    assert saved["precision"]["layers"] and saved["accuracy"]["outputs"][0]["sqnr_db"] == pytest.approx(
        saved["precision"]["sqnr_db"])
