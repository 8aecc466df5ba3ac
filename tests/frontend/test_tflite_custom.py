"""MediaPipe's CUSTOM:Convolution2DTransposeBias lowers to the NPU's transposed convolution.

Oracles: MediaPipe's kernel (mediapipe/util/tflite/operations/transpose_conv_bias.cc) written
out below as a numpy scatter, with its SAME / VALID output sizes and crops; and LiteRT's
default kernels, whose XNNPACK delegate implements this custom operator (LiteRT's reference
kernels do not). npukit's float graph equals both to 1e-5, the int8 program stays within a
few output steps; on MediaPipe's selfie segmenter the float graph equals LiteRT's run and
the int8 mask overlaps the float one.
"""
from __future__ import annotations

import numpy as np
import pytest

from npukit.api import compile as npu_compile
from npukit.errors import ModelError, UnsupportedOpError
from npukit.frontend.tflite import load_tflite
from npukit.models.corpus_inputs import photo_nhwc
from npukit.kernels.float_exec import run_float
from npukit.testing.fixtures import real_model
from npukit.testing.tflite_builder import Operator, build_model, run_default
from npukit.testing.tflite_builder import TensorSpec as T

OP = "CUSTOM:Convolution2DTransposeBias"
SAME, VALID = 1, 2                   # TfLitePadding


def _options(padding: int, stride_h: int, stride_w: int) -> bytes:
    return np.asarray([padding, stride_w, stride_h], "<i4").tobytes()


def _axis(size: int, kernel: int, stride: int, same: bool) -> tuple[int, int]:
    """(output size, offset of output pixel 0 in the full scatter), as MediaPipe's Prepare/Eval."""
    pad = max(0, kernel - (size - 1) % stride - 1) if same else 0
    return stride * (size - 1) + kernel - pad, pad // 2


def transpose_conv_bias(x, w, bias, same: bool, stride) -> np.ndarray:
    """MediaPipe's kernel: output = bias, then every input pixel scattered through the kernel."""
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    (oh, py), (ow, px) = _axis(h, kh, stride[0], same), _axis(wd, kw, stride[1], same)
    out = np.broadcast_to(bias.astype(np.float64), (n, oh, ow, o)).copy()
    for iy in range(h):
        for ix in range(wd):
            for fy in range(kh):
                for fx in range(kw):
                    y, xo = iy * stride[0] - py + fy, ix * stride[1] - px + fx
                    if 0 <= y < oh and 0 <= xo < ow:
                        out[:, y, xo] += x[:, iy, ix].astype(np.float64) @ w[:, fy, fx].astype(np.float64).T
    return out


# (H, W, I, O, kh, kw, stride, padding, output H, W): sizes worked out from MediaPipe's Prepare
CASES = {
    "selfie-like": (8, 8, 16, 1, 2, 2, (2, 2), SAME, 16, 16),      # pad 0
    "same-crop1": (5, 6, 3, 4, 4, 3, (2, 2), SAME, 9, 12),         # pad 3 -> crop 1; pad 1 -> crop 0
    "same-stride3": (4, 5, 4, 3, 5, 3, (3, 1), SAME, 10, 5),       # pad 4 -> crop 2; pad 2 -> crop 1
    "valid": (4, 3, 4, 5, 3, 4, (2, 3), VALID, 9, 10),
}


def _model(case: str, rng) -> tuple[bytes, np.ndarray, np.ndarray, tuple]:
    h, w, ci, co, kh, kw, stride, padding, oh, ow = CASES[case]
    weights = rng.uniform(-0.5, 0.5, (co, kh, kw, ci)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, co).astype(np.float32)
    x, y = T("x", (1, h, w, ci), "float32"), T("y", (1, oh, ow, co), "float32")
    op = Operator(OP, (x, T("w", weights.shape, "float32", data=weights), T("b", (co,), "float32", data=bias)),
                  (y,), custom_options=_options(padding, *stride))
    return build_model([op], [x], [y]), weights, bias, (padding == SAME, stride)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_graph_equals_mediapipe_scatter_and_litert(case, tmp_path):
    rng = np.random.default_rng(len(case))
    model, weights, bias, (same, stride) = _model(case, rng)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    g = load_tflite(path)
    assert [n.op.value for n in g.nodes] == ["conv2d"]
    h, w, ci = CASES[case][:3]
    for _ in range(3):
        x = rng.uniform(-1, 1, (1, h, w, ci)).astype(np.float32)
        want = transpose_conv_bias(x, weights, bias, same, stride)
        assert want.shape[1:3] == CASES[case][8:10]
        np.testing.assert_allclose(run_float(g, {"x": x})["y"], want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(run_default(model, [x])[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["same-crop1", "valid"])
def test_int8_program_within_a_few_steps(case, tmp_path):
    rng = np.random.default_rng(7)
    model, weights, bias, (same, stride) = _model(case, rng)
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    h, w, ci = CASES[case][:3]
    calib = rng.uniform(-1, 1, (16, 1, h, w, ci)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": calib})
    assert [la.target for la in prog.program.layers] == ["npu"]
    out = prog.program.outputs[0]
    step = out.scale
    lo, hi = (-128 - out.zero_point) * step, (127 - out.zero_point) * step
    for _ in range(4):
        x = rng.uniform(-1, 1, (1, h, w, ci)).astype(np.float32)
        want = transpose_conv_bias(x, weights, bias, same, stride)
        assert np.max(want) - np.min(want) > 100 * step            # the signal spans many steps
        err = np.abs(prog.run({"x": x})["y"] - np.clip(want, lo, hi))   # int8 saturates outside
        assert np.max(err) <= 2 * step, np.max(err) / step           # observed <= 1.2


def _broken(tmp_path, options: bytes, out_hw=(9, 12), **q) -> str:
    dtype = "int8" if q else "float32"
    x, y = T("x", (1, 5, 6, 3), dtype, **q), T("y", (1, *out_hw, 4), dtype, **q)
    w = T("w", (4, 4, 3, 3), "float32", data=np.zeros((4, 4, 3, 3), np.float32))
    op = Operator(OP, (x, w, T("b", (4,), "float32", data=np.zeros(4, np.float32))), (y,), custom_options=options)
    path = tmp_path / "bad.tflite"
    path.write_bytes(build_model([op], [x], [y]))
    return str(path)


def test_bad_options_shapes_and_int8_are_refused_in_one_line(tmp_path):
    with pytest.raises(ModelError, match=r"operator 0 \(CUSTOM:Convolution2DTransposeBias\).*8 bytes"):
        load_tflite(_broken(tmp_path, _options(SAME, 2, 2)[:8]))
    with pytest.raises(ModelError, match="padding 7"):
        load_tflite(_broken(tmp_path, _options(7, 2, 2)))
    with pytest.raises(ModelError, match=r"output \[1, 10, 12, 4\] in the model, the kernel makes \[1, 9, 12, 4\]"):
        load_tflite(_broken(tmp_path, _options(SAME, 2, 2), out_hw=(10, 12)))
    with pytest.raises(UnsupportedOpError, match="float32 only"):      # as MediaPipe's kernel
        load_tflite(_broken(tmp_path, _options(SAME, 2, 2), scale=0.1, zero_point=0))


def _astronaut() -> np.ndarray:
    from PIL import Image
    from skimage import data
    img = Image.fromarray(data.astronaut()).resize((256, 256), Image.BILINEAR)
    return (np.asarray(img, np.float32) / 255.0)[None]


def test_selfie_segmentation_float_graph_and_int8_mask():
    """MediaPipe's selfie segmenter: npukit's float graph equals LiteRT's (XNNPACK) run; the
    int8 program's mask overlaps the float mask."""
    path = real_model("selfie-segmentation")
    image = _astronaut()
    g = load_tflite(path)
    got = run_float(g, {g.inputs[0]: image})[g.outputs[0]]
    want = run_default(path.read_bytes(), [image])[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    person = want > 0.5
    assert 0.1 < person.mean() < 0.9                           # the mask finds the astronaut, not all
    calib = {g.inputs[0]: np.stack([photo_nhwc(seed, 256, 0.0) for seed in range(4)])}   # other photos
    prog = npu_compile(path, "npu-m", calibration=calib, sqnr=False)
    mask = prog.run({g.inputs[0]: image})[g.outputs[0]] > 0.5
    assert (person & mask).sum() / (person | mask).sum() > 0.8
