"""Semantics of the VPU's int16 forms (TFLite's 16x8 scheme): ELEMENTWISE / POOL / MEAN /
RESIZE with `elem` 2, SOFTMAX kind 2 and SIGMOID16. Each binds int16 views of its tile and
calls the same kernel the reference runs (kernels_vpu with an int16 dtype, kernels_vpu16)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import BinaryError
from ..ir.graph import PoolAttrs
from ..isa import instructions as I
from ..isa.immediates import params_from_ints
from ..kernels import kernels_vpu, kernels_vpu16
from .plan import Action

if TYPE_CHECKING:
    from .machine import Machine

I16 = np.int16


def check_elem(name: str, elem: int) -> None:
    if elem not in (1, 2):
        raise BinaryError(f"{name}: element size {elem} (1 or 2 bytes)")


def elementwise(m: Machine, e: I.Elementwise) -> Action:
    if e.rows < 1 or e.cols < 1:
        raise BinaryError("ELEMENTWISE: a size is not positive")
    a = m.view(e.a_space, e.a, (e.rows, e.cols), I16)
    strides = (2 * e.b_strides[0], 2 * e.b_strides[1])
    b = m.strided(e.b_space, e.b, (e.rows, e.cols), strides, 2).view(I16)[..., 0]
    dst = m.view(I.ABUF, e.dst, (e.rows, e.cols), I16)
    kind = I.Eltwise(e.kind) if e.kind in {k.value for k in I.Eltwise} else None
    if kind is I.Eltwise.MAX:
        return lambda: np.copyto(dst, np.maximum(a, b))
    if kind is I.Eltwise.MIN:
        return lambda: np.copyto(dst, np.minimum(a, b))
    if kind in (I.Eltwise.ADD, I.Eltwise.SUB):
        p = params_from_ints(kernels_vpu.AddParams, e.qparams)
        return lambda: np.copyto(dst, kernels_vpu.add(a, b, p, I16))
    if kind is I.Eltwise.MUL:
        q = params_from_ints(kernels_vpu.MulParams, e.qparams)
        return lambda: np.copyto(dst, kernels_vpu.mul(a, b, q, I16))
    raise BinaryError(f"ELEMENTWISE: kind {e.kind} has no int16 form")


def pool(m: Machine, p: I.Pool) -> Action:
    x = m.view(I.ABUF, p.src, (1, p.in_h, p.in_w, p.c), I16)
    dst = m.view(I.ABUF, p.dst, (1, p.out_h, p.out_w, p.c), I16)
    attrs = PoolAttrs(kernel=p.kernel, stride=p.stride, pads=(p.pad_t, p.pad_l, p.pad_b, p.pad_r))
    fn = kernels_vpu.max_pool if p.kind == 0 else kernels_vpu.avg_pool
    return lambda: dst.__setitem__(..., fn(x, attrs, p.act_min, p.act_max)[:, :p.out_h, :p.out_w])


def mean(m: Machine, r: I.Mean) -> Action:
    x = m.view(I.ABUF, r.src, (1, r.n, 1, r.c), I16)
    dst = m.view(I.ABUF, r.dst, (1, 1, 1, r.c), I16)
    if r.kind in (1, 2):
        return lambda: dst.__setitem__(..., kernels_vpu.reduce_extreme(x, (1, 2), r.kind == 1))
    if r.kind != 0:
        raise BinaryError(f"MEAN: kind {r.kind} has no int16 form")
    p = params_from_ints(kernels_vpu.MeanParams, r.qparams)
    return lambda: dst.__setitem__(..., kernels_vpu.mean(x, (1, 2), p, dtype=I16))


def softmax(m: Machine, s: I.Softmax) -> Action:
    x = m.view(I.ABUF, s.src, (s.rows, s.cols), I16)
    dst = m.view(I.ABUF, s.dst, (s.rows, s.cols), I16)
    p = params_from_ints(kernels_vpu16.Softmax16Params, s.qparams)
    return lambda: dst.__setitem__(..., kernels_vpu16.softmax16(x, p))


def resize(m: Machine, r: I.Resize) -> Action:
    x = m.view(I.ABUF, r.src, (1, r.in_h, r.in_w, r.c), I16)
    dst = m.view(I.ABUF, r.dst, (1, r.out_h, r.out_w, r.c), I16)
    fn = kernels_vpu.resize_bilinear if r.mode else kernels_vpu.resize_nearest
    return lambda: dst.__setitem__(..., fn(x, (r.out_h, r.out_w), bool(r.align_corners), bool(r.half_pixel_centers)))


def sigmoid16(m: Machine, t: I.Sigmoid16) -> Action:
    x = m.view(I.ABUF, t.src, (t.n,), I16)
    dst = m.view(I.ABUF, t.dst, (t.n,), I16)
    p = params_from_ints(kernels_vpu16.Sigmoid16Params, t.qparams)
    if p.tanh not in (0, 1) or p.input_left_shift < 0 or p.input_left_shift > 31 or not 0 <= p.input_multiplier < 1 << 15:
        raise BinaryError(f"SIGMOID16: parameters {t.qparams}")
    return lambda: dst.__setitem__(..., kernels_vpu16.sigmoid16(x, p))
