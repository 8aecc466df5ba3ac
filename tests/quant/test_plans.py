"""The prepared kernels (npukit.sim.plans) the simulator runs against the general kernels
they stand in for: kernels_mxu.conv2d_acc and kernels_vpu.max_pool, bit for bit, over geometries (strides, dilations, input dilation, crops,
depths beyond one float32 chunk) and extreme codes (all -128, zero points -128..127,
int32-edge accumulators)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

from npukit.ir.graph import ConvAttrs, PoolAttrs
from npukit.kernels import intmath, kernels_mxu, kernels_vpu
from npukit.sim import plans
from npukit.sim.plain import tile_pads as _tile_pads

SETTINGS = settings(max_examples=60, deadline=None)
codes = st.sampled_from(["random", "min", "max", "mixed_extremes"])


def _codes(rng, kind: str, shape) -> np.ndarray:
    if kind == "min":
        return np.full(shape, -128, np.int8)
    if kind == "max":
        return np.full(shape, 127, np.int8)
    if kind == "mixed_extremes":
        return rng.choice(np.array([-128, 127], np.int8), size=shape)
    return rng.integers(-128, 128, shape).astype(np.int8)


def _expected(x, w, kernel, stride, dilation, in_dil, pads_tl, out_hw, zp, depthwise=False, c=None):
    """What the Conv / DwConv instruction computes with the general kernel."""
    (ih, iw), (kh, kw) = x.shape[1:3], kernel
    pt, pb = _tile_pads(ih, in_dil[0], pads_tl[0], out_hw[0], stride[0], kh, dilation[0])
    pl, pr = _tile_pads(iw, in_dil[1], pads_tl[1], out_hw[1], stride[1], kw, dilation[1])
    attrs = ConvAttrs(stride=stride, dilation=dilation, pads=(pt, pl, pb, pr), input_dilation=in_dil,
                      groups=c if depthwise else 1, depthwise=depthwise)
    acc = kernels_mxu.conv2d_acc(x, w, attrs, zp)[0, :out_hw[0], :out_hw[1]]
    return intmath.wrap_int32(acc.reshape(-1, acc.shape[-1]))


@st.composite
def geometries(draw, depthwise=False):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    in_dil = (1, 1) if depthwise else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    ih, iw = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    pads = (draw(st.integers(-1, kh)), draw(st.integers(-1, kw)))     # negative: a cropped tile
    out_hw = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    return dict(in_hw=(ih, iw), kernel=(kh, kw), stride=stride, dilation=dilation, in_dil=in_dil,
                pads_tl=pads, out_hw=out_hw)


@SETTINGS
@given(g=geometries(), c=st.sampled_from([1, 3, 8, 130, 700]), k=st.integers(1, 9), zp=st.integers(-128, 127),
       kind=codes, accumulate=st.booleans(), im2col=st.sampled_from([None, True, False]),
       seed=st.integers(0, 2 ** 16))
def test_dense_conv_plan_equals_conv2d_acc(g, c, k, zp, kind, accumulate, im2col, seed):
    """Channel counts up to 700 with 4x4 kernels give depths far beyond FLOAT32_DEPTH; both
    the per-tap and the im2col formulation."""
    plan = plans.DenseConv(g["in_hw"], c, k, g["kernel"], g["stride"], g["dilation"], g["in_dil"], g["pads_tl"],
                           g["out_hw"], zp, plans.Scratch(), im2col)
    check_dense_plan(plan, g, c, k, zp, kind, accumulate, seed)


def check_dense_plan(plan, g, c, k, zp, kind, accumulate, seed) -> None:
    """A dense conv plan against the general kernel on random codes of `kind`, accumulating
    into int32-edge values or not; then a second call on other codes (reused buffers)."""
    rng = np.random.default_rng(seed)
    x = _codes(rng, kind, (1, *g["in_hw"], c))
    w = _codes(rng, kind, (k, *g["kernel"], c))
    want = _expected(x, w, g["kernel"], g["stride"], g["dilation"], g["in_dil"], g["pads_tl"], g["out_hw"], zp)
    start = rng.integers(-(1 << 31), 1 << 31, want.shape).astype(np.int32)
    out = start.copy()
    plan(x, w, out, accumulate)
    if accumulate:
        want = intmath.wrap_int32(want + start)
    assert np.array_equal(out, want)
    plan(x[..., ::-1], w, out, False)      # a second call reuses the buffers: same answer as fresh
    assert np.array_equal(out, _expected(x[..., ::-1], w, g["kernel"], g["stride"], g["dilation"], g["in_dil"],
                                         g["pads_tl"], g["out_hw"], zp))


def test_plans_sharing_one_scratch_do_not_disturb_each_other():
    """Two geometries that share the padded buffer's shape but not its placement or zero point."""
    rng = np.random.default_rng(0)
    scratch = plans.Scratch()
    x = rng.integers(-128, 128, (1, 4, 4, 3)).astype(np.int8)
    w = rng.integers(-128, 128, (2, 3, 3, 3)).astype(np.int8)
    a = plans.DenseConv((4, 4), 3, 2, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), (4, 4), -7, scratch)
    b = plans.DenseConv((4, 4), 3, 2, (3, 3), (1, 1), (1, 1), (1, 1), (2, 0), (4, 4), 9, scratch)
    for plan, pads, zp in ((a, (1, 1), -7), (b, (2, 0), 9), (a, (1, 1), -7)):
        out = np.empty((16, 2), np.int32)
        plan(x, w, out, False)
        assert np.array_equal(out, _expected(x, w, (3, 3), (1, 1), (1, 1), (1, 1), pads, (4, 4), zp))


@pytest.mark.parametrize("im2col", [True, False])
def test_dense_conv_depth_beyond_float32_exactness(im2col):
    """All codes 127 over 3x3x700: the one-chunk float32 sum (1.0e8) would not be exact."""
    x = np.full((1, 3, 3, 700), 127, np.int8)
    w = np.full((2, 3, 3, 700), 127, np.int8)
    plan = plans.DenseConv((3, 3), 700, 2, (3, 3), (1, 1), (1, 1), (1, 1), (0, 0), (1, 1), -128, plans.Scratch(),
                           im2col)
    out = np.empty((1, 2), np.int32)
    plan(x, w, out, False)
    assert out.tolist() == [[6300 * (127 + 128) * 127] * 2]


@SETTINGS
@given(ih=st.integers(1, 9), iw=st.integers(1, 9), c=st.integers(1, 5), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), pads=st.lists(st.integers(0, 3), min_size=4, max_size=4),
       crop=st.tuples(st.integers(0, 2), st.integers(0, 2)), act=st.tuples(st.integers(-128, 0), st.integers(0, 127)),
       kind=codes, seed=st.integers(0, 2 ** 16))
def test_max_pool_plan_equals_max_pool(ih, iw, c, kh, kw, sh, sw, pads, crop, act, kind, seed):
    """The tile's outputs (possibly fewer rows and columns than the kernel gives) of
    kernels_vpu.max_pool, windows past the edges and wholly in the padding included."""
    t, l, b, r = pads
    oh, ow = (ih + t + b - kh) // sh + 1, (iw + l + r - kw) // sw + 1
    assume(oh - crop[0] >= 1 and ow - crop[1] >= 1)
    x = _codes(np.random.default_rng(seed), kind, (1, ih, iw, c))
    want = kernels_vpu.max_pool(x, PoolAttrs(kernel=(kh, kw), stride=(sh, sw), pads=(t, l, b, r)), *act)
    out_hw = (oh - crop[0], ow - crop[1])
    out = np.zeros((1, *out_hw, c), np.int8)
    plans.MaxPool((ih, iw), c, (kh, kw), (sh, sw), (t, l), out_hw, plans.Scratch()).bind(x, out, *act)()
    assert np.array_equal(out, want[:, :out_hw[0], :out_hw[1]])


def test_dense_conv_weights_rewritten_in_place_are_never_stale():
    """One bound kernel over one weight buffer, rewritten between calls (a new weight tile DMA'd
    into the same WBUF bytes): every call uses the bytes there now, including a return to
    earlier weights and a change in a single byte."""
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (1, 5, 6, 40)).astype(np.int8)
    wbuf = np.empty((4, 3, 3, 40), np.int8)
    out = np.empty((30, 4), np.int32)
    scratch = plans.Scratch()
    run = plans.DenseConv((5, 6), 40, 4, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), (5, 6), 17, scratch).bind(
        x, wbuf, out, False)
    first = rng.integers(-128, 128, wbuf.shape).astype(np.int8)
    second = first.copy()
    second[3, 2, 1, 39] ^= 1
    for w in (first, second, -first.clip(-127), first, second):
        wbuf[...] = w
        run()
        assert np.array_equal(out, _expected(x, w, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), (5, 6), 17))


def test_weight_cache_starts_over_at_its_limit_and_stays_exact(monkeypatch):
    """A cache too small for two weight blocks: each lookup of the other block converts again."""
    monkeypatch.setattr(plans.WeightCache, "LIMIT", 3 * 3 * 8 * 5 * 4)
    rng = np.random.default_rng(2)
    x = rng.integers(-128, 128, (1, 4, 4, 8)).astype(np.int8)
    scratch = plans.Scratch()
    blocks = [rng.integers(-128, 128, (5, 3, 3, 8)).astype(np.int8) for _ in range(2)]
    plan = plans.DenseConv((4, 4), 8, 5, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), (4, 4), -3, scratch)
    for w in blocks * 3:
        out = np.empty((16, 5), np.int32)
        plan(x, w, out, False)
        assert np.array_equal(out, _expected(x, w, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1), (4, 4), -3))
    assert len(scratch.remember("weights", plans.WeightCache)._entries) == 1
