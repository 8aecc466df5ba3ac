"""npukit.kernels.kernels_mxu element-for-element against LiteRT's reference kernels on random
single-operator int8 models (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, TRANSPOSE_CONV)."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import assume, given, settings, strategies as st

from npukit.errors import ModelError
from npukit.ir.graph import Clamp, ConvAttrs
from npukit.kernels import kernels_mxu as mxu
from npukit.testing import mxu_models
from npukit.testing.single_op import RUNNERS, read_single_op, run_npukit
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference

DATA = Path(__file__).resolve().parents[1] / "data" / "tflite_ops"
FAST = settings(max_examples=25, deadline=None)

seeds = st.integers(0, 2 ** 31 - 1)
acts = st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"])
paddings = st.sampled_from(["SAME", "VALID"])
gains = st.sampled_from([0.05, 0.3, 1.0, 3.0, 20.0])       # output scale around the natural one


def assert_matches_litert(model: bytes, inputs: list) -> None:
    want = run_reference(model, inputs)
    got = run_npukit(model, inputs)
    assert len(want) == len(got)
    for w, g in zip(want, got):
        assert w.dtype == g.dtype and w.shape == g.shape
        bad = np.argwhere(w != g)
        assert bad.size == 0, f"{len(bad)} mismatches, first at {bad[:3].tolist()}: " \
                              f"litert {w[tuple(bad[0])]} npukit {g[tuple(bad[0])]}"


def _fits(in_hw, kernel, dilation, padding) -> bool:
    return padding == "SAME" or all(i >= (k - 1) * d + 1 for i, k, d in zip(in_hw, kernel, dilation))


@FAST
@given(seed=seeds, h=st.integers(1, 10), w=st.integers(1, 10), in_ch=st.integers(1, 6),
       out_ch=st.integers(1, 6), kh=st.sampled_from([1, 2, 3, 5]), kw=st.sampled_from([1, 2, 3, 5]),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), padding=paddings, act=acts,
       per_channel=st.booleans(), gain=gains, batch=st.integers(1, 2))
def test_conv2d(seed, h, w, in_ch, out_ch, kh, kw, stride, dilation, padding, act, per_channel, gain, batch):
    assume(_fits((h, w), (kh, kw), dilation, padding))
    assert_matches_litert(*mxu_models.conv2d_model(
        seed, (h, w), in_ch, out_ch, (kh, kw), stride, dilation, padding, act, per_channel, gain, batch))


@pytest.mark.parametrize("kh, stride, padding, batch", [(1, 1, "VALID", 2), (3, 1, "SAME", 1), (3, 2, "VALID", 2)])
def test_conv2d_in_bands_of_rows_and_depth_chunks(monkeypatch, kh, stride, padding, batch):
    """The dense conv's GEMM over bands of output rows, each in float32 depth chunks summed in
    float64 (a large map, a deep conv): shrunk here so that a small conv takes several of each."""
    monkeypatch.setattr(mxu, "BAND_VALUES", 2 * 7 * kh * kh * 6)     # two output rows of 7 pixels
    monkeypatch.setattr(mxu, "GEMM_CHUNK", 5)
    assert_matches_litert(*mxu_models.conv2d_model(
        kh * 10 + stride, (9, 7), 6, 4, (kh, kh), (stride, stride), (1, 1), padding, "NONE", True, 1.0, batch))


@settings(max_examples=10, deadline=None)
@given(seed=seeds, groups=st.sampled_from([2, 3]), cin_per_group=st.integers(1, 3),
       kout_per_group=st.integers(1, 3), padding=paddings, act=acts)
def test_grouped_conv2d(seed, groups, cin_per_group, kout_per_group, padding, act):
    assert_matches_litert(*mxu_models.conv2d_model(
        seed, (6, 7), groups * cin_per_group, groups * kout_per_group, (3, 3), (1, 2), (1, 1), padding, act,
        groups=groups))


@FAST
@given(seed=seeds, h=st.integers(1, 10), w=st.integers(1, 10), in_ch=st.integers(1, 6),
       multiplier=st.sampled_from([1, 2]), kh=st.sampled_from([1, 3, 5]), kw=st.sampled_from([1, 3, 5]),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), padding=paddings, act=acts,
       per_channel=st.booleans(), gain=gains)
def test_depthwise_conv2d(seed, h, w, in_ch, multiplier, kh, kw, stride, dilation, padding, act, per_channel, gain):
    assume(_fits((h, w), (kh, kw), dilation, padding))
    assert_matches_litert(*mxu_models.depthwise_model(
        seed, (h, w), in_ch, multiplier, (kh, kw), stride, dilation, padding, act, per_channel, gain))


@FAST
@given(seed=seeds, batch=st.integers(1, 64), in_ch=st.integers(1, 64), out_ch=st.integers(1, 32), act=acts,
       per_channel=st.booleans(), gain=gains, with_bias=st.booleans())
def test_fully_connected(seed, batch, in_ch, out_ch, act, per_channel, gain, with_bias):
    assert_matches_litert(*mxu_models.fully_connected_model(
        seed, batch, in_ch, out_ch, act, per_channel, gain, with_bias))


@FAST
@given(seed=seeds, h=st.integers(1, 6), w=st.integers(1, 6), in_ch=st.integers(1, 4), out_ch=st.integers(1, 4),
       kh=st.integers(1, 4), kw=st.integers(1, 4), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=paddings, act=acts, per_channel=st.booleans(), gain=gains,
       extra=st.tuples(st.integers(0, 2), st.integers(0, 2)))
def test_transpose_conv(seed, h, w, in_ch, out_ch, kh, kw, stride, padding, act, per_channel, gain, extra):
    """Output sizes other than the natural one are legal within a stride: larger for VALID
    (extra rows/cols only see the bias), smaller for SAME (more padding)."""
    extra = tuple(e % s for e, s in zip(extra, stride))
    if padding == "SAME":
        out_hw = tuple(max(i * s - e, 1) for i, s, e in zip((h, w), stride, extra))
    else:
        out_hw = tuple((i - 1) * s + k + e for i, s, k, e in zip((h, w), stride, (kh, kw), extra))
    assert_matches_litert(*mxu_models.transpose_conv_model(
        seed, (h, w), in_ch, out_ch, (kh, kw), stride, padding, act, per_channel, gain, out_hw))


def _tie_model(op: str) -> tuple[bytes, list]:
    """1x1 single-channel op with effective scale exactly 0.25 (input 0.5, weight 0.5,
    output 1.0, weight 1): on all 256 input codes every rounding tie occurs, so the
    requantisation variant (double rounding, single rounding, float) is pinned exactly."""
    x = TensorSpec("x", (1, 256, 1, 1), "int8", 0.5, 0)
    y = TensorSpec("y", (1, 256, 1, 1), "int8", 1.0, 0)
    b = TensorSpec("b", (1,), "int32", [0.25], 0, 0, np.zeros(1, np.int32))
    w4 = TensorSpec("w", (1, 1, 1, 1), "int8", [0.5], 0, 0, np.ones((1, 1, 1, 1), np.int8))
    codes = np.arange(-128, 128, dtype=np.int8)
    if op == "FULLY_CONNECTED":
        w2 = TensorSpec("w", (1, 1), "int8", [0.5], 0, 0, np.ones((1, 1), np.int8))
        model = build_single_op(op, [TensorSpec("x", (256, 1), "int8", 0.5, 0), w2, b],
                                [TensorSpec("y", (256, 1), "int8", 1.0, 0)], tfl.FullyConnectedOptionsT(), version=4)
        return model, [codes.reshape(256, 1)]
    if op == "TRANSPOSE_CONV":
        o = tfl.TransposeConvOptionsT()
        o.padding, o.strideH, o.strideW = tfl.Padding.VALID, 1, 1
        shape = TensorSpec("shape", (4,), "int32", data=np.array([1, 256, 1, 1], np.int32))
        return build_single_op(op, [shape, w4, x, b], [y], o, version=3), [codes.reshape(1, 256, 1, 1)]
    o = tfl.Conv2DOptionsT() if op == "CONV_2D" else tfl.DepthwiseConv2DOptionsT()
    o.padding, o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor = tfl.Padding.VALID, 1, 1, 1, 1
    if op == "DEPTHWISE_CONV_2D":
        o.depthMultiplier = 1
        w4 = TensorSpec("w", (1, 1, 1, 1), "int8", [0.5], 0, 3, np.ones((1, 1, 1, 1), np.int8))
    return build_single_op(op, [x, w4, b], [y], o, version=3), [codes.reshape(1, 256, 1, 1)]


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED"])
def test_rounding_ties(op):
    assert_matches_litert(*_tie_model(op))


# ---- hand-worked and structural checks -----------------------------------------------

@pytest.mark.parametrize("act, scale, zp, expected", [
    (None, 0.1, 5, (-128, 127)),
    (Clamp(0.0, None), 0.1, 10, (10, 127)),
    (Clamp(0.0, 6.0), 0.1, 10, (10, 70)),
    (Clamp(0.0, 6.0), 6 / 255, -128, (-128, 127)),
    (Clamp(0.0, 10.0), 4.0, 0, (0, 3)),            # 2.5 rounds away from zero, not to even
    (Clamp(-1.0, 1.0), 0.4, 0, (-3, 3)),           # -2.5 -> -3
    (Clamp(None, 1e30), 0.5, 0, (-128, 127)),      # an enormous bound saturates cleanly
])
def test_activation_range_hand_worked(act, scale, zp, expected):
    assert mxu.activation_range(act, scale, zp) == expected


def test_activation_range_uint8_and_empty_clamp():
    assert mxu.activation_range(Clamp(0.0, 6.0), 0.05, 3, np.uint8) == (3, 123)
    with pytest.raises(ModelError, match="empty"):
        mxu.activation_range(Clamp(-5.0, -4.0), 0.01, 0)       # whole range below -128


def test_conv2d_acc_hand_worked_zero_point_padding():
    """3x3 all-ones kernel, SAME padding: padding contributes zero (pad value = input_zp)."""
    x = np.full((1, 3, 3, 1), 7, dtype=np.int8)
    w = np.ones((1, 3, 3, 1), dtype=np.int8)
    acc = mxu.conv2d_acc(x, w, ConvAttrs(pads=(1, 1, 1, 1)), input_zp=5)
    assert acc[0, :, :, 0].tolist() == [[8, 12, 8], [12, 18, 12], [8, 12, 8]]     # 2 * window size


def test_conv2d_acc_input_dilation_inserts_zero_point():
    x = np.array([1, 2, 3], dtype=np.int8).reshape(1, 1, 3, 1)
    w = np.array([1, 10], dtype=np.int8).reshape(1, 1, 2, 1)
    acc = mxu.conv2d_acc(x, w, ConvAttrs(input_dilation=(1, 2)), input_zp=0)
    assert acc.ravel().tolist() == [1, 20, 2, 30]               # dilated input [1, 0, 2, 0, 3]


def test_grouped_conv_is_concatenation_of_group_convs():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (2, 5, 6, 6)).astype(np.int8)
    w = rng.integers(-127, 128, (9, 3, 2, 2)).astype(np.int8)
    attrs = ConvAttrs(stride=(2, 1), pads=(1, 0, 1, 1), groups=3)
    whole = mxu.conv2d_acc(x, w, attrs, 4)
    parts = [mxu.conv2d_acc(x[..., 2 * g: 2 * g + 2], w[3 * g: 3 * g + 3], ConvAttrs(stride=(2, 1), pads=(1, 0, 1, 1)), 4)
             for g in range(3)]
    assert np.array_equal(whole, np.concatenate(parts, axis=-1))


@pytest.mark.parametrize("x_shape, w_shape, attrs, message", [
    ((1, 4, 4, 3), (2, 3, 3, 2), ConvAttrs(), "groups"),
    ((1, 4, 4, 3), (1, 3, 3, 4), ConvAttrs(depthwise=True), "depthwise"),
    ((1, 2, 2, 1), (1, 3, 3, 1), ConvAttrs(), "larger than"),
    ((4, 4, 3), (2, 3, 3, 3), ConvAttrs(), "NHWC"),
    ((1, 4, 4, 1), (1, 1, 1, 1), ConvAttrs(stride=(0, 1)), "stride"),
])
def test_conv_rejects_bad_shapes(x_shape, w_shape, attrs, message):
    with pytest.raises(ModelError, match=message):
        mxu.conv2d_acc(np.zeros(x_shape, np.int8), np.zeros(w_shape, np.int8), attrs, 0)


def test_fc_and_bias_shape_errors():
    with pytest.raises(ModelError, match="do not fit"):
        mxu.fully_connected_acc(np.zeros((2, 5), np.int8), np.zeros((3, 4), np.int8), 0)
    p = mxu.prepare_conv(0.1, np.array([0.01, 0.02]), 0.2, 0, 0, None)
    with pytest.raises(ModelError, match="bias"):
        mxu.conv_output(np.zeros((1, 2), np.int64), np.zeros(3, np.int32), p)
    with pytest.raises(ModelError, match="positive"):
        mxu.prepare_conv(0.0, np.array([0.01]), 0.2, 0, 0, None)


def test_prepare_conv_rounds_scales_to_float32_and_keeps_exact_scale():
    p = mxu.prepare_conv(0.1, np.array([0.3, 0.7]), 0.05, 1, -2, Clamp(0.0, None))
    want = [float(np.float32(0.1)) * float(np.float32(s)) / float(np.float32(0.05)) for s in (0.3, 0.7)]
    assert p.effective_scale.tolist() == want
    assert p.act_min == -2 and p.act_max == 127


# ---- committed single-op files (scripts/make_tflite_ops.py) ---------------------------

def _committed() -> list[Path]:
    return sorted(DATA.glob("*.tflite"))


def test_committed_files_exist():
    assert len(_committed()) >= 8, f"run scripts/make_tflite_ops.py to populate {DATA}"


@pytest.mark.parametrize("path", _committed(), ids=lambda p: p.stem)
def test_committed_model(path):
    model = path.read_bytes()
    op = read_single_op(model)
    if op.op not in RUNNERS:
        pytest.skip(f"no npukit runner for {op.op}")
    rng = np.random.default_rng(zlib.crc32(path.stem.encode()))
    inputs = [rng.integers(np.iinfo(t.dtype).min, np.iinfo(t.dtype).max, t.shape, endpoint=True).astype(t.dtype)
              for t in op.inputs if t is not None and t.data is None]
    assert_matches_litert(model, inputs)
