"""What each instruction does to machine state, written once; the functional simulator runs it.

Memory is one flat uint8 array per space. Each instruction is lowered against a machine once:
`lower` builds its memory views (bounds-checked then, so a corrupt binary gives a clear
BinaryError, not a numpy exception) and its prepared kernel, and returns the steps that do the
work: micro-op rows (sim/microops.py) where they can express it, Python actions otherwise.
`bind` makes them one closure and `execute` is bind-then-call; the simulator lowers a whole
program once into a Plan (sim/plan.py) and runs it on every run. The arithmetic is the shared
kernel library (npukit.kernels), applied to tiles.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import BinaryError, InputError, ModelError
from ..ir.graph import ConvAttrs, PoolAttrs
from ..isa import instructions as I
from ..isa import wcodec
from ..isa.immediates import params_from_ints
from ..isa.strided import extent
from . import gemm_int8, plans, plans_int8
from ..kernels import intmath, kernels_mxu, kernels_transformer, kernels_vpu, kernels_vpu_compare, kernels_wide
from .tiles import spans
from . import microops, semantics16
from .plan import Action, Plan, Step


# kind -> (parameter record, kernel f(a, b, params))
ELTWISE_KERNELS: dict[I.Eltwise, tuple[type, Callable[..., np.ndarray]]] = {
                   I.Eltwise.ADD: (kernels_vpu.AddParams, kernels_vpu.add),
                   I.Eltwise.SUB: (kernels_vpu.AddParams, kernels_vpu.add),
                   I.Eltwise.MUL: (kernels_vpu.MulParams, kernels_vpu.mul),
                   I.Eltwise.PRELU: (kernels_vpu.PreluParams, kernels_vpu.prelu),
                   I.Eltwise.COMPARE: (kernels_vpu_compare.ComparisonParams, kernels_vpu_compare.compare),
                   I.Eltwise.LOGICAL: (kernels_vpu_compare.LogicalParams, kernels_vpu_compare.logical)}


class Machine:
    """SRAMs and off-chip regions as byte arrays, plus the prepared kernels' scratch buffers
    and the exact int8 GEMM the MXU's products run on (None: the float32 kernels).

    The arrays are allocated once: bound instructions hold views into them."""

    def __init__(self, sram_bytes: dict[int, int], regions: list[np.ndarray],
                 gemm: gemm_int8.Int8Gemm | None = None):
        self.gemm = gemm
        self.mem = {space: np.zeros(n, np.uint8) for space, n in sram_bytes.items()}
        self.sram = list(self.mem.values())
        for i, region in enumerate(regions):
            self.mem[I.REGION0 + i] = region
        self.scratch = plans.Scratch()

    def clear_sram(self) -> None:
        """SRAM contents do not survive between inferences; the regions do."""
        for mem in self.sram:
            mem.fill(0)

    def view(self, space: int, addr: int, shape, dtype=np.int8) -> np.ndarray:
        """A writable view of a contiguous block; raises BinaryError when out of bounds."""
        mem = self._space(space)
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if addr < 0 or n < 0 or addr + n > mem.size:
            raise BinaryError(f"access [{addr}, {addr + n}) outside space {space} of {mem.size} bytes")
        return mem[addr:addr + n].view(dtype).reshape(shape)

    def strided(self, space: int, addr: int, shape, strides, elem: int) -> np.ndarray:
        mem = self._space(space)
        if elem < 1 or min(shape, default=0) < 0:
            raise BinaryError(f"strided access of {list(shape)} elements of {elem} bytes")
        if min(shape) <= 0:
            return np.zeros((0, elem), np.uint8)
        lo, hi = extent(addr, shape, strides, elem)
        if lo < 0 or hi > mem.size:
            raise BinaryError(f"strided access [{lo}, {hi}) outside space {space} of {mem.size} bytes")
        return as_strided(mem[addr:], shape=tuple(shape) + (elem,), strides=tuple(strides) + (1,))

    def _space(self, space: int) -> np.ndarray:
        if space not in self.mem:
            raise BinaryError(f"instruction names memory space {space}, which does not exist")
        return self.mem[space]


def lower(m: Machine, ins: I.Instr, host_binder: Callable[[int], Action] | None = None,
          known: np.ndarray | None = None) -> list[Step]:
    """The instruction as steps over `m`: micro-ops (sim/microops.py) and Python actions, views
    and checks done now, the work when they run. Host instructions bind through
    `host_binder(segment)`. `known`: what a DMA's source holds or a Conv's weights are, when the
    program shows they never change (sim/constants.py)."""
    if isinstance(ins, I.Host):
        if host_binder is None:
            raise BinaryError("host instruction, but no host to run it")
        return [host_binder(ins.segment)]
    binder = _BINDERS.get(type(ins))
    if binder is None:
        raise BinaryError(f"no semantics for instruction {type(ins).__name__}")
    try:
        steps = binder(m, ins, known) if type(ins) in (I.Dma, I.Conv) else binder(m, ins)
    except (ValueError, ArithmeticError, InputError, ModelError) as e:     # fields no kernel accepts
        raise BinaryError(f"{type(ins).__name__.upper()}: {e}") from None
    return steps if isinstance(steps, list) else [steps]


def bind(m: Machine, ins: I.Instr, host_binder: Callable[[int], Action] | None = None) -> Action:
    """The instruction as one closure over `m`."""
    plan = Plan([lower(m, ins, host_binder)], [type(ins).__name__.upper()])
    return partial(plan.run, plan.program)


def execute(m: Machine, ins: I.Instr, host_binder: Callable[[int], Action] | None = None) -> None:
    bind(m, ins, host_binder)()


def _dma(m: Machine, d: I.Dma, known: np.ndarray | None = None) -> Step:
    moved = math.prod(d.shape) * d.elem
    if moved > m._space(d.dst_space).size:       # only a repeated (zero-stride) write could: a corrupt binary
        raise BinaryError(f"DMA: moves {moved} bytes, more than space {d.dst_space} holds")
    if d.codec:
        return _dma_decode(m, d, known)
    src = m.strided(d.src_space, d.src, d.shape, d.src_strides, d.elem)
    dst = m.strided(d.dst_space, d.dst, d.shape, d.dst_strides, d.elem)
    op = microops.copy(src, dst)
    if op is not None:
        return op
    if d.src_space == d.dst_space and np.may_share_memory(src, dst):
        return lambda: np.copyto(dst, src.copy())       # read everything, then write
    return lambda: np.copyto(dst, src)


def _dma_decode(m: Machine, d: I.Dma, known: np.ndarray | None) -> Step:
    """A compressed source stream expanded into the destination pattern. A stream the program
    never overwrites is decoded once (`known`, the decoded elements): then a copy. Otherwise it
    is kept with a copy of its bytes, and decoded again only when they change (compared as
    bytes: a copy and a memcmp, cheaper than an array comparison)."""
    if d.codec != wcodec.RICE:
        raise BinaryError(f"DMA: unknown codec {d.codec}")
    if any(d.src_strides) or d.packed < 0:
        raise BinaryError("DMA: a compressed source is one contiguous stream (strides 0, length >= 0)")
    stream = m.view(d.src_space, d.src, (d.packed,), np.uint8)
    dst = m.strided(d.dst_space, d.dst, d.shape, d.dst_strides, d.elem)
    if known is not None:
        op = microops.copy(known.reshape(dst.shape), dst)
        if op is not None:
            return op
    n = dst.size
    cache: list = [None, None]

    def run() -> None:
        data = stream.tobytes()
        if data != cache[0]:
            cache[:] = data, wcodec.decode(stream, n).reshape(dst.shape)
        np.copyto(dst, cache[1])
    return run


def _fill(m: Machine, f: I.Fill) -> Step:
    return microops.fill(m.view(f.space, f.addr, (f.n,), np.uint8), f.value)


def _tile_pads(in_len: int, dil: int, pad_lo: int, out_len: int, stride: int, k: int, kdil: int):
    """Explicit (lo, hi) padding of a tile so that exactly `out_len` outputs are produced."""
    span = (out_len - 1) * stride + (k - 1) * kdil + 1
    hi = span - pad_lo - ((in_len - 1) * dil + 1)
    return pad_lo, max(hi, 0)  # extra rows beyond the window are sliced off


TILE_LIMIT = 1 << 30        # bytes of a conv tile's padded window and im2col


def _check_geometry(name: str, *sizes: int) -> None:
    """Sizes, strides, dilations and channel offsets must be positive (else BinaryError)."""
    if min(sizes) < 1:
        raise BinaryError(f"{name}: a size, stride, dilation or channel range is not positive")


def _int8_geometry(zp: int, *sizes: int) -> bool:
    """Whether the prepared float32 kernels apply: an int8 zero point, positive sizes (else the
    general kernel runs, with its own checks and errors)."""
    return -128 <= zp <= 127 and min(sizes) >= 1


def _conv(m: Machine, c: I.Conv, known: np.ndarray | None = None) -> Step | list[Step]:
    if c.in_bytes not in (1, 2) or (c.in_bytes == 2 and c.zp != 0):
        raise BinaryError(f"CONV: input of {c.in_bytes} bytes with zero point {c.zp} (int8, or int16 with 0)")
    _check_geometry("CONV", c.in_h, c.in_w, c.c_len, c.k, c.out_h, c.out_w, *c.kernel, *c.stride, *c.dilation,
                    *c.in_dil, c.c_off + 1, c.c_stride - c.c_off - c.c_len + 1)
    kh, kw = c.kernel
    span_h, span_w = spans((c.out_h, c.out_w), c.kernel, c.stride, c.dilation)
    operands = span_h * span_w * c.c_len + c.out_h * c.out_w * kh * kw * c.c_len
    if operands > TILE_LIMIT:
        raise BinaryError(f"CONV: its padded window and im2col take {operands} bytes, beyond the simulator's "
                          f"{TILE_LIMIT} (a corrupt stride, dilation or size)")
    w = m.view(I.WBUF, c.wgt, (c.k, kh, kw, c.c_len))
    out = m.view(I.ACC, c.dst, (c.out_h * c.out_w, c.k), np.int64 if c.in_bytes == 2 else np.int32)
    xs = m.view(I.ABUF, c.src, (1, c.in_h, c.in_w, c.c_stride), np.int16 if c.in_bytes == 2 else np.int8)
    x = xs[..., c.c_off:c.c_off + c.c_len]
    depth = kh * kw * c.c_len
    if c.in_bytes == 1 and _int8_geometry(c.zp, c.in_h, c.in_w, c.c_len, c.k, c.out_h, c.out_w, kh, kw, *c.stride, *c.dilation,
                                          *c.in_dil, c.c_off + 1, c.c_stride - c.c_off - c.c_len + 1):
        geometry = ((c.in_h, c.in_w), c.c_len, c.k, c.kernel, c.stride, c.dilation, c.in_dil,
                    (c.pad_t, c.pad_l), (c.out_h, c.out_w), c.zp, m.scratch)
        if m.gemm is not None and depth <= gemm_int8.MAX_DEPTH:
            return _conv_steps(plans_int8.DenseConvInt8(*geometry, m.gemm).parts(x, w, out, bool(c.accumulate), known))
        if depth < 1 << 17:
            return plans.DenseConv(*geometry).bind(x, w, out, bool(c.accumulate))
    pt, pb = _tile_pads(c.in_h, c.in_dil[0], c.pad_t, c.out_h, c.stride[0], kh, c.dilation[0])
    pl, pr = _tile_pads(c.in_w, c.in_dil[1], c.pad_l, c.out_w, c.stride[1], kw, c.dilation[1])
    attrs = ConvAttrs(stride=c.stride, dilation=c.dilation, pads=(pt, pl, pb, pr), input_dilation=c.in_dil)

    def general() -> None:
        if c.in_bytes == 2:     # two int8 passes, hi and lo byte (kernels_wide.split_bytes), int64 sums
            acc = kernels_wide.conv2d_acc_16x8(x, w, attrs)[0, :c.out_h, :c.out_w].reshape(-1, c.k)
            out[...] = out + acc if c.accumulate else acc
            return
        acc = kernels_mxu.conv2d_acc(x, w, attrs, c.zp)[0, :c.out_h, :c.out_w].reshape(-1, c.k)
        out[...] = intmath.wrap_int32(out.astype(np.int64) + acc) if c.accumulate else intmath.wrap_int32(acc)
    return general


def _conv_steps(p: plans_int8.Parts) -> list[Step]:
    """A conv tile's parts as steps: the copies and the accumulator update as micro-ops where
    they can be (else their numpy closures), the product a Python call."""
    load, im2col, product, post = p.numpy_steps()
    steps: list[Step] = [microops.copy(*p.load, 0x80) or load]
    if p.im2col is not None and im2col is not None:
        to, frm = p.im2col
        steps.append(microops.copy(frm, to) or im2col)
    steps.append(product)
    if p.post is not None and post is not None:
        how, y, out = p.post
        steps.append((microops.add32(y, out) if how == "add" else microops.copy(y, out)) or post)
    return steps


def _dwconv(m: Machine, d: I.DwConv) -> Step:
    from . import jit     # numba loads when a program is first bound, not on import
    _check_geometry("DWCONV", d.in_h, d.in_w, d.c, d.mult, d.out_h, d.out_w, *d.kernel, *d.stride, *d.dilation)
    if (d.in_bytes, d.out_bytes, d.mode) != (1, 1, 0):
        return _dwconv_wide(m, d)
    x = m.view(I.ABUF, d.src, (1, d.in_h, d.in_w, d.c))
    kh, kw = d.kernel
    k = d.c * d.mult
    w = m.view(I.WBUF, d.wgt, (1, kh, kw, k))
    params = m.view(I.WBUF, d.params, (3, k), np.int32)
    bias, mult, shift = params
    dst = m.view(I.ABUF, d.dst, (d.out_h * d.out_w, k))
    if _int8_geometry(d.zp, d.in_h, d.in_w, d.c, d.mult, d.out_h, d.out_w, *d.stride, *d.dilation) \
            and kh * kw * jit.DEPTHWISE_PRODUCT < 1 << 31:
        geometry = jit.geometry((d.in_h, d.in_w), d.c, d.mult, d.kernel, d.stride, d.dilation, (d.pad_t, d.pad_l),
                                (d.out_h, d.out_w), d.zp, d.out_zp, d.act_min, d.act_max)
        return (microops.depthwise(x[0], w[0], params, dst, geometry)
                or jit.bind(jit.depthwise_requant, x[0], w[0], bias, mult, shift, geometry, dst))
    pt, pb = _tile_pads(d.in_h, 1, d.pad_t, d.out_h, d.stride[0], kh, d.dilation[0])
    pl, pr = _tile_pads(d.in_w, 1, d.pad_l, d.out_w, d.stride[1], kw, d.dilation[1])
    attrs = ConvAttrs(stride=d.stride, dilation=d.dilation, pads=(pt, pl, pb, pr), groups=d.c, depthwise=True)
    acc = m.scratch.get("dw_acc", dst.shape, np.int32)
    requant = jit.bind(jit.requantize, acc, bias, mult, shift, d.out_zp, d.act_min, d.act_max, dst)

    def general() -> None:      # the general kernel, with its own checks and errors
        acc[...] = intmath.wrap_int32(kernels_mxu.conv2d_acc(x, w, attrs, d.zp)[0, :d.out_h, :d.out_w].reshape(-1, k))
        requant()
    return general


def _dwconv_wide(m: Machine, d: I.DwConv) -> Step:
    """A DwConv with an int16 side (16x8 depthwise, QUANTIZE between int8 and int16): the
    plain kernels, int16 input as the two byte passes."""
    if d.in_bytes not in (1, 2) or d.out_bytes not in (1, 2) or d.mode not in (0, 2) or (d.in_bytes == 2 and d.zp):
        raise BinaryError(f"DWCONV: input of {d.in_bytes} bytes with zero point {d.zp}, output of {d.out_bytes} "
                          f"bytes, mode {d.mode} (int8 or int16 with zero point 0; modes 0 and 2)")
    kh, kw = d.kernel
    k = d.c * d.mult
    x = m.view(I.ABUF, d.src, (1, d.in_h, d.in_w, d.c), np.int16 if d.in_bytes == 2 else np.int8)
    w = m.view(I.WBUF, d.wgt, (1, kh, kw, k))
    bias, mult, shift = m.view(I.WBUF, d.params, (3, k), np.int64 if d.mode == 2 else np.int32)
    out_t = np.int16 if d.out_bytes == 2 else np.int8
    dst = m.view(I.ABUF, d.dst, (d.out_h * d.out_w, k), out_t)
    lo, hi = max(d.act_min, np.iinfo(out_t).min), min(d.act_max, np.iinfo(out_t).max)
    pt, pb = _tile_pads(d.in_h, 1, d.pad_t, d.out_h, d.stride[0], kh, d.dilation[0])
    pl, pr = _tile_pads(d.in_w, 1, d.pad_l, d.out_w, d.stride[1], kw, d.dilation[1])
    attrs = ConvAttrs(stride=d.stride, dilation=d.dilation, pads=(pt, pl, pb, pr), groups=d.c, depthwise=True)

    def wide() -> None:
        if d.in_bytes == 2:
            acc = kernels_wide.conv2d_acc_16x8(x, w, attrs)
        else:
            acc = kernels_mxu.conv2d_acc(x, w, attrs, d.zp)
        acc = acc[0, :d.out_h, :d.out_w].reshape(-1, k)      # the engine's sums: int64 in mode 2
        if d.mode == 2:
            p = kernels_mxu.ConvParams(0, d.out_zp, mult, shift, lo, hi)
            dst[...] = kernels_wide.conv_output_16x8(acc, bias, p)
        else:
            dst[...] = intmath.requantize(intmath.wrap_int32(acc), bias, mult, shift, d.out_zp, lo, hi, out_t)
    return wide


def _requant(m: Machine, r: I.Requant) -> Step:
    from . import jit
    _check_geometry("REQUANT", r.n_pix, r.k)
    acc = m.view(I.ACC, r.src, (r.n_pix, r.k), np.int64 if r.mode in (2, 3) else np.int32)
    if r.mode in (0, 1):
        dst = m.strided(I.ABUF, r.dst + r.dst_c_off, (r.n_pix, r.k), (r.dst_pix_stride, 1), 1)[..., 0].view(np.int8)
    if r.mode == 0:
        params = m.view(I.WBUF, r.params, (3, r.k), np.int32)
        bias, mult, shift = params
        return (microops.requant(acc, params, dst, r.out_zp, r.act_min, r.act_max)
                or jit.bind(jit.requantize, acc, bias, mult, shift, r.out_zp, r.act_min, r.act_max, dst))
    if r.mode == 1:
        bias, mantissa, exponent = m.view(I.WBUF, r.params, (3, r.k), np.int64)

        def fc() -> None:
            p = kernels_mxu.ConvParams(0, r.out_zp, _NO_Q31, _NO_Q31, r.act_min, r.act_max, mantissa, exponent)
            dst[...] = kernels_mxu.fc_output(acc, bias, p)
        return fc
    if r.mode == 2:       # 16x8: int64 bias and multiplier form, int16 out
        bias, mult, shift = m.view(I.WBUF, r.params, (3, r.k), np.int64)
        wide = m.strided(I.ABUF, r.dst + 2 * r.dst_c_off, (r.n_pix, r.k), (2 * r.dst_pix_stride, 2), 2)

        def requant_16x8() -> None:
            p = kernels_mxu.ConvParams(0, r.out_zp, mult, shift, r.act_min, r.act_max)
            wide[...] = kernels_wide.conv_output_16x8(acc, bias, p).view(np.uint8).reshape(r.n_pix, r.k, 2)
        return requant_16x8
    if r.mode == 3:       # 16x8 fully connected: int64 sums, exact double scale, int16 out
        bias, mantissa, exponent = m.view(I.WBUF, r.params, (3, r.k), np.int64)
        wide = m.strided(I.ABUF, r.dst + 2 * r.dst_c_off, (r.n_pix, r.k), (2 * r.dst_pix_stride, 2), 2)

        def fc_16x8() -> None:
            p = kernels_mxu.ConvParams(0, r.out_zp, _NO_Q31, _NO_Q31, r.act_min, r.act_max, mantissa, exponent)
            wide[...] = kernels_mxu.fc_output_wide(acc, bias, p).view(np.uint8).reshape(r.n_pix, r.k, 2)
        return fc_16x8
    raise BinaryError(f"REQUANT: unknown mode {r.mode}")


_NO_Q31 = np.zeros(0, np.int32)        # the Q31 multiplier and shift, unused beside an exact scale


def _elementwise(m: Machine, e: I.Elementwise) -> Step:
    semantics16.check_elem("ELEMENTWISE", e.elem)
    if e.elem == 2:
        return semantics16.elementwise(m, e)
    a = m.view(e.a_space, e.a, (e.rows, e.cols))
    b = m.strided(e.b_space, e.b, (e.rows, e.cols), e.b_strides, 1)[..., 0].view(np.int8)
    dst = m.view(I.ABUF, e.dst, (e.rows, e.cols))
    _check_geometry("ELEMENTWISE", e.rows, e.cols)
    if e.kind not in {k.value for k in I.Eltwise}:
        raise BinaryError(f"ELEMENTWISE: unknown kind {e.kind}")
    kind = I.Eltwise(e.kind)
    if kind in (I.Eltwise.MAX, I.Eltwise.MIN):
        if kind is I.Eltwise.MAX:                 # ufuncs buffer overlapping operands
            return lambda: np.maximum(a, b, out=dst)
        return lambda: np.minimum(a, b, out=dst)
    cls, kernel = ELTWISE_KERNELS[kind]
    p = params_from_ints(cls, e.qparams)
    fn = lambda u, v: kernel(u, v, p)          # noqa: E731
    try:
        table = plans.PairTable(fn, (e.rows, e.cols), m.scratch, (kind, e.qparams))
    except (ValueError, ArithmeticError) as err:       # parameters the kernel rejects
        raise BinaryError(f"ELEMENTWISE: parameters {e.qparams}: {err}") from None
    return microops.pair(a, b, table.table, dst) or (lambda: table(a, b, dst))


def _lut(m: Machine, t: I.Lut) -> Action:
    table = m.view(I.WBUF, t.table, (256,))
    x = m.view(I.ABUF, t.src, (t.n,))
    dst = m.view(I.ABUF, t.dst, (t.n,))
    return lambda: dst.__setitem__(..., kernels_vpu.lut(x, table))


def _pool(m: Machine, p: I.Pool) -> Action:
    semantics16.check_elem("POOL", p.elem)
    if p.elem == 2:
        return semantics16.pool(m, p)
    x = m.view(I.ABUF, p.src, (1, p.in_h, p.in_w, p.c))
    dst = m.view(I.ABUF, p.dst, (1, p.out_h, p.out_w, p.c))
    attrs = PoolAttrs(kernel=p.kernel, stride=p.stride, pads=(p.pad_t, p.pad_l, p.pad_b, p.pad_r))
    if p.kind == 0 and _pool_covers(p, attrs) and p.act_min <= p.act_max:
        return plans.MaxPool((p.in_h, p.in_w), p.c, p.kernel, p.stride, (p.pad_t, p.pad_l), (p.out_h, p.out_w),
                             m.scratch).bind(x, dst, p.act_min, p.act_max)
    fn = kernels_vpu.max_pool if p.kind == 0 else kernels_vpu.avg_pool
    return lambda: dst.__setitem__(..., fn(x, attrs, p.act_min, p.act_max)[:, :p.out_h, :p.out_w])


def _pool_covers(p: I.Pool, attrs: PoolAttrs) -> bool:
    """Whether the kernel's whole-tile output has the instruction's rows and columns (else the
    general kernel runs, with its own errors)."""
    if min(p.in_h, p.in_w, p.c, p.out_h, p.out_w, *p.kernel, *p.stride) < 1 or min(p.pad_t, p.pad_l) < 0:
        return False
    (kh, kw), (sh, sw) = p.kernel, p.stride
    oh = (p.in_h + p.pad_t + p.pad_b - kh) // sh + 1
    ow = (p.in_w + p.pad_l + p.pad_r - kw) // sw + 1
    return oh >= p.out_h and ow >= p.out_w


def _mean(m: Machine, r: I.Mean) -> Action:
    semantics16.check_elem("MEAN", r.elem)
    if r.elem == 2:
        return semantics16.mean(m, r)
    x = m.view(I.ABUF, r.src, (1, r.n, 1, r.c))
    dst = m.view(I.ABUF, r.dst, (1, 1, 1, r.c))
    if r.kind in (1, 2):
        _check_geometry("MEAN", r.n, r.c)
        return lambda: dst.__setitem__(..., kernels_vpu.reduce_extreme(x, (1, 2), r.kind == 1))
    if r.kind == 3:
        s = params_from_ints(kernels_vpu.SumParams, r.qparams)
        return lambda: dst.__setitem__(..., kernels_vpu.reduce_sum(x, (1, 2), s))
    if r.kind != 0:
        raise BinaryError(f"MEAN: unknown kind {r.kind}")
    p = params_from_ints(kernels_vpu.MeanParams, r.qparams)
    return lambda: dst.__setitem__(..., kernels_vpu.mean(x, (1, 2), p))


def _arg_max(m: Machine, r: I.ArgMax) -> Action:
    if r.elem not in (4, 8) or r.last not in (0, 1) or r.smallest not in (0, 1):
        raise BinaryError(f"ARGMAX: index of {r.elem} bytes, last = {r.last}, smallest = {r.smallest} "
                          "(4 or 8 bytes; 0 or 1)")
    _check_geometry("ARGMAX", r.n, r.c)
    x = m.view(I.ABUF, r.src, (r.n, r.c))
    dtype = np.int32 if r.elem == 4 else np.int64
    dst = m.view(I.ABUF, r.dst, (r.c,), dtype)
    return lambda: dst.__setitem__(..., kernels_vpu.arg_max(x, 0, bool(r.last), dtype=dtype, smallest=bool(r.smallest)))


def _select(m: Machine, s: I.Select) -> Action:
    cond, a, b, dst = (m.view(I.ABUF, addr, (s.n,)) for addr in (s.cond, s.a, s.b, s.dst))
    return lambda: np.copyto(dst, np.where(cond != 0, a, b))


def _matmul(m: Machine, t: I.MatMul) -> Action:
    a = m.view(I.ABUF, t.src, (t.m, t.k_len))
    b = m.view(I.WBUF, t.wgt, (t.n, t.k_len))
    out = m.view(I.ACC, t.dst, (t.m, t.n), np.int32)

    def run() -> None:
        acc = kernels_transformer.matmul_acc(a, b, t.a_zp, t.b_zp, True)
        out[...] = intmath.wrap_int32(out.astype(np.int64) + acc) if t.accumulate else intmath.wrap_int32(acc)
    return run


def _softmax(m: Machine, s: I.Softmax) -> Action:
    if s.kind == 2:
        return semantics16.softmax(m, s)
    x = m.view(I.ABUF, s.src, (s.rows, s.cols))
    dst = m.view(I.ABUF, s.dst, (s.rows, s.cols))
    if s.kind not in (0, 1):
        raise BinaryError(f"Softmax: unknown kind {s.kind}")
    p = params_from_ints(kernels_vpu.SoftmaxTableParams if s.kind else kernels_vpu.SoftmaxParams, s.qparams)
    return lambda: dst.__setitem__(..., kernels_vpu.softmax(x, p))


def _resize(m: Machine, r: I.Resize) -> Action:
    semantics16.check_elem("RESIZE", r.elem)
    if r.elem == 2:
        return semantics16.resize(m, r)
    x = m.view(I.ABUF, r.src, (1, r.in_h, r.in_w, r.c))
    dst = m.view(I.ABUF, r.dst, (1, r.out_h, r.out_w, r.c))
    fn = kernels_vpu.resize_bilinear if r.mode else kernels_vpu.resize_nearest
    return lambda: dst.__setitem__(..., fn(x, (r.out_h, r.out_w), bool(r.align_corners), bool(r.half_pixel_centers)))


def _magnitude(m: Machine, g: I.Magnitude) -> Action:
    x = m.view(I.ABUF, g.src, (g.outer, 2, g.c, g.inner), np.int16)
    dst = m.view(I.ABUF, g.dst, (g.outer, g.c, g.inner))
    p = params_from_ints(kernels_wide.MagnitudeParams, g.qparams)
    return lambda: dst.__setitem__(..., kernels_wide.magnitude(x[:, 0], x[:, 1], p))


def _gather(m: Machine, g: I.Gather) -> Action:
    """Rows of the table by the ids, with the reference kernel's check: an id out of range is
    a one-line error at run time, as in the integer reference (and TFLite's GATHER)."""
    if g.id_bytes not in (4, 8) or I.ACC in (g.ids_space, g.src_space, g.dst_space):
        raise BinaryError(f"GATHER: ids of {g.id_bytes} bytes (4 or 8), spaces {g.ids_space}, {g.src_space}, "
                          f"{g.dst_space} (not ACC)")
    _check_geometry("GATHER", g.n + 1, g.rows + 1, g.row_bytes + 1)
    ids = m.view(g.ids_space, g.ids, (g.n,), np.dtype(f"<i{g.id_bytes}"))
    table = m.view(g.src_space, g.src, (g.rows, g.row_bytes), np.uint8)
    dst = m.view(g.dst_space, g.dst, (g.n, g.row_bytes), np.uint8)
    return lambda: dst.__setitem__(..., kernels_transformer.gather(table, ids))


_BINDERS: dict[type[I.Instr], Callable[..., Step | list[Step]]] = {
            I.Softmax: _softmax, I.Resize: _resize, I.MatMul: _matmul, I.Dma: _dma, I.Fill: _fill, I.Conv: _conv,
            I.DwConv: _dwconv, I.Requant: _requant, I.Elementwise: _elementwise, I.Lut: _lut, I.Pool: _pool,
            I.Mean: _mean, I.Magnitude: _magnitude, I.ArgMax: _arg_max,
            I.Select: _select, I.Sigmoid16: semantics16.sigmoid16, I.Gather: _gather}
