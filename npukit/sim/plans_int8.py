"""The dense conv tile on the exact int8 GEMM (gemm_int8): what plans.DenseConv computes.

One MatMulInteger per instruction, over the whole depth: A is the tile's im2col as uint8 codes
offset by 128 (tiles.PaddedCodes; a 1x1 stride-1 tile is its own A), B the weight block as
an int8 [depth, k] matrix from the machine's WeightCache (looked up again only when the bytes
in WBUF change), a_zp = zp + 128. The product lands in the accumulators directly, or in a
scratch buffer that is then added (int32, wrapping) when the instruction accumulates.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .gemm_int8 import MAX_DEPTH, Int8Gemm
from .plans import WeightCache
from .tiles import PaddedCodes, Scratch, spans


@dataclass(frozen=True, eq=False)
class Parts:
    """A bound conv tile in order: the offset copy (src, dst: dst = src ^ 0x80), the im2col copy
    (dst, src) or None, the product, and ("add" | "copy", product, accumulators) or None when
    the product lands in the accumulators directly."""
    load: tuple[np.ndarray, np.ndarray]
    im2col: tuple[np.ndarray, np.ndarray] | None
    product: Callable[[], None]
    post: tuple[str, np.ndarray, np.ndarray] | None

    def numpy_steps(self) -> tuple[Callable[[], None], Callable[[], None] | None, Callable[[], None],
                                   Callable[[], None] | None]:
        """The four parts as numpy closures (None for an absent im2col or post step)."""
        (src, dst), bit = self.load, np.uint8(0x80)
        im2col: Callable[[], None] | None = None
        post: Callable[[], None] | None = None
        if self.im2col is not None:
            to, frm = self.im2col
            im2col = lambda: np.copyto(to, frm)     # noqa: E731
        if self.post is not None:
            how, y, out = self.post
            post = ((lambda: np.add(out, y, out=out)) if how == "add"      # int32: wraps like the accumulators
                    else (lambda: np.copyto(out, y)))
        return (lambda: np.bitwise_xor(src, bit, out=dst)), im2col, self.product, post


class DenseConvInt8:
    """Accumulators of one dense (groups = 1) conv tile into int32 out[oh*ow, k], as
    plans.DenseConv gives them, by one exact int8 product."""

    def __init__(self, in_hw, c, k, kernel, stride, dilation, in_dil, pads_tl, out_hw, zp: int,
                 scratch: Scratch, gemm: Int8Gemm):
        (oh, ow), (kh, kw) = out_hw, kernel
        depth = kh * kw * c
        if depth > MAX_DEPTH or not -128 <= zp <= 127:
            raise ValueError(f"int8 GEMM: depth {depth} or zero point {zp} out of its exact range")
        self.pad = PaddedCodes(in_hw, c, spans(out_hw, kernel, stride, dilation), pads_tl, in_dil, zp, scratch)
        xp = self.pad.buf
        if (kh, kw) == (1, 1) and tuple(stride) == (1, 1):
            self.a, self.im2col = xp.reshape(oh * ow, c), None      # the span is the output
        else:
            s = xp.strides
            patches = as_strided(xp, (oh, ow, kh, kw, c), (s[0] * stride[0], s[1] * stride[1],
                                                           s[0] * dilation[0], s[1] * dilation[1], s[2]))
            self.a = scratch.get("qcols", (oh * ow, depth), np.uint8)
            self.im2col = (self.a.reshape(oh, ow, kh, kw, c), patches)
        self.a_zp = np.array(zp + 128, np.uint8)
        self.b0 = scratch.get("qb0", (depth, k), np.int8, 0)
        self.y = scratch.get("qacc", (oh * ow, k), np.int32)
        self.weights = scratch.remember("weights", WeightCache)
        self.gemm, self.out_hw, self.k = gemm, out_hw, k

    def __call__(self, x: np.ndarray, w: np.ndarray, out: np.ndarray, accumulate: bool) -> None:
        self.bind(x, w, out, accumulate)()

    def parts(self, x: np.ndarray, w: np.ndarray, out: np.ndarray, accumulate: bool,
              b: np.ndarray | None = None) -> Parts:
        """The kernel on fixed views as its four steps: x int8 [1, ih, iw, c] (any strides), w int8
        [k, kh, kw, c], out int32 [oh*ow, k]. `b`: the weights as the int8 [depth, k] matrix when
        they are known not to change (then the product is bound to it once), else the product
        looks them up whenever the bytes in `w` differ from those it last used."""
        direct = not accumulate and out.flags.c_contiguous and out.flags.aligned
        y = out if direct else self.y
        product = self.gemm.bind(self.a, self.b0 if b is None else b, self.a_zp, y)
        post = ("add" if accumulate else "copy", y, out) if not direct else None
        if b is not None:
            return Parts(self.pad.operands(x[0]), self.im2col, product, post)
        cache, seen = self.weights, [b""]      # the weight bytes the product is bound to

        def checked() -> None:
            data = w.tobytes()
            if data != seen[0]:         # an exact compare: the cache never answers for other bytes
                wm, _, seen[0] = cache.get(data, w, np.int8)
                product.rebind_b(wm)
            product()
        return Parts(self.pad.operands(x[0]), self.im2col, checked, post)

    def bind(self, x: np.ndarray, w: np.ndarray, out: np.ndarray, accumulate: bool, b: np.ndarray | None = None):
        """The four parts as one closure, in numpy."""
        steps = [s for s in self.parts(x, w, out, accumulate, b).numpy_steps() if s is not None]

        def run() -> None:
            for step in steps:
                step()
        return run
