"""Prepared integer kernels: one fixed geometry, built once, called many times.

The functional simulator prepares one per instruction when it decodes a program and calls it
on every run. Each computes exactly what the general kernels compute (kernels_mxu.conv2d_acc,
intmath.requantize), in fewer passes, over buffers allocated once (fresh allocations cost
page faults on every call).

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

from . import intmath
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
        bound = [b"", None, None]       # the weight bytes last seen, their GEMM operands, the zp term

        def weights() -> tuple:
            data = w.tobytes()
            if data != bound[0]:        # an exact compare: the cache never answers for other bytes
                wm, wsum, data = cache.get(data, w)     # the cache's copy of the bytes: one per block
                bound[:] = data, [[(a, wm[d0:d1]) for a, d0, d1 in g] for g in groups], wsum * np.int32(zp)
            return bound[1], bound[2]

        def gemm(group) -> None:
            np.matmul(*group[0], out=facc)
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


class _ZeroPointTerm:
    """zp * (sum of each output channel's weights), as int32, from the float32 weights [depth, k]:
    the sum is exact in float32 (|sum| <= 128 depth < 2^24) and the product in int32."""

    def __init__(self, zp: int, depth: int, k: int, scratch: Scratch):
        if depth * 128 >= 1 << 24 or abs(zp) > 128:
            raise ValueError(f"zero-point term of depth {depth}, zp {zp} is not exact in float32")
        self.zp = np.int32(zp)
        self.ones = scratch.get("ones", (depth,), np.float32, 1.0)
        self.fsum = scratch.get("zp_fsum", (k,))
        self.isum = scratch.get("zp_isum", (k,), np.int32)

    def of(self, wf: np.ndarray) -> np.ndarray:
        np.matmul(self.ones, wf, out=self.fsum)
        np.copyto(self.isum, self.fsum, casting="unsafe")
        self.isum *= self.zp
        return self.isum


def _pack(pieces) -> list[list]:
    """Consecutive GEMM pieces (operand, first and last weight row) grouped so each group's
    total depth stays <= FLOAT32_DEPTH."""
    groups, depth = [], FLOAT32_DEPTH + 1
    for a, d0, d1 in pieces:
        if depth + d1 - d0 > FLOAT32_DEPTH:
            groups.append([])
            depth = 0
        groups[-1].append((a, d0, d1))
        depth += d1 - d0
    return groups


class DepthwiseConv:
    """Depthwise conv tile accumulators into int32 out[oh*ow, c*mult]: wrap_int32 of
    conv2d_acc(x, w, depthwise attrs, zp)[0, :oh, :ow]. Either one float32 multiply-add per
    tap, or (`einsum`, by default from EINSUM_CHANNELS channels up, where it is about twice as
    fast) one einsum over a strided view of all taps; stride 1 works on whole rows of the
    padded tile, the extra columns dropped, as DenseConv. Every partial sum is an integer
    below 2^24, so both are exact in any order."""

    EINSUM_CHANNELS = 64

    def __init__(self, in_hw, c, mult, kernel, stride, dilation, pads_tl, out_hw, zp: int,
                 scratch: Scratch, einsum: bool | None = None):
        (oh, ow), (kh, kw), (dh, dw) = out_hw, kernel, dilation
        span = spans(out_hw, kernel, stride, dilation)
        shifted = kh * kw <= SHIFTED_DEPTH
        self.pad = Padded(in_hw, c, span, pads_tl, (1, 1), zp, shifted, scratch)
        self.zp, self.shape = 0 if shifted else zp, (kh, kw, c, mult)
        self.wf = scratch.get("dwf", (kh, kw, c, mult))
        self.einsum = c * mult >= self.EINSUM_CHANNELS if einsum is None else einsum
        xp = self.pad.buf
        s = xp.strides
        if tuple(stride) == (1, 1):
            rows, n = oh * span[1], (oh - 1) * span[1] + ow
            self.acc = scratch.get("dacc", (rows, c, mult))[:n]
            self.tmp = scratch.get("dtmp", (rows, c, mult))[:n]
            self.result = scratch.get("dacc", (rows, c, mult)).reshape(oh, span[1], c, mult)[:, :ow]
            flat = xp.reshape(-1, c, 1)
            taps = [flat[ky * dh * span[1] + kx * dw:][:n] for ky in range(kh) for kx in range(kw)]
            self.view = ("nyxc,yxcm->ncm", as_strided(xp, (n, kh, kw, c), (s[1], dh * s[0], dw * s[1], s[2])))
        else:
            self.acc = self.result = scratch.get("dacc", (oh, ow, c, mult))
            self.tmp = scratch.get("dtmp", (oh, ow, c, mult))
            sh, sw = stride
            taps = [xp[ky * dh: ky * dh + (oh - 1) * sh + 1: sh, kx * dw: kx * dw + (ow - 1) * sw + 1: sw, :, None]
                    for ky in range(kh) for kx in range(kw)]
            self.view = ("hwyxc,yxcm->hwcm", as_strided(xp, (oh, ow, kh, kw, c),
                                                         (sh * s[0], sw * s[1], dh * s[0], dw * s[1], s[2])))
        self.taps = list(zip(taps, (self.wf[ky, kx] for ky in range(kh) for kx in range(kw))))
        self.zp_term = _ZeroPointTerm(self.zp, kh * kw, c * mult, scratch)

    def __call__(self, x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
        self.bind(x, w, out)()

    def bind(self, x: np.ndarray, w: np.ndarray, out: np.ndarray):
        """The kernel on fixed views: x int8 [1, ih, iw, c], w int8 [1, kh, kw, c*mult],
        out int32 [oh*ow, c*mult]; returns the closure that runs it."""
        load, wv, wf = self.pad.loader(x[0]), reshaped(w, self.shape), self.wf
        acc, tmp, result, (tap0, w0), taps = self.acc, self.tmp, self.result, self.taps[0], self.taps[1:]
        out4 = reshaped(out, result.shape)
        zp_term = (self.zp_term, wf.reshape(-1, self.shape[2] * self.shape[3])) if self.zp else None
        spec, view = self.view

        def per_tap() -> None:
            np.multiply(tap0, w0, out=acc)
            for tap, wt in taps:
                np.multiply(tap, wt, out=tmp)
                np.add(acc, tmp, out=acc)

        def all_taps() -> None:
            np.einsum(spec, view, wf, out=acc)

        conv = all_taps if self.einsum else per_tap

        def run() -> None:
            load()
            np.copyto(wf, wv, casting="unsafe")
            conv()
            np.copyto(out4, result, casting="unsafe")
            if zp_term is not None:
                np.subtract(out, zp_term[0].of(zp_term[1]), out=out)
        return run


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


class Requantize:
    """intmath.requantize of int32 accumulators [n, k] into an int8 view, in preallocated
    buffers, with the per-channel constants remembered per (bias, multiplier, shift) content
    (the parameter bytes are the key: equal bytes, equal constants).

    The formula is intmath.multiply_by_quantized_multiplier_fused's. With M >= 0, a*M < 0 only
    where a < 0 (a*M = 0 gives 0 either way), so the sign term is a & INT32_MIN, in int32.
    The shifted value lies in int32 (SRDHM saturates, RDBPOT shrinks), so it is clamped to
    [act_min - zp, act_max - zp] in int32 before the zero point is added. Rows are processed
    `r` at a time (constants tiled r times) so short channel rows still give long inner loops."""

    def __init__(self, shape, scratch: Scratch):
        n, k = shape
        self.r = max((d for d in range(1, n + 1) if n % d == 0 and d * k <= 512), default=1)
        self.shape, self.wide = (n, k), (n // self.r, self.r * k)
        self.x = scratch.get("rq_x", self.wide, np.int32)
        self.t = scratch.get("rq_t", self.wide, np.int32)
        self.ab = scratch.get("rq_ab", self.wide, np.int64)
        # shared by the machine's stages of equal row tiling: the tiles of one layer share one
        # set of constants, which then stays in cache from one tile to the next
        self.memo: dict[bytes, tuple | None] = scratch.remember(("rq_memo", self.r), dict)

    def _constants(self, key: bytes, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray):
        got = self.memo.get(key, False)
        if got is False:
            m, s = mult.astype(np.int64), shift.astype(np.int64)
            got = None
            if m.size and m.min() >= 0 and s.max() <= 0 and s.min() >= -31:    # else the general path
                e = -s
                pos = (1 << 30) + np.where(e > 0, np.int64(1) << (30 + e), 0)
                sign = np.where(e > 0, intmath.INT32_MIN, 0).astype(np.int32)
                got = tuple(np.tile(v, self.r) for v in (bias.astype(np.int32), sign, m, pos, 31 + e))
                if np.all(sign == sign[0]):
                    got = (got[0], sign[0]) + got[2:]
            if len(self.memo) > 4096:
                self.memo.clear()
            self.memo[key] = got
        return got

    def __call__(self, acc, bias, mult, shift, out_zp: int, act_min: int, act_max: int, out) -> None:
        self.bind(acc, bias, mult, shift, out_zp, act_min, act_max, out)()

    def bind(self, acc, bias, mult, shift, out_zp: int, act_min: int, act_max: int, out):
        """The stage on fixed views (acc int32 [n, k], bias / mult / shift int32 [k], out int8
        [n, k]) and fixed zero point and clamp; returns the closure that runs it."""
        lo, hi = act_min - out_zp, act_max - out_zp
        if not intmath.INT32_MIN <= min(lo, act_min) <= max(hi, act_max) <= intmath.INT32_MAX:
            return lambda: intmath.requantize(acc, bias, mult, shift, out_zp, act_min, act_max, out=out)
        bounds = np.array(lo, np.int32), np.array(hi, np.int32)      # 0-d: np.clip's fast path
        x, t, ab, zp = self.x, self.t, self.ab, np.int32(out_zp)
        acc_w, x_n = reshaped(acc, self.wide), x.reshape(self.shape)

        last = [b"", None]      # the parameter bytes last seen and their constants

        def run() -> None:
            key = bias.tobytes() + mult.tobytes() + shift.tobytes()
            if key != last[0]:  # compared each run, hashed (up to 15 KB) only when they change
                last[:] = key, self._constants(key, bias, mult, shift)
            c = last[1]
            if c is None:
                intmath.requantize(acc, bias, mult, shift, out_zp, act_min, act_max, out=out)
                return
            b, sign, m, pos, sh = c
            np.add(acc_w, b, out=x)                   # int32: wraps like wrap_int32
            np.bitwise_and(x, sign, out=t)            # -2^31 where x < 0 (and e > 0)
            np.multiply(x, m, out=ab)
            np.add(ab, pos, out=ab)
            np.add(ab, t, out=ab)
            np.right_shift(ab, sh, out=x, casting="unsafe")    # exact: the value lies in int32
            np.clip(x, *bounds, out=x)
            np.add(x_n, zp, out=out, casting="unsafe")         # int32 sum, cast as requantize casts
        return run
