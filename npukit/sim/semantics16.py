"""Semantics of the VPU's int16 forms (TFLite's 16x8 scheme): ELEMENTWISE with `elem` 2,
SOFTMAX kind 2, SIGMOID16 and LUT16. Each binds int16 views of its tile and calls the same kernel
the reference runs (kernels_vpu with an int16 dtype, kernels_vpu16). POOL / MEAN / RESIZE
bind their views at `elem_dtype` in sim.plain, one definition for both element sizes."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import BinaryError
from ..isa import instructions as I
from ..isa.immediates import params_from_ints
from ..kernels import kernels_vpu, kernels_vpu16
from .plan import Action

if TYPE_CHECKING:
    from .machine import Machine

I16 = np.int16


def elem_dtype(name: str, elem: int) -> type[np.signedinteger]:
    """The element type of a VPU instruction's `elem` field: int8 (1) or int16 (2)."""
    if elem not in (1, 2):
        raise BinaryError(f"{name}: element size {elem} (1 or 2 bytes)")
    return np.int16 if elem == 2 else np.int8


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
    if kind is I.Eltwise.PRELU:         # b: the int16 slope (alpha), zero point 0
        r = params_from_ints(kernels_vpu.PreluParams, e.qparams)
        return lambda: np.copyto(dst, kernels_vpu.prelu(a, b, r, I16))
    raise BinaryError(f"ELEMENTWISE: kind {e.kind} has no int16 form")


def softmax(m: Machine, s: I.Softmax) -> Action:
    x = m.view(I.ABUF, s.src, (s.rows, s.cols), I16)
    dst = m.view(I.ABUF, s.dst, (s.rows, s.cols), I16)
    p = params_from_ints(kernels_vpu16.Softmax16Params, s.qparams)
    return lambda: dst.__setitem__(..., kernels_vpu16.softmax16(x, p))


def sigmoid16(m: Machine, t: I.Sigmoid16) -> Action:
    x = m.view(I.ABUF, t.src, (t.n,), I16)
    dst = m.view(I.ABUF, t.dst, (t.n,), I16)
    p = params_from_ints(kernels_vpu16.Sigmoid16Params, t.qparams)
    if p.tanh not in (0, 1) or p.input_left_shift < 0 or p.input_left_shift > 31 or not 0 <= p.input_multiplier < 1 << 15:
        raise BinaryError(f"SIGMOID16: parameters {t.qparams}")
    return lambda: dst.__setitem__(..., kernels_vpu16.sigmoid16(x, p))


def lut16(m: Machine, t: I.Lut16) -> Action:
    if t.out_bytes not in (1, 2) or t.out_bytes == 1 and not -128 <= t.out_zp <= 127 or t.out_bytes == 2 and t.out_zp:
        raise BinaryError(f"LUT16: output of {t.out_bytes} bytes with zero point {t.out_zp}")
    table = m.view(I.WBUF, t.table, (kernels_vpu16.LUT16_ENTRIES,), I16)
    x = m.view(I.ABUF, t.src, (t.n,), I16)
    dst = m.view(I.ABUF, t.dst, (t.n,), I16 if t.out_bytes == 2 else np.int8)
    p = kernels_vpu16.Lut16Params(table, t.out_bytes, t.out_zp)
    return lambda: dst.__setitem__(..., kernels_vpu16.lut16(x, p))
