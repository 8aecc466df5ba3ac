"""The compiled kernels (npukit.sim.jit) against the numpy kernels they stand in for, bit for
bit: intmath.requantize and gemmlowp's two-step MultiplyByQuantizedMultiplier (nudge, truncation,
saturation, RoundingDivideByPOT), and kernels_mxu.conv2d_acc for the depthwise conv. Random
and extreme int32 accumulators, biases and multipliers, every shift, strided outputs, and
depthwise geometries (multiplier, stride, dilation, asymmetric and negative padding, 1x1 to
5x5 kernels, 1-pixel tiles)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npukit.ir.graph import ConvAttrs
from npukit.errors import InputError
from npukit.kernels import intmath, kernels_mxu
from npukit.sim import jit
from npukit.kernels import kernels_vpu as kv
from npukit.sim.plain import tile_pads as _tile_pads

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
EDGE = np.array([I32_MIN, I32_MIN + 1, -(1 << 30), -12345, -1, 0, 1, 777, 1 << 30, I32_MAX], np.int32)
EDGE_MULT = [0, 1, 1 << 30, (1 << 30) + 12345, I32_MAX, -1, -(1 << 30), I32_MIN]
EDGE_SHIFT = [-31, -30, -7, -1, 0, 1, 5, 30, 31]


def _two_step(acc, bias, mult, shift, out_zp, act_min, act_max) -> np.ndarray:
    """The spelled-out reference: int32-wrapping bias add, the gemmlowp two-step multiply, the
    zero point, the clamp, the int8 cast."""
    x = intmath.wrap_int32(acc.astype(np.int64) + bias)
    y = intmath.multiply_by_quantized_multiplier(x, mult, shift) + out_zp
    return np.clip(y, act_min, act_max).astype(np.int8)


def _check_requantize(acc, bias, mult, shift, out_zp, act_min, act_max, pad=0):
    """jit.requantize into an out view with `pad` extra bytes per row equals both references,
    and leaves the bytes between rows alone."""
    n, k = acc.shape
    buf = np.full((n, k + pad), 99, np.int8)
    out = buf[:, :k]
    jit.requantize(acc, bias, mult, shift, out_zp, act_min, act_max, out)
    want = intmath.requantize(acc, bias, mult, shift, out_zp, act_min, act_max)
    assert np.array_equal(out, want)
    assert np.array_equal(out, _two_step(acc, bias, mult, shift, out_zp, act_min, act_max))
    assert np.all(buf[:, k:] == 99)


def test_requantize_every_edge_combination():
    """Every combination of edge multiplier and shift (left shifts that overflow int32, M = 0,
    M = INT32_MIN saturating against INT32_MIN), against edge accumulators and biases whose
    sums wrap, with the full int8 range and with narrow clamps."""
    combos = list(itertools.product(EDGE_MULT, EDGE_SHIFT, EDGE))
    mult = np.array([c[0] for c in combos], np.int32)
    shift = np.array([c[1] for c in combos], np.int32)
    bias = np.array([c[2] for c in combos], np.int32)
    acc = np.repeat(EDGE[:, None], len(combos), axis=1)
    # clamps beyond int8 let the int8 cast wrap, as numpy's unsafe cast: only they show
    # SRDHM's saturation (INT32_MAX against 2^31), which any int8 clamp hides
    for out_zp, act_min, act_max in ((0, -128, 127), (-128, -128, 127), (127, -128, 127), (5, -20, 33), (-3, 0, 0),
                                     (0, I32_MIN, I32_MAX), (-7, -(1 << 40), 1 << 40)):
        _check_requantize(acc, bias, mult, shift, out_zp, act_min, act_max, pad=3)
        _check_requantize(acc, np.zeros_like(bias), mult, shift, out_zp, act_min, act_max)


def test_requantize_saturation_and_rounding_by_hand():
    """Hand-worked values (M = 2^30 is 0.5): SRDHM(INT32_MIN, INT32_MIN) = INT32_MAX, then
    >> 31 rounds to 1; 2^30 * 0.5 = 2^29, >> 29 = 1; SRDHM rounds -5 * 0.5 = -2.5 up to -2
    (nudge then truncate); -20 * 0.5 = -10, / 4 = -2.5, RoundingDivideByPOT rounds away from
    zero to -3; 5 << 30 wraps to 2^30 (5 * 2^30 = 2^32 + 2^30), times 0.5 is 2^29 (clamped
    to 127); -3 << 31 wraps to INT32_MIN, times 0.5 is -2^30 (clamped to -128)."""
    acc = np.array([[I32_MIN, 1 << 30, -5, -20, 5, -3]], np.int32)
    mult = np.array([I32_MIN, 1 << 30, 1 << 30, 1 << 30, 1 << 30, 1 << 30], np.int32)
    shift = np.array([-31, -29, 0, -2, 30, 31], np.int32)
    out = np.zeros((1, 6), np.int8)
    jit.requantize(acc, np.zeros(6, np.int32), mult, shift, 0, -128, 127, out)
    assert out.tolist() == [[1, 1, -2, -3, 127, -128]]


def test_requantize_right_path_edges():
    """Only M >= 0 and shift <= 0, so the whole tile takes the right-shift path (per-channel
    rounding constants, the correction taken where a*M < 0): M = 0 against negative
    accumulators, INT32_MIN and INT32_MAX sums, shifts 0 and -31."""
    combos = list(itertools.product([m for m in EDGE_MULT if m >= 0], [-31, -30, -7, -1, 0], EDGE))
    mult = np.array([c[0] for c in combos], np.int32)
    shift = np.array([c[1] for c in combos], np.int32)
    bias = np.array([c[2] for c in combos], np.int32)
    acc = np.repeat(EDGE[:, None], len(combos), axis=1)
    for out_zp, act_min, act_max in ((0, -128, 127), (5, -20, 33), (0, I32_MIN, I32_MAX)):
        _check_requantize(acc, bias, mult, shift, out_zp, act_min, act_max, pad=2)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 40), k=st.integers(1, 70), pad=st.integers(0, 9), seed=st.integers(0, 2 ** 32 - 1),
       right=st.booleans(), out_zp=st.integers(-128, 127), lo=st.integers(-128, 127), hi=st.integers(-128, 127))
def test_requantize_random(n, k, pad, seed, right, out_zp, lo, hi):
    """Random full-range int32 values; `right` draws the usual parameters (M >= 0, shift <= 0,
    the kernel's faster path), else any multiplier and shift in [-31, 31]."""
    rng = np.random.default_rng(seed)
    acc = rng.integers(I32_MIN, I32_MAX, (n, k), endpoint=True).astype(np.int32)
    bias = rng.integers(I32_MIN, I32_MAX, k, endpoint=True).astype(np.int32)
    if right:
        mult = rng.integers(0, I32_MAX, k, endpoint=True).astype(np.int32)
        shift = rng.integers(-31, 0, k, endpoint=True).astype(np.int32)
    else:
        mult = rng.integers(I32_MIN, I32_MAX, k, endpoint=True).astype(np.int32)
        shift = rng.integers(-31, 31, k, endpoint=True).astype(np.int32)
    _check_requantize(acc, bias, mult, shift, out_zp, min(lo, hi), max(lo, hi), pad)


def test_requantize_rejects_bad_shapes_and_shifts():
    acc, p, out = np.zeros((2, 3), np.int32), np.zeros(3, np.int32), np.zeros((2, 3), np.int8)
    with pytest.raises(ValueError, match="shift outside"):
        jit.requantize(acc, p, p, np.array([0, 32, 0], np.int32), 0, -128, 127, out)
    with pytest.raises(ValueError, match="shapes"):
        jit.requantize(acc, p, p, p, 0, -128, 127, np.zeros((3, 3), np.int8))


def _depthwise_expected(x, w, kernel, stride, dilation, pads_tl, out_hw, zp, bias, mult, shift, out_zp, lo, hi):
    """What the DwConv instruction computes with the general kernels."""
    (ih, iw, c), (kh, kw) = x.shape, kernel
    pt, pb = _tile_pads(ih, 1, pads_tl[0], out_hw[0], stride[0], kh, dilation[0])
    pl, pr = _tile_pads(iw, 1, pads_tl[1], out_hw[1], stride[1], kw, dilation[1])
    attrs = ConvAttrs(stride=stride, dilation=dilation, pads=(pt, pl, pb, pr), groups=c, depthwise=True)
    acc = kernels_mxu.conv2d_acc(x[None], w[None], attrs, zp)[0, :out_hw[0], :out_hw[1]]
    acc = intmath.wrap_int32(acc.reshape(-1, acc.shape[-1]))
    return intmath.requantize(acc, bias, mult, shift, out_zp, lo, hi)


def _check_depthwise(rng, in_hw, c, cm, kernel, stride, dilation, pads_tl, out_hw, zp, kind="random",
                     out_zp=3, lo=-128, hi=127, x_view=False):
    k = c * cm
    if kind == "extremes":
        x = rng.choice(np.array([-128, 127], np.int8), (*in_hw, c + 2))
        w = rng.choice(np.array([-128, 127], np.int8), (*kernel, k))
    else:
        x = rng.integers(-128, 128, (*in_hw, c + 2)).astype(np.int8)
        w = rng.integers(-128, 128, (*kernel, k)).astype(np.int8)
    x = x[..., 1:c + 1] if x_view else np.ascontiguousarray(x[..., :c])
    bias = rng.integers(-(1 << 20), 1 << 20, k).astype(np.int32)
    mult = rng.integers(1 << 30, I32_MAX, k, endpoint=True).astype(np.int32)
    shift = rng.integers(-14, -4, k).astype(np.int32)
    g = jit.geometry(in_hw, c, cm, kernel, stride, dilation, pads_tl, out_hw, zp, out_zp, lo, hi)
    out = np.full((out_hw[0] * out_hw[1], k), 55, np.int8)
    jit.depthwise_requant(x, w, bias, mult, shift, g, out)
    want = _depthwise_expected(x, w, kernel, stride, dilation, pads_tl, out_hw, zp, bias, mult, shift, out_zp, lo, hi)
    assert np.array_equal(out, want)


@pytest.mark.parametrize("case", [
    dict(in_hw=(6, 7), c=5, cm=1, kernel=(3, 3), stride=(1, 1), dilation=(1, 1), pads_tl=(1, 1), out_hw=(6, 7)),
    dict(in_hw=(6, 7), c=3, cm=2, kernel=(3, 3), stride=(1, 1), dilation=(1, 1), pads_tl=(1, 1), out_hw=(6, 7)),
    dict(in_hw=(9, 8), c=4, cm=1, kernel=(3, 3), stride=(2, 2), dilation=(1, 1), pads_tl=(0, 1), out_hw=(4, 4)),
    dict(in_hw=(9, 9), c=2, cm=3, kernel=(3, 3), stride=(1, 2), dilation=(2, 2), pads_tl=(2, 1), out_hw=(9, 5)),
    dict(in_hw=(5, 6), c=7, cm=1, kernel=(1, 1), stride=(1, 1), dilation=(1, 1), pads_tl=(0, 0), out_hw=(5, 6)),
    dict(in_hw=(8, 8), c=3, cm=1, kernel=(5, 5), stride=(2, 1), dilation=(1, 1), pads_tl=(2, 0), out_hw=(4, 6)),
    dict(in_hw=(1, 1), c=4, cm=2, kernel=(3, 3), stride=(1, 1), dilation=(1, 1), pads_tl=(1, 1), out_hw=(1, 1)),
    dict(in_hw=(4, 5), c=3, cm=1, kernel=(2, 3), stride=(1, 1), dilation=(1, 1), pads_tl=(-1, 2), out_hw=(2, 5)),
])
@pytest.mark.parametrize("zp", [-128, 0, 127])
def test_depthwise_cases(case, zp):
    """Multiplier 1 and 2-3, stride 2, dilation 2, asymmetric and negative (cropped) padding,
    1x1 and 5x5 kernels, a 1-pixel tile; extreme codes and zero points, a narrow clamp, and
    the input as a strided view."""
    rng = np.random.default_rng(abs(zp) + 1)
    _check_depthwise(rng, zp=zp, **case)
    _check_depthwise(rng, zp=zp, kind="extremes", out_zp=-128, lo=-10, hi=40, x_view=True, **case)


@settings(max_examples=60, deadline=None)
@given(kh=st.integers(1, 5), kw=st.integers(1, 5), sh=st.integers(1, 3), sw=st.integers(1, 3), dh=st.integers(1, 2),
       dw=st.integers(1, 2), ih=st.integers(1, 9), iw=st.integers(1, 9), pt=st.integers(-1, 4), pl=st.integers(-1, 4),
       oh=st.integers(1, 6), ow=st.integers(1, 6), c=st.integers(1, 20), cm=st.integers(1, 3),
       zp=st.integers(-128, 127), kind=st.sampled_from(["random", "extremes"]), seed=st.integers(0, 2 ** 16))
def test_depthwise_random_geometry(kh, kw, sh, sw, dh, dw, ih, iw, pt, pl, oh, ow, c, cm, zp, kind, seed):
    _check_depthwise(np.random.default_rng(seed), (ih, iw), c, cm, (kh, kw), (sh, sw), (dh, dw), (pt, pl), (oh, ow),
                     zp, kind)


@pytest.mark.parametrize("cm", [1, 2])
def test_depthwise_any_multiplier_and_shift(cm):
    """Negative multipliers and left shifts (the general requantisation) and the right-shift
    path's edges (M = 0, shift -31), on a padded, strided tile."""
    rng = np.random.default_rng(cm)
    c, kernel, stride, pads, out_hw, zp = 6, (3, 3), (2, 1), (1, 1), (4, 5), -7
    x = rng.integers(-128, 128, (7, 5, c)).astype(np.int8)
    w = rng.integers(-128, 128, (*kernel, c * cm)).astype(np.int8)
    bias = rng.integers(-(1 << 20), 1 << 20, c * cm).astype(np.int32)
    for mult, shift in ((rng.integers(I32_MIN, I32_MAX, c * cm), rng.integers(-31, 31, c * cm, endpoint=True)),
                        (np.resize([0, I32_MAX, 1 << 30], c * cm), np.resize([-31, 0, -5, -1], c * cm))):
        mult, shift = mult.astype(np.int32), shift.astype(np.int32)
        g = jit.geometry(x.shape[:2], c, cm, kernel, stride, (1, 1), pads, out_hw, zp, 2, -128, 127)
        out = np.zeros((out_hw[0] * out_hw[1], c * cm), np.int8)
        jit.depthwise_requant(x, w, bias, mult, shift, g, out)
        want = _depthwise_expected(x, w, kernel, stride, (1, 1), pads, out_hw, zp, bias, mult, shift, 2, -128, 127)
        assert np.array_equal(out, want)


def test_depthwise_rejects_bad_geometry():
    x, w, p = np.zeros((2, 2, 1), np.int8), np.zeros((1, 1, 1), np.int8), np.zeros(1, np.int32)
    out = np.zeros((4, 1), np.int8)
    g = jit.geometry((2, 2), 1, 1, (1, 1), (1, 1), (1, 1), (0, 0), (2, 2), 0, 0, -128, 127)
    jit.depthwise_requant(x, w, p, p, p, g, out)             # consistent: accepted
    with pytest.raises(ValueError, match="shapes"):
        jit.depthwise_requant(x, w, p, p, p, g, np.zeros((3, 1), np.int8))
    bad_zp = g.copy()
    bad_zp[jit.GEOMETRY.index("zp")] = 128
    with pytest.raises(ValueError, match="zero point"):
        jit.depthwise_requant(x, w, p, p, p, bad_zp, out)
    big = jit.geometry((2, 2), 1, 1, (257, 257), (1, 1), (1, 1), (0, 0), (2, 2), 0, 0, -128, 127)
    with pytest.raises(ValueError, match="int32 accumulators"):     # 257^2 * 255 * 128 >= 2^31
        jit.depthwise_requant(x, np.zeros((257, 257, 1), np.int8), p, p, p, big, out)


def test_bind_runs_the_kernel_on_its_arguments():
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, (5, 3)).astype(np.int32)
    bias, mult, shift = np.full(3, 7, np.int32), np.full(3, 1 << 30, np.int32), np.full(3, -9, np.int32)
    out = np.zeros((5, 3), np.int8)
    run = jit.bind(jit.requantize, acc, bias, mult, shift, -4, -128, 127, out)
    run()
    assert np.array_equal(out, intmath.requantize(acc, bias, mult, shift, -4, -128, 127))
    acc += 1000         # the bound views are read on every call
    run()
    assert np.array_equal(out, intmath.requantize(acc, bias, mult, shift, -4, -128, 127))


QUANTIZE_EDGES = np.array([0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, 0.49999997, -0.49999997, 126.5, 127.5, -128.5,
                           -129.5, 1e9, -1e9, 2.0 ** 31, -(2.0 ** 31), 3e38, -3e38, np.inf, -np.inf, np.nan,
                           1e-45, 0.1, 0.2, 0.3], np.float32)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint8])
@pytest.mark.parametrize("scale, zp", [(1.0, 0), (0.1, -128), (0.0235, 127), (3e-8, 5), (7.0, -3), (1.0, 255)])
def test_quantize_equals_the_reference_kernel(dtype, scale, zp):
    """Ties at .5 (half away from zero), quotients beyond int32 (and inf, NaN: INT32_MIN, then
    the zero point added with int32 wrap), float32 division, every output type's saturation."""
    rng = np.random.default_rng(zp & 0xFF)
    with np.errstate(all="ignore"):         # 3e38 x 7 overflows to inf: one more edge
        x = np.concatenate([QUANTIZE_EDGES * np.float32(scale), QUANTIZE_EDGES,
                            rng.standard_normal(500).astype(np.float32) * 200 * scale])
        want = kv.quantize(x.reshape(2, -1, 2), scale, zp, dtype)
        got = jit.quantize(x.reshape(2, -1, 2), scale, zp, dtype)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)


def test_quantize_refuses_a_bad_scale():
    with pytest.raises(InputError, match="scale"):
        jit.quantize(np.zeros(3, np.float32), 0.0, 0)
