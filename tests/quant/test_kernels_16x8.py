"""16-bit kernels: the 16x8 convolution pinned to LiteRT's reference kernel (BUILTIN_REF, a
generated single-op int16 model), the 16x8 depthwise conv and QUANTIZE between int8 and int16
likewise, the byte split the MXU runs, the exact integer square root and the magnitude against
closed forms and hand-worked cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npukit.errors import ModelError
from npukit.ir.graph import ConvAttrs
from npukit.kernels import kernels_vpu as kv
from npukit.kernels import kernels_wide as kw
from npukit.testing.models_16x8 import conv16x8_model, dw16x8_model
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 16), hw=st.tuples(st.integers(1, 6), st.integers(3, 24)),
       in_ch=st.integers(1, 4), out_ch=st.integers(1, 6), kernel=st.tuples(st.integers(1, 3), st.integers(1, 8)),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 4)), padding=st.sampled_from(["SAME", "VALID"]),
       out_gain=st.sampled_from([0.05, 1.0, 20.0]))
def test_conv16x8_equals_litert(seed, hw, in_ch, out_ch, kernel, stride, padding, out_gain):
    if padding == "VALID" and (hw[0] < kernel[0] or hw[1] < kernel[1]):
        return
    model, x, w, bias, attrs, p = conv16x8_model(seed, hw, in_ch, out_ch, kernel, stride, padding, out_gain)
    want = run_reference(model, [x])[0]
    np.testing.assert_array_equal(kw.conv2d_16x8(x, w, bias, attrs, p), want)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 16), hw=st.tuples(st.integers(1, 7), st.integers(3, 20)),
       ch=st.integers(1, 6), mult=st.integers(1, 3), kernel=st.tuples(st.integers(1, 3), st.integers(1, 5)),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 3)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.sampled_from(["SAME", "VALID"]), out_gain=st.sampled_from([0.05, 1.0, 20.0]))
def test_depthwise16x8_equals_litert(seed, hw, ch, mult, kernel, stride, dilation, padding, out_gain):
    span = [(kernel[i] - 1) * dilation[i] + 1 for i in range(2)]
    if padding == "VALID" and (hw[0] < span[0] or hw[1] < span[1]):
        return
    model, x, w, bias, attrs, p = dw16x8_model(seed, hw, ch, mult, kernel, stride, dilation, padding, out_gain)
    want = run_reference(model, [x])[0]
    np.testing.assert_array_equal(kw.conv2d_16x8(x, w, bias, attrs, p), want)


@settings(max_examples=40, deadline=None)
@given(log_s_in=st.floats(-16, 0), log_ratio=st.floats(-10, 10), zp=st.integers(-128, 127),
       widen=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_quantize_int8_int16_equals_litert(log_s_in, log_ratio, zp, widen, seed):
    """QUANTIZE int8 -> int16 (zero point 0) on all 256 codes, int16 -> int8 on every int16 code's
    sample and the extremes: LiteRT's reference Requantize (Q31 multiplier of s_in / s_out)."""
    s_in = float(np.float32(2.0 ** log_s_in))
    s_out = float(np.float32(s_in * 2.0 ** log_ratio))
    if widen:
        x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
        ins, outs, out_dtype, z_in, z_out = ("int8", zp), ("int16", 0), np.int16, zp, 0
    else:
        rng = np.random.default_rng(seed)
        x = np.concatenate([[-32768, -32767, -1, 0, 1, 32767], rng.integers(-32768, 32768, 506)])
        x = x.astype(np.int16).reshape(2, 256)
        ins, outs, out_dtype, z_in, z_out = ("int16", 0), ("int8", zp), np.int8, 0, zp
    model = build_single_op("QUANTIZE", [TensorSpec("x", x.shape, ins[0], s_in, ins[1])],
                            [TensorSpec("out", x.shape, outs[0], s_out, outs[1])])
    want = run_reference(model, [x])[0]
    got = kv.requantize(x, kv.prepare_requantize(s_in, z_in, s_out, z_out), out_dtype)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_split_bytes_is_exact_for_every_int16():
    x = np.arange(-32768, 32768).astype(np.int16)
    hi, lo = kw.split_bytes(x)
    assert hi.dtype == lo.dtype == np.int8
    np.testing.assert_array_equal(256 * hi.astype(np.int64) + (lo.astype(np.int64) + 128), x)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 16), k=st.integers(1, 5), taps=st.integers(1, 40), stride=st.integers(1, 3),
       pad=st.integers(0, 3))
def test_two_byte_passes_equal_the_exact_sum(seed, k, taps, stride, pad):
    """256 * pass(hi) + pass(lo) == the int64 sum of x * w, padding included (closed form)."""
    rng = np.random.default_rng(seed)
    n = taps + 10
    x = rng.integers(-32768, 32768, size=(1, 1, n, 2)).astype(np.int16)
    w = rng.integers(-128, 128, size=(k, 1, taps, 2)).astype(np.int8)
    attrs = ConvAttrs(stride=(1, stride), pads=(0, pad, 0, pad))
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (0, 0)))
    outs = (n + 2 * pad - taps) // stride + 1
    want = np.array([[np.sum(xp[0, 0, o * stride:o * stride + taps] * w[j, 0].astype(np.int64)) for j in range(k)]
                     for o in range(outs)])
    np.testing.assert_array_equal(kw.conv2d_acc_16x8(x, w, attrs)[0, 0], want)


def test_isqrt_exhaustive_small():
    n = np.arange(1 << 20, dtype=np.int64)
    want = np.array([math.isqrt(int(v)) for v in n[::997]])
    np.testing.assert_array_equal(kw.isqrt(n)[::997], want)
    r = kw.isqrt(n)          # every value: r^2 <= n < (r + 1)^2
    assert np.all(r * r <= n) and np.all((r + 1) * (r + 1) > n)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2 ** 63 - 1), min_size=1, max_size=20))
def test_isqrt_matches_python(values):
    np.testing.assert_array_equal(kw.isqrt(np.array(values, np.int64)), [math.isqrt(v) for v in values])


def test_isqrt_squares_and_neighbours():
    r = np.array([0, 1, 2, 3037000499, 2 ** 31, 46340, 65535], np.int64)
    for d in (-1, 0, 1):
        n = np.maximum(r * r + d, 0)
        np.testing.assert_array_equal(kw.isqrt(n), [math.isqrt(int(v)) for v in n])
    with pytest.raises(ValueError):
        kw.isqrt(np.array([-1]))


def test_magnitude_hand_worked():
    one = kw.prepare_magnitude(0.5, 0.5, 0)           # ratio 1: mult 2^14, shift 14
    assert (one.mult, one.shift) == (1 << 14, 14)
    assert kw.magnitude(np.array([3, 0, -5, 0]), np.array([4, 0, 12, 0]), one).tolist() == [5, 0, 13, 0]
    half = kw.prepare_magnitude(0.25, 0.5, -128)      # ratio 0.5: 5 * 0.5 = 2.5 rounds half up to 3
    assert kw.magnitude(np.array([3, 1]), np.array([4, 1]), half).tolist() == [3 - 128, 1 - 128]  # sqrt2/2 -> 1
    assert kw.magnitude(np.array([32767]), np.array([-32768]), one).tolist() == [127]          # clamped
    with pytest.raises(ModelError):
        kw.prepare_magnitude(1.0, 0.0, 0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 16), log_ratio=st.floats(-14, 6), zp=st.integers(-128, 0))
def test_magnitude_within_one_lsb_of_float(seed, log_ratio, zp):
    """|npukit - clamp(round(sqrt(re^2 + im^2) * s_in / s_out) + zp)| <= 1 (15-bit scale)."""
    rng = np.random.default_rng(seed)
    s_out = 0.01
    s_in = float(np.float32(s_out * 2.0 ** log_ratio))
    p = kw.prepare_magnitude(s_in, s_out, zp)
    re = rng.integers(-32768, 32768, 500)
    im = rng.integers(-32768, 32768, 500)
    scale = float(np.float32(s_in)) / float(np.float32(s_out))
    want = np.clip(np.round(np.hypot(re, im) * scale) + zp, -128, 127)
    got = kw.magnitude(re, im, p).astype(np.int64)
    assert np.max(np.abs(got - want)) <= 1


def test_magnitude_pairs_reads_the_two_halves():
    p = kw.prepare_magnitude(1.0, 1.0, 0)
    x = np.array([[3, 6, 4, 8]], np.int16)          # re = [3, 6], im = [4, 8] on axis 1
    assert kw.magnitude_pairs(x, 1, p).tolist() == [[5, 10]]
    with pytest.raises(ModelError, match="even"):
        kw.magnitude_pairs(np.zeros((1, 3), np.int16), 1, p)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 16), log_ratio=st.floats(-6, 2))
def test_magnitude_int16_out_within_one_lsb_of_float(seed, log_ratio):
    """int16 output (zero point 0, precision int16 / auto): |npukit - clamp(round(sqrt(re^2 +
    im^2) * s_in / s_out))| <= 1, clamped to int16, not int8."""
    rng = np.random.default_rng(seed)
    s_out = 1e-4
    s_in = float(np.float32(s_out * 2.0 ** log_ratio))
    p = kw.prepare_magnitude(s_in, s_out, 0, np.int16)
    re = rng.integers(-32768, 32768, 500)
    im = rng.integers(-32768, 32768, 500)
    scale = float(np.float32(s_in)) / float(np.float32(s_out))
    want = np.clip(np.round(np.hypot(re, im) * scale), -32768, 32767)
    got = kw.magnitude(re, im, p)
    assert got.dtype == np.int16 and np.max(np.abs(got.astype(np.int64) - want)) <= 1
