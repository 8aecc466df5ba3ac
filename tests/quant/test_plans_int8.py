"""The dense conv tile on the exact int8 GEMM (plans_int8, gemm_int8) against the general
kernel (kernels_mxu.conv2d_acc), and the exactness probe that decides whether the simulator
uses that GEMM at all."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npukit.sim import gemm_int8, plans, plans_int8

from test_plans import _expected, check_dense_plan, codes, geometries

GEMM = gemm_int8.backend(1)
needs_gemm = pytest.mark.skipif(GEMM is None, reason="this CPU's int8 products are not exact (probe failed)")


@needs_gemm
@settings(max_examples=80, deadline=None)
@given(g=geometries(), c=st.sampled_from([1, 3, 8, 130, 700]), k=st.integers(1, 9), zp=st.integers(-128, 127),
       kind=codes, accumulate=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_int8_dense_conv_equals_conv2d_acc(g, c, k, zp, kind, accumulate, seed):
    """Every geometry the float32 plan is tested on (strides, dilations, input dilation, crops,
    depths up to 11200 in one product), extreme codes, accumulating into int32-edge values."""
    check_dense_plan(plans_int8.DenseConvInt8(g["in_hw"], c, k, g["kernel"], g["stride"], g["dilation"], g["in_dil"],
                                              g["pads_tl"], g["out_hw"], zp, plans.Scratch(), GEMM),
                     g, c, k, zp, kind, accumulate, seed)


@needs_gemm
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (4, 3, 3, 5), (1, 1, 1, 7), (6, 1, 1, 1)])
def test_int8_weights_rewritten_in_place_are_never_stale(shape):
    """A bound kernel sees new weight bytes written to the same WBUF block, including blocks
    whose [depth, k] matrix needs no transposition (k = 1 or depth = 1), where a lazy
    conversion would have kept a view of WBUF instead of a copy."""
    rng = np.random.default_rng(1)
    k, kh, kw, c = shape
    x = rng.integers(-128, 128, (1, 4, 4, c)).astype(np.int8)
    wbuf = rng.integers(-128, 128, shape).astype(np.int8)
    out = np.zeros((16, k), np.int32)
    scratch = plans.Scratch()
    run = plans_int8.DenseConvInt8((4, 4), c, k, (kh, kw), (1, 1), (1, 1), (1, 1), (kh // 2, kw // 2), (4, 4), 5,
                                   scratch, GEMM).bind(x, wbuf, out, False)
    other = plans_int8.DenseConvInt8((4, 4), c, k, (kh, kw), (1, 1), (1, 1), (1, 1), (kh // 2, kw // 2), (4, 4), 5,
                                     scratch, GEMM).bind(x, wbuf, np.zeros_like(out), False)
    for _ in range(3):
        run()
        assert np.array_equal(out, _expected(x, wbuf, (kh, kw), (1, 1), (1, 1), (1, 1), (kh // 2, kw // 2), (4, 4), 5))
        other()                                          # another instruction on the same block
        wbuf[...] = rng.integers(-128, 128, shape)        # a DMA rewrites the block


@needs_gemm
def test_int8_weight_copies_do_not_alias_wbuf():
    """Two instructions whose blocks once held the same bytes: the first block is rewritten
    after its lookup, and the second must still get the bytes it holds (the cache entry is
    a copy, not a view of the first block, even when no transposition is needed)."""
    x = np.arange(-8, 8, dtype=np.int8).reshape(1, 4, 4, 1)
    first, second = np.full((1, 1, 1, 1), 7, np.int8), np.full((1, 1, 1, 1), 7, np.int8)
    scratch = plans.Scratch()
    outs = [np.zeros((16, 1), np.int32) for _ in range(2)]
    runs = [plans_int8.DenseConvInt8((4, 4), 1, 1, (1, 1), (1, 1), (1, 1), (1, 1), (0, 0), (4, 4), 0, scratch,
                                     GEMM).bind(x, w, out, False) for w, out in zip((first, second), outs)]
    runs[0]()
    first[...] = -3
    runs[1]()
    assert np.array_equal(outs[1].ravel(), x.ravel().astype(np.int32) * 7)


class _SaturatingGemm:
    """A product that sums int8 pairs in saturating 16 bits first, as VPMADDUBSW does."""

    def bind(self, a, b, a_zp, out):
        def run():
            prod = a[:, :, None].astype(np.int64) * b[None].astype(np.int64)        # [m, k, n]
            if prod.shape[1] % 2:
                prod = np.concatenate([prod, np.zeros_like(prod[:, :1])], axis=1)
            pairs = np.clip(prod[:, 0::2] + prod[:, 1::2], -32768, 32767).sum(axis=1)
            out[...] = pairs - int(a_zp) * b.astype(np.int64).sum(axis=0)
        return run


def test_probe_rejects_a_product_that_saturates():
    assert gemm_int8._exact(_SaturatingGemm()) is False


@needs_gemm
def test_probe_accepts_the_backend_it_returned():
    assert gemm_int8._exact(GEMM) is True


def test_depth_beyond_int32_exactness_is_refused():
    with pytest.raises(ValueError, match="exact range"):
        plans_int8.DenseConvInt8((1, 1), gemm_int8.MAX_DEPTH + 1, 1, (1, 1), (1, 1), (1, 1), (1, 1), (0, 0), (1, 1),
                                 0, plans.Scratch(), GEMM)
