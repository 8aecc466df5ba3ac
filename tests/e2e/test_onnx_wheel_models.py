"""Models nobody on the project chose: the test models the `onnx` wheel ships (opset 6 PyTorch
exports, opset 9-12 hand-made graphs), compiled for npu-m on their own test input and three
perturbed copies, run on the simulated NPU and compared with the expected outputs shipped
beside them (`benchmarks/onnx_wheel_sweep.py` sweeps all of them).

The subset covers each fix the sweep made: opset-6 models converted to opset 7 on import
(their host operators load in onnxruntime; legacy `broadcast` Gemm / Add; per-channel PRelu
slopes), and the clean refusals (string inputs, training-only operators, sequences).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.testing.onnx_wheel import calibration, compare, load_case, model_path

# name: True if every layer runs on the NPU, False if some run on the host
RUNS = {
    "pytorch-converted/test_AvgPool3d": True,                   # 5-D AveragePool: 2-D pools frame by frame
    "pytorch-converted/test_PReLU_1d_multiparam": True,         # opset 6 slope [C]: per channel
    "pytorch-converted/test_PReLU_2d_multiparam": True,
    "pytorch-converted/test_PReLU_3d_multiparam": True,         # 5-D: as [N, C, D*H*W]
    "pytorch-converted/test_Linear": True,                      # Gemm with broadcast=1
    "pytorch-converted/test_Softsign": True,                    # Add with broadcast=1
    "pytorch-converted/test_Conv2d_depthwise_with_multiplier": True,
    "pytorch-converted/test_ConvTranspose2d": True,
    "pytorch-converted/test_BatchNorm2d_eval": True,
    "pytorch-converted/test_BatchNorm3d_eval": True,            # 5-D: scaled as [N, C, D*H*W]
    "pytorch-converted/test_GLU_dim": True,
    "pytorch-converted/test_LogSoftmax": True,
    "pytorch-converted/test_PixelShuffle": True,
    "pytorch-converted/test_Embedding": True,
    "pytorch-converted/test_ReplicationPad2d": True,            # edge padding: slices, concatenations
    "pytorch-converted/test_MaxPool1d": True,                   # [N, C, L] pooled as [N, 1, L, C]
    "pytorch-converted/test_MaxPool3d": True,                   # 5-D MaxPool: 2-D pools frame by frame
    "pytorch-operator/test_operator_addmm": True,               # Gemm of two inputs, opset 6: a MATMUL
    "pytorch-operator/test_operator_pow": False,                # NaN where the base is negative
    "pytorch-operator/test_operator_sqrt": True,                # NaN expected, 0 on the NPU
    "pytorch-operator/test_operator_repeat": True,              # Tile: copies concatenated
    "pytorch-operator/test_operator_selu": True,
    "pytorch-operator/test_operator_reduced_mean_keepdim": True,
    "simple/test_sign_model": True,
    "simple/test_shrink": True,                                 # one table
}

REFUSED = {
    "simple/test_strnorm_model_monday_casesensintive_lower": "element type STRING",
    "simple/test_gradient_of_add": "domain 'ai.onnx.preview.training'",
    "simple/test_sequence_model1": "SequenceInsert",
}


def _ok(prog: npukit.CompiledModel, got: dict, want: list[np.ndarray]) -> list[str]:
    """The outputs off their expected values by more than int8 allows: cosine under 0.98 or
    a max difference over 10% of the output's range, unless within two int8 steps."""
    bad = []
    for t, w in zip(prog.program.outputs, want):
        cos, rel = compare(got[t.name], w)
        finite = np.isfinite(w)
        steps = np.abs(got[t.name][finite] - w[finite]).max() / t.scale if t.is_float and t.scale else np.inf
        if not (cos >= 0.98 and rel <= 0.1 or steps <= 2):
            bad.append(f"{t.name}: cosine {cos:.4f}, max diff {rel:.3f} of range, {steps:.1f} steps")
    return bad


@pytest.mark.parametrize("name", sorted(RUNS))
def test_wheel_model_matches_expected_outputs(name: str) -> None:
    path = model_path(name)
    feeds, want = load_case(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration=calibration(feeds), sqnr=False)
    got = prog.run({k: v.astype(prog.input_specs[k][1]) for k, v in feeds.items()})
    assert not _ok(prog, got, want)
    assert (not prog.profile().host_ops) == RUNS[name], prog.profile().host_ops


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_wheel_model_refused_in_one_line(name: str) -> None:
    path = model_path(name)
    with pytest.raises(npukit.NpukitError, match=REFUSED[name]) as e:
        npukit.compile(path, "npu-m", calibration=calibration(load_case(path)[0]), sqnr=False)
    assert "\n" not in str(e.value)


def _model(nodes, inputs, outputs, inits=(), opset=9) -> bytes:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    return m.SerializeToString()


def test_unsqueeze_axes_count_in_the_output_rank(tmp_path) -> None:
    """Unsqueeze-1 axes [1, 2] of a rank-1 value index the rank-3 output (densenet's BN scale)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 3, 3])
    scale = numpy_helper.from_array(np.linspace(0.5, 2.0, 4, dtype=np.float32), "s")
    path = _save(tmp_path, _model([helper.make_node("Unsqueeze", ["s"], ["s4"], axes=[1, 2]),
                                   helper.make_node("Mul", ["x", "s4"], ["y"])], [x], [y], [scale]))
    xs = np.random.default_rng(1).standard_normal((4, 1, 4, 3, 3)).astype(np.float32)
    want = ort.InferenceSession(str(path)).run(None, {"x": xs[0]})[0]
    got = npukit.compile(path, "npu-m", calibration={"x": xs}, sqnr=False).run({"x": xs[0]})["y"]
    assert compare(got, want)[0] > 0.999


def test_prelu_slope_that_does_not_broadcast_is_one_line(tmp_path) -> None:
    """Opset 9 PRelu slope [3] on [2, 3, 4]: not broadcastable from the right, which
    onnxruntime refuses too; npukit says so in one line instead of failing in calibration."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])
    slope = numpy_helper.from_array(np.array([0.1, 0.2, 0.3], np.float32), "s")
    path = _save(tmp_path, _model([helper.make_node("PRelu", ["x", "s"], ["y"])], [x], [y], [slope]))
    with pytest.raises(Exception):      # noqa: B017 - the oracle: onnxruntime refuses it as well
        ort.InferenceSession(str(path)).run(None, {"x": np.ones((2, 3, 4), np.float32)})
    with pytest.raises(npukit.errors.ModelError, match=r"slope of shape \[3\] does not broadcast"):
        npukit.compile(path, "npu-m", calibration={"x": np.ones((2, 2, 3, 4), np.float32)}, sqnr=False)


def _save(folder: Path, data: bytes) -> Path:
    path = folder / "m.onnx"
    path.write_bytes(data)
    onnx.checker.check_model(str(path))
    return path
