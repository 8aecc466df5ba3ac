"""Shared pieces of the prepared kernels (npukit.sim.plans): the machine's reusable
buffers, tile geometry, and the padded float32 copy of an int8 tile."""
from __future__ import annotations

import numpy as np


class Scratch:
    """Reusable buffers keyed by (tag, shape, dtype, fill); shared by all prepared kernels of
    one machine, which run one at a time. A `fill` buffer keeps its filled cells: only the
    kernels sharing its tag (hence the same interior placement) write to it, at the same cells."""

    def __init__(self):
        self._bufs: dict[tuple, np.ndarray] = {}

    def remember(self, key, build):
        """build() once per key (tables that depend only on an instruction's immediates)."""
        if key not in self._bufs:
            self._bufs[key] = build()
        return self._bufs[key]

    def get(self, tag, shape, dtype=np.float32, fill=None) -> np.ndarray:
        key = (tag, tuple(shape), np.dtype(dtype).str, fill)
        buf = self._bufs.get(key)
        if buf is None:
            buf = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
            self._bufs[key] = buf
        return buf


def reshaped(a: np.ndarray, shape) -> np.ndarray:
    """`a` reshaped as a view: a bound kernel must keep aliasing the machine's memory."""
    r = a.reshape(shape)
    if a.size and not np.may_share_memory(r, a):
        raise ValueError(f"a {a.shape} array with strides {a.strides} cannot be viewed as {tuple(shape)}")
    return r


def placement(n: int, dil: int, pad: int, span: int) -> tuple[slice, slice]:
    """Input positions i (padded position pad + i*dil) that land in [0, span): (source, dest) slices."""
    i0 = 0 if pad >= 0 else (-pad + dil - 1) // dil
    i1 = min(n, (span - 1 - pad) // dil + 1) if span - 1 - pad >= 0 else 0
    if i1 <= i0:
        return slice(0, 0), slice(0, 0)
    d0 = pad + i0 * dil
    return slice(i0, i1), slice(d0, d0 + (i1 - i0 - 1) * dil + 1, dil)


def padded_buffer(tag, in_hw, c, span, pads_tl, in_dil, dtype, fill, scratch: Scratch):
    """(buffer [span_h, span_w, c] filled with `fill`, the tile's source slices, the view of
    the buffer its cells land in): shared by the kernels of one placement, tag and fill."""
    (ih, iw), (sh, sw), (pt, pl), (dy, dx) = in_hw, span, pads_tl, in_dil
    rs, rd = placement(ih, dy, pt, sh)
    cs, cd = placement(iw, dx, pl, sw)
    buf = scratch.get((tag, ih, iw, pt, pl, dy, dx), (sh, sw, c), dtype, fill)
    return buf, (rs, cs), buf[rd, cd]


class Padded:
    """The padded, input-dilated float32 copy of an int8 NHWC tile (batch 1): x - zp with
    zeros inserted (`shifted`), or the raw codes with zp inserted."""

    def __init__(self, in_hw, c, span, pads_tl, in_dil, zp: int, shifted: bool, scratch: Scratch):
        self.buf, self.src, self.dst = padded_buffer("xp", in_hw, c, span, pads_tl, in_dil, np.float32,
                                                     0.0 if shifted else float(zp), scratch)
        self.zp = np.float32(zp if shifted else 0)

    def load(self, x: np.ndarray) -> np.ndarray:
        self.loader(x)()
        return self.buf

    def loader(self, x: np.ndarray):
        """The copy of a fixed int8 view [ih, iw, c] into the buffer, as a closure."""
        src, zp, dst = x[self.src], self.zp, self.dst
        if not zp:      # a casting copy: 3x faster than a mixed-type subtract
            return lambda: np.copyto(dst, src, casting="unsafe")

        def load() -> None:
            np.copyto(dst, src, casting="unsafe")
            np.subtract(dst, zp, out=dst)       # exact in float32
        return load


class PaddedCodes:
    """The padded, input-dilated copy of an int8 NHWC tile (batch 1) as uint8 codes offset by
    128 (x ^ 0x80), padding and inserted cells holding zp + 128: the int8 GEMM's A operand,
    whose zero point zp + 128 then makes every padded cell contribute 0."""

    def __init__(self, in_hw, c, span, pads_tl, in_dil, zp: int, scratch: Scratch):
        self.buf, self.src, self.dst = padded_buffer("xq", in_hw, c, span, pads_tl, in_dil, np.uint8, zp + 128,
                                                     scratch)

    def operands(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source, destination) of the offset copy of a fixed int8 view [ih, iw, c]: the
        destination's bytes are the source's xor 0x80."""
        return x[self.src].view(np.uint8), self.dst


def spans(out_hw, kernel, stride, dilation) -> tuple[int, int]:
    return tuple((o - 1) * s + (k - 1) * d + 1 for o, k, s, d in zip(out_hw, kernel, stride, dilation))
