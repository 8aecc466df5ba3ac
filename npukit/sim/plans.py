"""Prepared integer kernels: one fixed geometry, built once, called many times.

The functional simulator prepares one per instruction when it decodes a program and calls it
on every run. Each computes exactly what the general kernel computes (kernels_mxu.conv2d_acc,
kernels_vpu.max_pool, the element-wise kernels), in fewer passes, over buffers allocated once
(fresh allocations cost page faults on every call). DenseConv is the float32 formulation, run
where this CPU has no exact int8 GEMM (plans_int8); requantisation and depthwise tiles are
compiled kernels (jit).

Exactness of the float32 convolutions: every partial sum must be an integer of magnitude
below 2^24, exact in float32 whatever order BLAS sums in. Two ways:
- shifted: (x - zp) * w, |.| <= 255 * 128, in sums of at most SHIFTED_DEPTH products;
  padding and input dilation insert 0;
- raw codes: x * w, |.| <= 2^14, in sums of at most FLOAT32_DEPTH products; padding and
  input dilation insert the code zp, and zp * sum(w) is subtracted afterwards in int32.
Deep convolutions use raw codes (half the chunks), the others the shifted values (no
zero-point term). int32 accumulators use numpy's wrapping arithmetic: wrap_int32 of the sum.

Dense conv weights are converted to float32 once per distinct block (WeightCache, keyed by
the int8 bytes): each call compares the block's bytes in WBUF with those it last used (one
memcmp) and looks them up again only when they differ, so a new weight tile in the same
bytes is never served stale.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .tiles import Padded, Scratch, placement, reshaped, spans

FLOAT32_DEPTH = 1023     # 1023 * 2^14 < 2^24
SHIFTED_DEPTH = 512      # 512 * 255 * 128 < 2^24


class PairTable:
    """An element-wise int8 kernel f(a, b) with fixed parameters as a 65536-entry table over
    every pair of codes, built by f itself: f's result, exactly, by one gather."""

    CODES = np.arange(256, dtype=np.uint8).view(np.int8)      # in uint8 index order

    def __init__(self, fn, shape, scratch: Scratch, key):
        a, b = np.meshgrid(self.CODES, self.CODES, indexing="ij")
        self.table = scratch.remember(("pair", key), lambda: np.ascontiguousarray(fn(a, b), np.int8).reshape(-1))
        self.idx = scratch.get("pair_idx", shape, np.uint16)

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        idx = self.idx
        np.copyto(idx, a.view(np.uint8))
        idx <<= 8
        idx |= b.view(np.uint8)
        np.take(self.table, idx, out=out, mode="clip")


class DenseConv:
    """Accumulators of one dense (groups = 1) conv tile into int32 out[oh*ow, k]: what
    wrap_int32(conv2d_acc(x, w, attrs, zp)[0, :oh, :ow]) gives, optionally added to out.

    Stride 1: one GEMM per tap on rows of the padded tile read in place (outputs computed at
    the padded width, the extra columns dropped); else (or when `im2col`, see `prefer_im2col`)
    im2col into a reused buffer and one GEMM per FLOAT32_DEPTH chunk. The float32 weights come
    from the machine's WeightCache, looked up again only when the int8 bytes change."""

    def __init__(self, in_hw, c, k, kernel, stride, dilation, in_dil, pads_tl, out_hw, zp: int,
                 scratch: Scratch, im2col: bool | None = None):
        (oh, ow), (kh, kw) = out_hw, kernel
        span = spans(out_hw, kernel, stride, dilation)
        shifted = kh * kw * c <= SHIFTED_DEPTH
        self.pad = Padded(in_hw, c, span, pads_tl, in_dil, zp, shifted, scratch)
        self.out_hw, self.k, self.zp, self.depth = out_hw, k, 0 if shifted else zp, kh * kw * c
        self.weights = scratch.remember("weights", WeightCache)
        self.i32 = scratch.get("i32", (oh, ow, k), np.int32)
        if im2col is None:
            im2col = prefer_im2col(out_hw, kernel, c, k, span[1])
        self.tap_mode = tuple(stride) == (1, 1) and not im2col
        xp = self.pad.buf
        if self.tap_mode:       # piece: (rows of the padded tile, first and last weight row)
            rows = oh * span[1]
            n = (oh - 1) * span[1] + ow
            flat = xp.reshape(-1, c)
            self.facc = scratch.get("facc", (rows, k))[:n]
            self.tmp = scratch.get("ftmp", (rows, k))[:n]
            self.result = scratch.get("facc", (rows, k)).reshape(oh, span[1], k)[:, :ow]
            pieces = [(flat[(ky * dilation[0] * span[1] + kx * dilation[1]):][:n, c0:c0 + FLOAT32_DEPTH],
                       (ky * kw + kx) * c + c0) for ky in range(kh) for kx in range(kw) for c0 in range(0, c, FLOAT32_DEPTH)]
        else:
            s = xp.strides
            patches = as_strided(xp, (oh, ow, kh, kw, c), (s[0] * stride[0], s[1] * stride[1],
                                                           s[0] * dilation[0], s[1] * dilation[1], s[2]))
            cols = scratch.get("cols", (oh * ow, self.depth))
            self.im2col = (cols.reshape(oh, ow, kh, kw, c), patches)
            self.facc = scratch.get("facc", (oh * ow, k))
            self.tmp = scratch.get("ftmp", (oh * ow, k))
            self.result = self.facc.reshape(oh, ow, k)
            pieces = [(cols[:, d:d + FLOAT32_DEPTH], d) for d in range(0, self.depth, FLOAT32_DEPTH)]
        self.groups = _pack([(a, d, d + a.shape[1]) for a, d in pieces])

    def __call__(self, x: np.ndarray, w: np.ndarray, out: np.ndarray, accumulate: bool) -> None:
        self.bind(x, w, out, accumulate)()

    def bind(self, x: np.ndarray, w: np.ndarray, out: np.ndarray, accumulate: bool):
        """The kernel on fixed views: x int8 [1, ih, iw, c] (any strides), w int8 [k, kh, kw, c],
        out int32 [oh*ow, k]; returns the closure that runs it."""
        load, cache, zp, k = self.pad.loader(x[0]), self.weights, self.zp, self.k
        im2col = None if self.tap_mode else self.im2col
        out3 = reshaped(out, (self.out_hw[0], self.out_hw[1], k))
        facc, tmp, i32, result, groups = self.facc, self.tmp, self.i32, self.result, self.groups
        bound: list = [b"", None, None]       # the weight bytes last seen, their GEMM operands, the zp term

        def weights() -> tuple:
            data = w.tobytes()
            if data != bound[0]:        # an exact compare: the cache never answers for other bytes
                wm, wsum, data = cache.get(data, w)     # the cache's copy of the bytes: one per block
                bound[:] = data, [[(a, wm[d0:d1]) for a, d0, d1 in g] for g in groups], wsum * np.int32(zp)
            return bound[1], bound[2]

        def gemm(group) -> None:
            a0, b0 = group[0]
            np.matmul(a0, b0, out=facc)
            for a, b in group[1:]:
                np.matmul(a, b, out=tmp)
                np.add(facc, tmp, out=facc)

        def run() -> None:
            ops, zp_term = weights()
            load()
            if im2col is not None:
                np.copyto(*im2col)
            gemm(ops[0])
            if accumulate:
                np.copyto(i32, result, casting="unsafe")
                np.add(out3, i32, out=out3)
            else:
                np.copyto(out3, result, casting="unsafe")
            for group in ops[1:]:
                gemm(group)
                np.copyto(i32, result, casting="unsafe")
                np.add(out3, i32, out=out3)
            if zp:
                np.subtract(out, zp_term, out=out)      # int32: wraps like wrap_int32
        return run


def prefer_im2col(out_hw, kernel, c: int, k: int, span_w: int) -> bool:
    """Per-tap GEMMs cost (taps - 1) extra passes over [rows, k] and compute the padded
    width; im2col costs one copy of [oh*ow, depth], cheap while it stays in cache (a 392 x
    1152 float32 copy made ResNet-18's 14x28x128 3x3 tiles 2x slower than per-tap GEMMs,
    while its 7x7x256 tiles, 25% padded width, run 10% faster with a 450 KB im2col)."""
    (oh, ow), (kh, kw) = out_hw, kernel
    depth, rows = kh * kw * c, (oh - 1) * span_w + ow
    if oh * ow * depth < (kh * kw - 1) * oh * span_w * k:
        return True
    return rows * 5 > oh * ow * 6 and oh * ow * depth * 4 <= 512 << 10


class WeightCache:
    """float32 (or int8) copies of int8 weight blocks [k, ...] as [depth, k] matrices, with each
    output channel's int32 sum, keyed by the exact bytes of the block (and its shape). Whoever looks
    up compares the bytes itself first, so a block rewritten with other weights is converted
    again; the cache holds at most LIMIT bytes of copies (then starts over)."""

    LIMIT = 256 << 20

    def __init__(self):
        self._entries: dict[tuple, tuple[np.ndarray, np.ndarray, bytes]] = {}
        self._nbytes = 0

    def get(self, data: bytes, w: np.ndarray, dtype=np.float32) -> tuple[np.ndarray, np.ndarray, bytes]:
        """([depth, k] in `dtype`, int32 sums [k], the bytes) of the block w whose bytes are `data`."""
        key = (data, w.shape, np.dtype(dtype).str)
        got = self._entries.get(key)
        if got is None:
            k = w.shape[0]
            wm = np.array(w.reshape(k, -1).T, dtype, order="C")     # a copy: never a view of WBUF
            wsum = w.reshape(k, -1).sum(axis=1, dtype=np.int64).astype(np.int32)   # |sum| <= 128 * depth
            if self._nbytes + wm.nbytes > self.LIMIT:
                self._entries.clear()
                self._nbytes = 0
            got = self._entries[key] = (wm, wsum, data)
            self._nbytes += wm.nbytes
        return got


def _pack(pieces) -> list[list]:
    """Consecutive GEMM pieces (operand, first and last weight row) grouped so each group's
    total depth stays <= FLOAT32_DEPTH."""
    groups: list[list] = []
    depth = FLOAT32_DEPTH + 1
    for a, d0, d1 in pieces:
        if depth + d1 - d0 > FLOAT32_DEPTH:
            groups.append([])
            depth = 0
        groups[-1].append((a, d0, d1))
        depth += d1 - d0
    return groups


class MaxPool:
    """kernels_vpu.max_pool of one tile into out[1, oh, ow, c], cropped to the tile's outputs:
    the max over taps of a copy padded with the int8 minimum (the kernel's own fill, neutral
    for max), then the activation clamp."""

    def __init__(self, in_hw, c, kernel, stride, pads_tl, out_hw, scratch: Scratch):
        (oh, ow), (kh, kw), (sh, sw) = out_hw, kernel, stride
        span = spans(out_hw, kernel, stride, (1, 1))
        rs, rd = placement(in_hw[0], 1, pads_tl[0], span[0])
        cs, cd = placement(in_hw[1], 1, pads_tl[1], span[1])
        buf = scratch.get(("mp", *in_hw, *pads_tl), (*span, c), np.int8, -128)
        self.src, self.dst = (rs, cs), buf[rd, cd]
        self.taps = [buf[ky: ky + (oh - 1) * sh + 1: sh, kx: kx + (ow - 1) * sw + 1: sw] for ky in range(kh)
                     for kx in range(kw)]
        self.acc = scratch.get("mp_acc", (oh, ow, c), np.int8)

    def bind(self, x: np.ndarray, out: np.ndarray, act_min: int, act_max: int):
        """x int8 [1, ih, iw, c], out int8 [1, oh, ow, c]; returns the closure that runs it."""
        src, dst, acc, out3 = x[0][self.src], self.dst, self.acc, out[0]
        first, taps = self.taps[0], self.taps[1:]
        lo, hi = np.array(max(act_min, -128), np.int8), np.array(min(act_max, 127), np.int8)

        def run() -> None:
            np.copyto(dst, src)
            np.copyto(acc, first)
            for tap in taps:
                np.maximum(acc, tap, out=acc)
            np.clip(acc, lo, hi, out=out3)
        return run
