"""npukit.kernels.intmath against gemmlowp's definitions (hand-worked and exact rational
arithmetic) and against LiteRT's reference kernels on single-operator int8 models."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import given, settings, strategies as st

from npukit.kernels import intmath
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference

INT32 = st.integers(-(1 << 31), (1 << 31) - 1)
Q31 = st.integers(0, (1 << 31) - 1)


def half_away(q: Fraction) -> int:
    n = math.floor(abs(q) + Fraction(1, 2))
    return n if q >= 0 else -n


def half_up(q: Fraction) -> int:
    return math.floor(q + Fraction(1, 2))


# ---- gemmlowp primitives, hand-worked ---------------------------------------------------

@pytest.mark.parametrize("x, e, expected", [
    (5, 1, 3), (-5, 1, -3), (-4, 1, -2), (7, 2, 2), (6, 2, 2), (-6, 2, -2), (-2, 2, -1),
    (-1, 1, -1), (1, 1, 1), (0, 5, 0), (123, 0, 123), ((1 << 31) - 1, 31, 1), (-(1 << 31), 31, -1),
])
def test_rounding_divide_by_pot_hand_worked(x, e, expected):
    assert int(intmath.rounding_divide_by_pot(x, e)) == expected


@pytest.mark.parametrize("a, b, expected", [
    (-(1 << 31), -(1 << 31), (1 << 31) - 1),        # the one overflow case saturates
    (1 << 30, 1 << 30, 1 << 29),
    (1, 1 << 30, 1),                                # 0.5 rounds up
    (-1, 1 << 30, 0),                               # -0.5 rounds up too (nudge, then truncate)
    (-3, 1 << 30, -1),                              # -1.5 -> -1
    (3, 1 << 30, 2),                                # 1.5 -> 2
    ((1 << 31) - 1, (1 << 31) - 1, (1 << 31) - 2),
])
def test_saturating_rounding_doubling_high_mul_hand_worked(a, b, expected):
    assert int(intmath.saturating_rounding_doubling_high_mul(a, b)) == expected


@settings(max_examples=300)
@given(INT32, st.integers(0, 31))
def test_rounding_divide_by_pot_is_round_half_away(x, e):
    assert int(intmath.rounding_divide_by_pot(x, e)) == half_away(Fraction(x, 1 << e))


@settings(max_examples=300)
@given(INT32, INT32)
def test_high_mul_is_round_half_up_of_product(a, b):
    if a == b == -(1 << 31):
        return
    assert int(intmath.saturating_rounding_doubling_high_mul(a, b)) == half_up(Fraction(a * b, 1 << 31))


@settings(max_examples=300)
@given(INT32, Q31, st.integers(-31, 0))
def test_double_rounding_multiplier_is_two_roundings(x, m, shift):
    first = half_up(Fraction(x * m, 1 << 31))
    expected = half_away(Fraction(first, 1 << -shift))
    assert int(intmath.multiply_by_quantized_multiplier(x, m, shift)) == expected


@settings(max_examples=300)
@given(INT32, Q31, st.integers(-31, 30))
def test_single_rounding_multiplier_is_one_rounding(x, m, shift):
    expected = half_up(Fraction(x * m, 1 << (31 - shift)))
    expected = (expected + (1 << 31)) % (1 << 32) - (1 << 31)      # the int32 cast
    assert int(intmath.multiply_by_quantized_multiplier_single_rounding(x, m, shift)) == expected


def test_multiplier_vectorises_per_channel():
    x = np.array([[10, -10], [1000, -1000]])
    m = np.array([1 << 30, 3 << 29])
    s = np.array([-1, 2])
    got = intmath.multiply_by_quantized_multiplier(x, m, s)
    want = [[int(intmath.multiply_by_quantized_multiplier(v, m[c], s[c])) for c, v in enumerate(row)] for row in x]
    assert got.tolist() == want
    assert got.tolist() == [[3, -30], [250, -3000]]      # 10*0.25 = 2.5 -> 3; -10*0.75*4 = -30


# ---- QuantizeMultiplier and rounding helpers -------------------------------------------

@pytest.mark.parametrize("scale, expected", [
    (0.0, (0, 0)), (0.25, (1 << 30, -1)), (1.0, (1 << 30, 1)), (0.75, (3 << 29, 0)),
    (1 - 2.0 ** -40, (1 << 30, 1)),                 # mantissa rounds up to 2^31: halve, shift+1
    (2.0 ** -40, (0, 0)),                           # shift < -31 flushes to zero
    (0.1, (1717986918, -3)),
])
def test_quantize_multiplier_hand_worked(scale, expected):
    assert intmath.quantize_multiplier(scale) == expected


@settings(max_examples=300)
@given(st.floats(2.0 ** -30, 2.0 ** 20, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_is_nearest_q31(scale):
    m, shift = intmath.quantize_multiplier(scale)
    assert (1 << 30) <= m < (1 << 31)
    assert abs(Fraction(m) * Fraction(2) ** (shift - 31) - Fraction(scale)) <= Fraction(2) ** (shift - 32)


@settings(max_examples=300)
@given(st.floats(-1e17, 1e17, allow_nan=False, allow_infinity=False))
def test_round_half_away_is_std_round(v):
    assert int(intmath.round_half_away(v)) == half_away(Fraction(v))


def test_round_half_away_edge_cases():
    values = np.array([0.5, -0.5, 2.5, -2.5, 0.49999999999999994, 2.0 ** 52 + 1, -(2.0 ** 52) - 1])
    assert intmath.round_half_away(values).tolist() == [1, -1, 3, -3, 0, 2.0 ** 52 + 1, -(2.0 ** 52) - 1]


@settings(max_examples=200)
@given(st.integers(0, (1 << 31) - 1))
def test_count_leading_zeros(x):
    assert int(intmath.count_leading_zeros(np.array([x]))[0]) == 32 - x.bit_length()


# ---- pinned to LiteRT's reference kernels ------------------------------------------------

def _one_by_one(op: str, in_scale, w_scales, out_scale, in_zp, out_zp, w, bias, x):
    """A 1x1 CONV_2D / DEPTHWISE_CONV_2D / TRANSPOSE_CONV / FULLY_CONNECTED over one input
    channel with K output channels: acc[n, k] = (x[n] - in_zp) * w[k] + bias[k]."""
    k, n = len(w), x.size
    bias_spec = TensorSpec("b", (k,), "int32", [float(np.float32(in_scale * s)) for s in w_scales], 0, 0,
                           np.asarray(bias, np.int32))
    xin = TensorSpec("x", (1, n, 1, 1), "int8", in_scale, in_zp)
    out = TensorSpec("y", (1, n, 1, k), "int8", out_scale, out_zp)
    if op == "CONV_2D":
        o = tfl.Conv2DOptionsT()
        o.padding, o.strideH, o.strideW, o.dilationHFactor, o.dilationWFactor = tfl.Padding.VALID, 1, 1, 1, 1
        wspec = TensorSpec("w", (k, 1, 1, 1), "int8", w_scales, 0, 0, np.reshape(w, (k, 1, 1, 1)))
        model = build_single_op(op, [xin, wspec, bias_spec], [out], o, version=3)
    elif op == "DEPTHWISE_CONV_2D":
        o = tfl.DepthwiseConv2DOptionsT()
        o.padding, o.strideH, o.strideW, o.depthMultiplier = tfl.Padding.VALID, 1, 1, k
        o.dilationHFactor = o.dilationWFactor = 1
        wspec = TensorSpec("w", (1, 1, 1, k), "int8", w_scales, 0, 3, np.reshape(w, (1, 1, 1, k)))
        model = build_single_op(op, [xin, wspec, bias_spec], [out], o, version=3)
    elif op == "TRANSPOSE_CONV":
        o = tfl.TransposeConvOptionsT()
        o.padding, o.strideH, o.strideW = tfl.Padding.VALID, 1, 1
        shape = TensorSpec("shape", (4,), "int32", data=np.array([1, n, 1, k], np.int32))
        wspec = TensorSpec("w", (k, 1, 1, 1), "int8", w_scales, 0, 0, np.reshape(w, (k, 1, 1, 1)))
        model = build_single_op(op, [shape, wspec, xin, bias_spec], [out], o, version=3)
    else:
        xin = TensorSpec("x", (n, 1), "int8", in_scale, in_zp)
        out = TensorSpec("y", (n, k), "int8", out_scale, out_zp)
        wspec = TensorSpec("w", (k, 1), "int8", w_scales, 0, 0, np.reshape(w, (k, 1)))
        model = build_single_op(op, [xin, wspec, bias_spec], [out], tfl.FullyConnectedOptionsT(),
                                version=12 if len(w_scales) > 1 else 4)
    y = run_reference(model, [x.reshape(xin.shape)])[0]
    acc = (x.astype(np.int64).reshape(n, 1) - in_zp) * np.asarray(w, np.int64) + np.asarray(bias, np.int64)
    return y.reshape(n, k).astype(np.int64), acc


ALL_CODES = np.arange(-128, 128, dtype=np.int8)


@pytest.mark.parametrize("op", ["CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"])
def test_conv_family_uses_double_rounding(op):
    """Effective scale 0.25 exactly, so (x * 0.25) hits every tie: the variants disagree."""
    y, acc = _one_by_one(op, 0.5, [0.5], 1.0, 0, 0, [1], [0], ALL_CODES)
    m, s = intmath.quantize_multiplier(0.25)
    assert (m, s) == (1 << 30, -1)
    double = np.clip(intmath.multiply_by_quantized_multiplier(acc, m, s), -128, 127)
    single = np.clip(intmath.multiply_by_quantized_multiplier_single_rounding(acc, m, s), -128, 127)
    assert np.array_equal(y, double)
    assert not np.array_equal(y, single)
    assert y[ALL_CODES == 1, 0] == 1 and y[ALL_CODES == -2, 0] == -1   # 0.25 -> 1 (!), -0.5 -> -1


def test_fully_connected_requantises_in_double_precision():
    """LiteRT's reference FULLY_CONNECTED computes round(double(acc) * scale), half away."""
    y, acc = _one_by_one("FULLY_CONNECTED", 0.5, [0.5], 1.0, 0, 0, [1], [0], ALL_CODES)
    exact = np.clip(intmath.round_half_away(acc * 0.25), -128, 127)
    assert np.array_equal(y, exact)
    m, s = intmath.quantize_multiplier(0.25)
    for variant in (intmath.multiply_by_quantized_multiplier,
                    intmath.multiply_by_quantized_multiplier_single_rounding):
        assert not np.array_equal(y, np.clip(variant(acc, m, s), -128, 127))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), dyadic=st.booleans())
def test_conv_requantize_matches_litert_over_many_multipliers(seed, dyadic):
    """64 output channels, each with its own multiplier (right and left shifts, and dyadic
    scales that produce exact ties), on all 256 input codes."""
    rng = np.random.default_rng(seed)
    k = 64
    in_scale, out_scale = 2.0 ** -int(rng.integers(0, 8)), 2.0 ** -int(rng.integers(0, 8))
    if dyadic:   # odd / 2^n: exact in float32, and acc * scale lands on ties
        effective = rng.integers(1, 64, k) * 2.0 ** -rng.integers(5, 22, k).astype(np.float64)
    else:
        effective = np.exp(rng.uniform(np.log(2.0 ** -16), np.log(16.0), k))
    w_scales = np.float32(effective * out_scale / in_scale)
    effective = in_scale * w_scales.astype(np.float64) / out_scale
    # keep the outputs mostly in range: small weights where the scale is large
    w = np.clip(np.round(60.0 / (effective * 128.0)), 1, 127).astype(np.int64) * rng.choice([-1, 1], k)
    bias = np.round(rng.normal(0, 40.0, k) / np.maximum(effective, 1e-6)).clip(-2 ** 24, 2 ** 24).astype(np.int64)
    in_zp, out_zp = int(rng.integers(-20, 21)), int(rng.integers(-20, 21))
    y, acc = _one_by_one("CONV_2D", in_scale, [float(s) for s in w_scales], out_scale, in_zp, out_zp,
                         w, bias, ALL_CODES)
    mult, shift = zip(*(intmath.quantize_multiplier(float(np.float64(in_scale) * float(s) / out_scale))
                        for s in w_scales))
    expected = intmath.requantize(acc, None, np.array(mult), np.array(shift), out_zp, -128, 127)
    assert np.array_equal(y, expected)
    assert np.mean(np.abs(y) < 127) > 0.2       # the comparison is not all saturation


# ---- the fused (single-shift) formulation against the two-step gemmlowp composition ------

EDGE_X = [-(1 << 31), -(1 << 31) + 1, -(1 << 30) - 1, -(1 << 30), -(1 << 30) + 1, -65537, -3, -2, -1,
          0, 1, 2, 3, 65535, (1 << 30) - 1, 1 << 30, (1 << 30) + 1, (1 << 31) - 2, (1 << 31) - 1]
EDGE_M = [-(1 << 31), -(1 << 31) + 1, -(1 << 30), -1, 0, 1, 2, 3, (1 << 30) - 1, 1 << 30, (1 << 30) + 1,
          (1 << 31) - 2, (1 << 31) - 1]


def test_fused_multiplier_equals_two_step_on_the_whole_edge_grid():
    """Every edge accumulator x every edge multiplier x every shift -31..+31."""
    x, m, s = np.broadcast_arrays(np.array(EDGE_X)[:, None, None], np.array(EDGE_M)[None, :, None],
                                  np.arange(-31, 32)[None, None, :])
    want = intmath.multiply_by_quantized_multiplier(x, m, s)
    assert np.array_equal(intmath.multiply_by_quantized_multiplier_fused(x.astype(np.int32), m, s), want)
    assert np.array_equal(intmath.multiply_by_quantized_multiplier_fused(x, m, s), want)
    right = s <= 0
    two_step = intmath.rounding_divide_by_pot(intmath.saturating_rounding_doubling_high_mul(x, m), -s)
    assert np.array_equal(intmath.multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, s)[right],
                          two_step[right])


@settings(max_examples=400)
@given(st.lists(INT32, min_size=1, max_size=16), INT32, st.integers(-31, 31))
def test_fused_multiplier_equals_two_step(xs, m, shift):
    x = np.array(xs, dtype=np.int64)
    assert np.array_equal(intmath.multiply_by_quantized_multiplier_fused(x, m, shift),
                          intmath.multiply_by_quantized_multiplier(x, m, shift))


@settings(max_examples=200)
@given(st.lists(INT32, min_size=4, max_size=4), st.lists(INT32, min_size=4, max_size=4),
       st.lists(Q31, min_size=4, max_size=4), st.lists(st.integers(-31, 30), min_size=4, max_size=4),
       st.integers(-128, 127), st.integers(-128, 127), st.integers(0, 255))
def test_requantize_equals_the_spelled_out_stage(acc, bias, mult, shift, zp, lo, width):
    """requantize (fused, int32 bias wrap) == wrap, two-step multiplier, zero point, clamp."""
    acc = np.array([acc, acc[::-1]], dtype=np.int32)
    bias, mult, shift = (np.array(v, dtype=np.int32) for v in (bias, mult, shift))
    hi = min(lo + width, 127)
    x = intmath.wrap_int32(acc.astype(np.int64) + bias)
    want = np.clip(intmath.multiply_by_quantized_multiplier(x, mult, shift) + zp, lo, hi).astype(np.int8)
    assert np.array_equal(intmath.requantize(acc, bias, mult, shift, zp, lo, hi), want)
