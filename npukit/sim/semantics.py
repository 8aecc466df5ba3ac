"""Instructions lowered to steps over a machine: the fast paths, falling back to the plain
definitions (sim/plain.py), which say once what each instruction does.

Each instruction is lowered against a machine once: `lower` builds its memory views and its
prepared kernel and returns the steps that do the work: micro-op rows (sim/microops.py), a
prepared plan (sim/plans.py, plans_int8.py, jit.py) where its conditions hold, else the plain
definition's action. `bind` makes them one closure and `execute` is bind-then-call; the
simulator lowers a whole program once into a Plan (sim/plan.py) and runs it on every run.
The int16 (16x8) forms run their plain definitions (sim/plain.py, sim/semantics16.py),
except a 1x1 CONV (a fully connected tile): one exact float64 product. tests/sim/test_fast_paths.py checks every fast path against the plain
definition.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..errors import BinaryError, InputError, ModelError
from ..isa import instructions as I
from ..isa import wcodec
from ..isa.immediates import params_from_ints
from . import gemm_int8, microops, plain, plans, plans_int8
from .machine import Machine
from .plan import Action, Plan, Step

__all__ = ["Machine", "lower", "bind", "execute"]


def lower(m: Machine, ins: I.Instr, host_binder: Callable[[int], Action] | None = None,
          known: np.ndarray | None = None, fast: bool = True) -> list[Step]:
    """The instruction as steps over `m`: micro-ops (sim/microops.py) and Python actions, views
    and checks done now, the work when they run. Host instructions bind through
    `host_binder(segment)`. `known`: what a DMA's source holds or a Conv's weights are, when the
    program shows they never change (sim/constants.py). `fast` False: the plain definition's
    action alone (nothing compiled is loaded)."""
    if isinstance(ins, I.Host):
        if host_binder is None:
            raise BinaryError("host instruction, but no host to run it")
        return [host_binder(ins.segment)]
    binder = (_BINDERS if fast else plain.BINDERS).get(type(ins))
    if binder is None:
        raise BinaryError(f"no semantics for instruction {type(ins).__name__}")
    try:
        steps = binder(m, ins, known) if fast and type(ins) in (I.Dma, I.Conv) else binder(m, ins)
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
    """A copy as a micro-op, a compressed stream decoded once or when its bytes change."""
    plain.check_dma(m, d)
    if d.codec:
        return _dma_decode(m, d, known)
    src = m.strided(d.src_space, d.src, d.shape, d.src_strides, d.elem)
    dst = m.strided(d.dst_space, d.dst, d.shape, d.dst_strides, d.elem)
    op = microops.copy(src, dst)
    if op is not None:
        return op
    if d.src_space == d.dst_space and np.may_share_memory(src, dst):
        return plain.dma(m, d)
    return lambda: np.copyto(dst, src)


def _dma_decode(m: Machine, d: I.Dma, known: np.ndarray | None) -> Step:
    """A stream the program never overwrites is decoded once (`known`, the decoded elements):
    then a copy. Otherwise it is kept with a copy of its bytes, and decoded again only when
    they change (compared as bytes: a copy and a memcmp, cheaper than an array comparison)."""
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


def _int8_geometry(zp: int, *sizes: int) -> bool:
    """Whether the prepared float32 kernels apply: an int8 zero point, positive sizes (else the
    plain definition runs, with its own checks and errors)."""
    return -128 <= zp <= 127 and min(sizes) >= 1


def _conv(m: Machine, c: I.Conv, known: np.ndarray | None = None) -> Step | list[Step]:
    plain.check_conv(c)
    kh, kw = c.kernel
    if c.in_bytes == 1 and _int8_geometry(c.zp, c.in_h, c.in_w, c.c_len, c.k, c.out_h, c.out_w, kh, kw, *c.stride,
                                          *c.dilation, *c.in_dil, c.c_off + 1, c.c_stride - c.c_off - c.c_len + 1):
        w = m.view(I.WBUF, c.wgt, (c.k, kh, kw, c.c_len))
        out = m.view(I.ACC, c.dst, (c.out_h * c.out_w, c.k), np.int32)
        x = m.view(I.ABUF, c.src, (1, c.in_h, c.in_w, c.c_stride))[..., c.c_off:c.c_off + c.c_len]
        geometry = ((c.in_h, c.in_w), c.c_len, c.k, c.kernel, c.stride, c.dilation, c.in_dil,
                    (c.pad_t, c.pad_l), (c.out_h, c.out_w), c.zp, m.scratch)
        depth = kh * kw * c.c_len
        if m.gemm is not None and depth <= gemm_int8.MAX_DEPTH:
            return _conv_steps(plans_int8.DenseConvInt8(*geometry, m.gemm).parts(x, w, out, bool(c.accumulate), known))
        if depth < 1 << 17:
            return plans.DenseConv(*geometry).bind(x, w, out, bool(c.accumulate))
    if c.in_bytes == 2 and c.kernel == (1, 1) and c.stride == (1, 1) and c.in_dil == (1, 1) \
            and (c.pad_t, c.pad_l, c.out_h, c.out_w) == (0, 0, c.in_h, c.in_w):
        return _pointwise_16x8(m, c)
    return plain.conv(m, c)


def _pointwise_16x8(m: Machine, c: I.Conv) -> Step:
    """A 16x8 1x1 CONV (a fully connected tile) as one float64 product: each term is below
    2^22 in magnitude, so the sum is exact below 2^31 terms (the plain definition's two byte
    passes give the same int64 sums)."""
    w = m.view(I.WBUF, c.wgt, (c.k, c.c_len))
    out = m.view(I.ACC, c.dst, (c.out_h * c.out_w, c.k), np.int64)
    x = m.view(I.ABUF, c.src, (c.in_h * c.in_w, c.c_stride), np.int16)[:, c.c_off:c.c_off + c.c_len]

    def run() -> None:
        acc = (x.astype(np.float64) @ w.astype(np.float64).T).astype(np.int64)
        out[...] = out + acc if c.accumulate else acc
    return run


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
    plain.check_dwconv(d)
    kh, kw = d.kernel
    if not ((d.in_bytes, d.out_bytes, d.mode) == (1, 1, 0)
            and _int8_geometry(d.zp, d.in_h, d.in_w, d.c, d.mult, d.out_h, d.out_w, *d.stride, *d.dilation)
            and kh * kw * jit.DEPTHWISE_PRODUCT < 1 << 31):
        return plain.dwconv(m, d)
    k = d.c * d.mult
    x = m.view(I.ABUF, d.src, (d.in_h, d.in_w, d.c))
    w = m.view(I.WBUF, d.wgt, (kh, kw, k))
    params = m.view(I.WBUF, d.params, (3, k), np.int32)
    bias, mult, shift = params
    dst = m.view(I.ABUF, d.dst, (d.out_h * d.out_w, k))
    geometry = jit.geometry((d.in_h, d.in_w), d.c, d.mult, d.kernel, d.stride, d.dilation, (d.pad_t, d.pad_l),
                            (d.out_h, d.out_w), d.zp, d.out_zp, d.act_min, d.act_max)
    return (microops.depthwise(x, w, params, dst, geometry)
            or jit.bind(jit.depthwise_requant, x, w, bias, mult, shift, geometry, dst))


def _requant(m: Machine, r: I.Requant) -> Step:
    from . import jit
    plain.check_requant(r)
    if r.mode != 0:
        return plain.requant(m, r)
    acc = m.view(I.ACC, r.src, (r.n_pix, r.k), np.int32)
    dst = plain.out_rows(m, r)
    params = m.view(I.WBUF, r.params, (3, r.k), np.int32)
    bias, mult, shift = params
    return (microops.requant(acc, params, dst, r.out_zp, r.act_min, r.act_max)
            or jit.bind(jit.requantize, acc, bias, mult, shift, r.out_zp, r.act_min, r.act_max, dst))


def _elementwise(m: Machine, e: I.Elementwise) -> Step:
    """int8 MAX / MIN in place; the other kinds through a 256 x 256 table of the kernel's results."""
    if e.elem != 1:
        return plain.elementwise(m, e)
    a, b, dst, kind = plain.eltwise_operands(m, e)
    if kind is I.Eltwise.MAX:                 # ufuncs buffer overlapping operands
        return lambda: np.maximum(a, b, out=dst)
    if kind is I.Eltwise.MIN:
        return lambda: np.minimum(a, b, out=dst)
    cls, kernel = plain.ELTWISE_KERNELS[kind]
    p = params_from_ints(cls, e.qparams)
    fn = lambda u, v: kernel(u, v, p)          # noqa: E731
    try:
        table = plans.PairTable(fn, (e.rows, e.cols), m.scratch, (kind, e.qparams))
    except (ValueError, ArithmeticError) as err:       # parameters the kernel rejects
        raise BinaryError(f"ELEMENTWISE: parameters {e.qparams}: {err}") from None
    return microops.pair(a, b, table.table, dst) or (lambda: table(a, b, dst))


def _pool(m: Machine, p: I.Pool) -> Step:
    """int8 max pooling by a prepared plan when its whole-tile output covers the instruction's."""
    if p.elem == 1 and p.kind == 0 and _pool_covers(p) and p.act_min <= p.act_max:
        x = m.view(I.ABUF, p.src, (1, p.in_h, p.in_w, p.c))
        dst = m.view(I.ABUF, p.dst, (1, p.out_h, p.out_w, p.c))
        return plans.MaxPool((p.in_h, p.in_w), p.c, p.kernel, p.stride, (p.pad_t, p.pad_l), (p.out_h, p.out_w),
                             m.scratch).bind(x, dst, p.act_min, p.act_max)
    return plain.pool(m, p)


def _pool_covers(p: I.Pool) -> bool:
    """Whether the kernel's whole-tile output has the instruction's rows and columns (else the
    plain definition runs, with its own errors)."""
    if min(p.in_h, p.in_w, p.c, p.out_h, p.out_w, *p.kernel, *p.stride) < 1 or min(p.pad_t, p.pad_l) < 0:
        return False
    (kh, kw), (sh, sw) = p.kernel, p.stride
    oh = (p.in_h + p.pad_t + p.pad_b - kh) // sh + 1
    ow = (p.in_w + p.pad_l + p.pad_r - kw) // sw + 1
    return oh >= p.out_h and ow >= p.out_w


FAST: dict[type[I.Instr], Callable[..., Step | list[Step]]] = {
    I.Dma: _dma, I.Fill: _fill, I.Conv: _conv, I.DwConv: _dwconv, I.Requant: _requant,
    I.Elementwise: _elementwise, I.Pool: _pool}
_BINDERS: dict[type[I.Instr], Callable[..., Step | list[Step]]] = {**plain.BINDERS, **FAST}
