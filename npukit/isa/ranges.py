"""The memory ranges an instruction touches, one definition for the loader's checks
(isa.validate) and the reports (SRAM use, peaks)."""
from __future__ import annotations

import math

from . import instructions as I

SRAMS = (I.ABUF, I.WBUF, I.ACC)


def gather_ranges(g: I.Gather) -> list[tuple[int, int, int]]:
    """(space, first byte, end byte) of a GATHER's ids, whole table and output rows."""
    return [(g.ids_space, g.ids, g.ids + g.n * g.id_bytes), (g.src_space, g.src, g.src + g.rows * g.row_bytes),
            (g.dst_space, g.dst, g.dst + g.n * g.row_bytes)]


def sram_ranges(ins: I.Instr) -> list[tuple[int, int, int]]:
    """(SRAM space, first byte, end byte) of each SRAM range the instruction's transfers touch."""
    if isinstance(ins, I.Gather):
        return [r for r in gather_ranges(ins) if r[0] in SRAMS]
    if isinstance(ins, I.Dma):
        n = math.prod(ins.shape) * ins.elem
        return [(space, addr, addr + n) for space, addr in ((ins.src_space, ins.src), (ins.dst_space, ins.dst))
                if space in SRAMS]
    if isinstance(ins, I.Requant):
        return [(I.ACC, ins.src, ins.src + (8 if ins.mode in (2, 3) else 4) * ins.n_pix * ins.k)]
    return []


def operands(ins: I.Instr) -> list[tuple[int, int, int]]:
    """(SRAM space, first byte, end byte) of the SRAM operands a compute instruction reads and
    writes (the views npukit.sim.semantics takes)."""
    A, W, C = I.ABUF, I.WBUF, I.ACC
    if isinstance(ins, I.Conv):
        taps = ins.kernel[0] * ins.kernel[1]
        return [(A, ins.src, ins.src + ins.in_h * ins.in_w * ins.c_stride * ins.in_bytes),
                (W, ins.wgt, ins.wgt + ins.k * taps * ins.c_len),
                (C, ins.dst, ins.dst + 4 * ins.in_bytes * ins.out_h * ins.out_w * ins.k)]
    if isinstance(ins, I.DwConv):
        k = ins.c * ins.mult
        return [(A, ins.src, ins.src + ins.in_h * ins.in_w * ins.c * ins.in_bytes),
                (W, ins.wgt, ins.wgt + ins.kernel[0] * ins.kernel[1] * k),
                (W, ins.params, ins.params + (24 if ins.mode else 12) * k),
                (A, ins.dst, ins.dst + ins.out_h * ins.out_w * k * ins.out_bytes)]
    if isinstance(ins, I.Requant):
        b = 2 if ins.mode in (2, 3) else 1
        lo = ins.dst + b * ins.dst_c_off
        return [(W, ins.params, ins.params + (24 if ins.mode else 12) * ins.k),
                (A, lo, lo + b * ((ins.n_pix - 1) * ins.dst_pix_stride + ins.k))]
    if isinstance(ins, I.MatMul):
        return [(A, ins.src, ins.src + ins.m * ins.k_len), (W, ins.wgt, ins.wgt + ins.n * ins.k_len),
                (C, ins.dst, ins.dst + 4 * ins.m * ins.n)]
    eb = I.elem_size(ins)
    if isinstance(ins, I.Elementwise):
        n, (rs, cs) = ins.rows * ins.cols * eb, ins.b_strides
        return [(ins.a_space, ins.a, ins.a + n),
                (ins.b_space, ins.b, ins.b + eb * ((ins.rows - 1) * rs + (ins.cols - 1) * cs + 1)), (A, ins.dst, ins.dst + n)]
    if isinstance(ins, (I.Lut, I.Sigmoid16)):
        n_in, n_out = ins.n, ins.n
    elif isinstance(ins, I.Pool):
        n_in, n_out = ins.in_h * ins.in_w * ins.c, ins.out_h * ins.out_w * ins.c
    elif isinstance(ins, I.Mean):
        n_in, n_out = ins.n * ins.c, ins.c
    elif isinstance(ins, I.Softmax):
        n_in = n_out = ins.rows * ins.cols
    elif isinstance(ins, I.Resize):
        n_in, n_out = ins.in_h * ins.in_w * ins.c, ins.out_h * ins.out_w * ins.c
    elif isinstance(ins, I.Magnitude):
        n_in, n_out = 4 * ins.outer * ins.c * ins.inner, ins.outer * ins.c * ins.inner
    else:
        return []
    return [(A, ins.src, ins.src + eb * n_in), (A, ins.dst, ins.dst + eb * n_out)]
