"""precision auto's choice of weight rounding (round-to-nearest or GPTQ, quant.precision.preferred),
against onnxruntime's float outputs on samples no compile saw.

One fully connected layer, 64 inputs -> 16 outputs, whose weights have an outlier per output
(a coarse per-channel scale, so rounding error dominates). With inputs on a 4-dimensional
subspace GPTQ's error feedback cancels the rounding in every direction the inputs take, held-out
samples included: auto must pick it. With white inputs and 10 samples GPTQ fits 8 of them at the
cost of the other 56 directions: auto must keep round-to-nearest. Either way what auto ships
must be the rounding closer to float on fresh samples.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.quant.precision import Choice, Precision, preferred

N, K, OUT = 40, 64, 16
OPTS = {"timed_candidates": 1}


def fc_model(path: Path) -> Path:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((K, OUT)).astype(np.float32) * 0.1
    w[rng.integers(0, K, OUT), np.arange(OUT)] = 3.0        # one outlier per output channel
    g = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"])], "fc",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, K])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUT])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.zeros(OUT, np.float32), "b")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def samples(n: int, low_rank: bool, seed: int) -> np.ndarray:
    """White normal inputs, or the 16 points z @ B of z in {-1, 1}^4 (a fixed B), in a
    seeded order: every fold and every calibration set then holds each extreme, so the
    activation ranges are exact and the weights' rounding is what differs."""
    rng = np.random.default_rng(seed)
    if not low_rank:
        return rng.standard_normal((n, 1, K)).astype(np.float32)
    basis = np.random.default_rng(99).standard_normal((4, K)) / 2
    signs = np.array([[1 - 2 * ((i >> b) & 1) for b in range(4)] for i in range(16)])
    order = np.concatenate([rng.permutation(16) for _ in range(-(-n // 16))])[:n]
    return (signs[order] @ basis)[:, None, :].astype(np.float32)


def sqnr_vs_float(path: Path, m, xs: np.ndarray) -> float:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    f = np.concatenate([sess.run(None, {"x": x})[0].ravel() for x in xs]).astype(np.float64)
    q = np.concatenate([m.run({"x": x})["y"].ravel() for x in xs]).astype(np.float64)
    return float(10 * np.log10(f @ f / ((f - q) @ (f - q))))


def compiled(path: Path, xs: np.ndarray, **kw):
    return npukit.compile(path, "npu-m", calibration={"x": xs}, **kw)


def test_auto_ships_the_rounding_closer_to_float(tmp_path):
    path = fc_model(tmp_path / "fc.onnx")
    for low_rank, expect in ((True, "gptq"), (False, "nearest")):
        xs, fresh = samples(N, low_rank, 1), samples(32, low_rank, 2)
        # unreachable target: each rounding widens what it can, the better measured SQNR wins
        auto = compiled(path, xs, precision="auto", min_sqnr=90.0, options=OPTS)
        nearest = compiled(path, xs, options=OPTS)
        gptq = compiled(path, xs, options={**OPTS, "gptq": "auto"})
        got = {"nearest": sqnr_vs_float(path, nearest, fresh), "gptq": sqnr_vs_float(path, gptq, fresh)}
        other = "nearest" if expect == "gptq" else "gptq"
        assert got[expect] > got[other] + 1.0, (low_rank, got)     # onnxruntime float: which rounding is better
        p = auto.precision
        assert p["rounding"] == expect and not p["target_met"], (low_rank, p)
        assert sqnr_vs_float(path, auto, fresh) > got[other] + 1.0


def _p(sqnr: float, cost: float, rounding: str, target: float = 30.0) -> Precision:
    return Precision("auto", target, "", Choice(frozenset(), sqnr, 0.0, (), cost), rounding)


def test_preferred_hand_worked():
    rtn, gptq = _p(31.0, 500.0, "nearest"), _p(35.0, 100.0, "gptq")
    assert preferred([rtn, gptq]) is gptq                   # both meet: the cheaper
    assert preferred([_p(31.0, 100.0, "nearest"), _p(35.0, 100.0, "gptq")]).rounding == "nearest"  # a tie: the first
    assert preferred([_p(29.0, 0.0, "nearest"), _p(30.0, 900.0, "gptq")]).rounding == "gptq"      # only it meets
    assert preferred([_p(20.0, 0.0, "nearest"), _p(20.9, 0.0, "gptq")]).rounding == "nearest"     # within the margin
    assert preferred([_p(20.0, 0.0, "nearest"), _p(21.5, 0.0, "gptq")]).rounding == "gptq"
    # three roundings, none meeting: the first within the margin of the best
    three = [_p(20.0, 0.0, "nearest"), _p(21.5, 0.0, "gptq"), _p(22.1, 0.0, "sequential")]
    assert preferred(three).rounding == "gptq"
    assert preferred([*three[:2], _p(22.6, 0.0, "sequential")]).rounding == "sequential"
    assert preferred([_p(20.0, 0.0, "nearest"), _p(19.0, 0.0, "gptq"), _p(20.5, 0.0, "sequential")]).rounding == "nearest"
