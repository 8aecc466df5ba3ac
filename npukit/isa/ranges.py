"""Which bytes an instruction reads and writes, written once.

The emitter derives dependency tokens from them (codegen/emitter.py), the loader checks them
against the memories (isa/validate.py), the simulator's batching and constant analysis follow
writes with them (sim/batching.py, sim/constants.py), and the reports count SRAM use with
them. Each range is the bytes the instruction's definition (sim/plain.py) may touch, a
superset only where a strided pattern has gaps or a tile's view spans channels it skips;
tests/sim/test_access_ranges.py checks them against the semantics on random states.
A HOST instruction's ranges are its segment's tensors, which the binary's host section gives.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from . import instructions as I
from .strided import extent

SRAMS = (I.ABUF, I.WBUF, I.ACC)
_new = tuple.__new__    # _new(Span, (space, lo, hi)): a Span without its generated __new__'s call (for DMAs, most
#                         instructions)


class Span(NamedTuple):
    """Bytes [lo, hi) of one memory space."""
    space: int
    lo: int
    hi: int


def reads(ins: I.Instr) -> list[Span]:
    """The byte ranges `ins` reads (none for HOST: see the module docstring)."""
    A, W, C = I.ABUF, I.WBUF, I.ACC
    if isinstance(ins, I.Dma):
        if min(ins.shape) <= 0:
            return []
        if ins.codec:
            return [_new(Span, (ins.src_space, ins.src, ins.src + ins.packed))]
        return [_new(Span, (ins.src_space, *extent(ins.src, ins.shape, ins.src_strides, ins.elem)))]
    if isinstance(ins, I.Gather):       # the ids and the whole table (any row may be named)
        return [Span(ins.ids_space, ins.ids, ins.ids + ins.n * ins.id_bytes),
                Span(ins.src_space, ins.src, ins.src + ins.rows * ins.row_bytes)]
    if isinstance(ins, I.Conv):
        taps = ins.kernel[0] * ins.kernel[1]
        out = [Span(A, ins.src, ins.src + ins.in_h * ins.in_w * ins.c_stride * ins.in_bytes),
               Span(W, ins.wgt, ins.wgt + ins.k * taps * ins.c_len)]
        return out + [_acc(ins)] if ins.accumulate else out
    if isinstance(ins, I.DwConv):
        k = ins.c * ins.mult
        return [Span(A, ins.src, ins.src + ins.in_h * ins.in_w * ins.c * ins.in_bytes),
                Span(W, ins.wgt, ins.wgt + ins.kernel[0] * ins.kernel[1] * k),
                Span(W, ins.params, ins.params + I.requant_param_bytes(ins.mode) * k)]
    if isinstance(ins, I.Requant):
        return [Span(C, ins.src, ins.src + _acc_bytes(ins) * ins.n_pix * ins.k),
                Span(W, ins.params, ins.params + I.requant_param_bytes(ins.mode) * ins.k)]
    if isinstance(ins, I.MatMul):
        out = [Span(A, ins.src, ins.src + ins.m * ins.k_len), Span(W, ins.wgt, ins.wgt + ins.n * ins.k_len)]
        return out + [_acc(ins)] if ins.accumulate else out
    if isinstance(ins, I.Elementwise):
        eb = I.elem_size(ins)
        return [Span(ins.a_space, ins.a, ins.a + ins.rows * ins.cols * eb),
                Span(ins.b_space, *extent(ins.b, (ins.rows, ins.cols), [eb * s for s in ins.b_strides], eb))]
    if isinstance(ins, I.Lut):
        return [Span(A, ins.src, ins.src + ins.n), Span(W, ins.table, ins.table + I.LUT_BYTES)]
    if isinstance(ins, I.Lut16):
        return [Span(A, ins.src, ins.src + 2 * ins.n), Span(W, ins.table, ins.table + I.LUT16_BYTES)]
    if isinstance(ins, I.Select):
        return [Span(A, a, a + ins.n) for a in (ins.cond, ins.a, ins.b)]
    if isinstance(ins, I.ArgMax):
        return [Span(A, ins.src, ins.src + ins.n * ins.c)]
    if isinstance(ins, I.LayerNorm):
        return [Span(A, ins.src, ins.src + ins.rows * ins.n * ins.in_bytes),
                Span(A, ins.params, ins.params + I.layer_norm_block(ins.n)[2])]
    if isinstance(ins, I.LstmCell):
        g = I.lstm_gates(ins.variant) * ins.c
        return [Span(C, ins.src, ins.src + 4 * ((ins.n - 1) * ins.src_stride + g)),
                Span(C, ins.rec, ins.rec + 4 * ins.n * g),
                Span(W, ins.params, ins.params + 4 * I.lstm_param_rows(ins.variant) * g),
                Span(A, ins.cell, ins.cell + 2 * ins.n * ins.c)]
    if isinstance(ins, I.GruCell):
        read, gates = I.gru_cell_gates(ins.mode)  # input-part channels read per cell, parameter block gates
        g = read * ins.c
        rnn = ins.mode in (I.GRU_RNN_TANH, I.GRU_RNN_RELU)
        out = [Span(C, ins.src, ins.src + 4 * ((ins.n - 1) * ins.src_stride + g)),
               Span(C, ins.rec, ins.rec + 4 * (1 if rnn else 2) * ins.n * ins.c),
               Span(W, ins.params, ins.params + 4 * gates * I.GRU_PARAM_ROWS * ins.c)]
        if rnn:
            return out
        out.append(Span(A, ins.h, ins.h + ins.n * ins.c))
        return out + [Span(C, ins.rec_n, ins.rec_n + 4 * ins.n * ins.c)] if ins.mode else out
    if isinstance(ins, I.Softmax) and ins.phase != I.SOFTMAX_WHOLE:   # a chunk and (after the first) the row state
        src = Span(A, ins.src, ins.src + ins.rows * ins.cols * I.elem_size(ins))
        return [src] if ins.phase == I.SOFTMAX_MAX_FIRST else [src, _softmax_state(ins)]
    v = _vector_tile(ins)
    return [Span(A, v[0], v[0] + v[1])] if v else []


def writes(ins: I.Instr) -> list[Span]:
    """The byte ranges `ins` writes (none for HOST: see the module docstring)."""
    A = I.ABUF
    if isinstance(ins, I.Dma):
        if min(ins.shape) <= 0:
            return []
        return [_new(Span, (ins.dst_space, *extent(ins.dst, ins.shape, ins.dst_strides, ins.elem)))]
    if isinstance(ins, I.Gather):
        return [Span(ins.dst_space, ins.dst, ins.dst + ins.n * ins.row_bytes)]
    if isinstance(ins, I.Fill):
        return [Span(ins.space, ins.addr, ins.addr + ins.n)]
    if isinstance(ins, (I.Conv, I.MatMul)):
        return [_acc(ins)]
    if isinstance(ins, I.DwConv):
        return [Span(A, ins.dst, ins.dst + ins.out_h * ins.out_w * ins.c * ins.mult * ins.out_bytes)]
    if isinstance(ins, I.Requant):
        b = 2 if ins.mode in (2, 3) else 1
        lo = ins.dst + b * ins.dst_c_off
        return [Span(A, lo, lo + b * ((ins.n_pix - 1) * ins.dst_pix_stride + ins.k))]
    if isinstance(ins, I.Elementwise):
        return [Span(A, ins.dst, ins.dst + ins.rows * ins.cols * I.elem_size(ins))]
    if isinstance(ins, (I.Lut, I.Select)):
        return [Span(A, ins.dst, ins.dst + ins.n)]
    if isinstance(ins, I.Lut16):
        return [Span(A, ins.dst, ins.dst + ins.n * ins.out_bytes)]
    if isinstance(ins, I.ArgMax):
        return [Span(A, ins.dst, ins.dst + ins.c * ins.elem)]
    if isinstance(ins, I.LayerNorm):
        return [Span(A, ins.dst, ins.dst + ins.rows * ins.n * ins.out_bytes)]
    if isinstance(ins, I.LstmCell):
        return [Span(A, ins.cell, ins.cell + 2 * ins.n * ins.c), Span(A, ins.dst, ins.dst + ins.n * ins.c)]
    if isinstance(ins, I.GruCell):
        return [Span(A, ins.dst, ins.dst + ins.n * ins.c)]
    if isinstance(ins, I.Softmax) and ins.phase not in (I.SOFTMAX_WHOLE, I.SOFTMAX_OUT):
        return [_softmax_state(ins)]
    v = _vector_tile(ins)
    return [Span(A, v[2], v[2] + v[3])] if v else []


def accesses(ins: I.Instr) -> list[Span]:
    return [*reads(ins), *writes(ins)]


def _acc_bytes(ins: I.Conv | I.MatMul | I.Requant) -> int:
    """Bytes per accumulator: int64 for the 16x8 forms (Conv.in_bytes 2, REQUANT modes 2 and 3)."""
    if isinstance(ins, I.Conv):
        return 4 * ins.in_bytes
    if isinstance(ins, I.Requant):
        return 8 if ins.mode in (2, 3) else 4
    return 4


def _acc(ins: I.Conv | I.MatMul) -> Span:
    n = ins.out_h * ins.out_w * ins.k if isinstance(ins, I.Conv) else ins.m * ins.n
    return Span(I.ACC, ins.dst, ins.dst + _acc_bytes(ins) * n)


def _softmax_state(ins: I.Softmax) -> Span:
    return Span(I.ABUF, ins.state, ins.state + I.SOFTMAX_STATE_BYTES * ins.rows)


def _vector_tile(ins: I.Instr) -> tuple[int, int, int, int] | None:
    """(source, its bytes, destination, its bytes) of a VPU instruction from one ABUF tile to another
    (elements of I.elem_size bytes: 2 for the int16 forms)."""
    if isinstance(ins, (I.Pool, I.Resize)):
        n_in, n_out = ins.in_h * ins.in_w * ins.c, ins.out_h * ins.out_w * ins.c
    elif isinstance(ins, I.Mean):
        n_in, n_out = ins.n * ins.c, ins.c
    elif isinstance(ins, I.Softmax):
        n_in = n_out = ins.rows * ins.cols
    elif isinstance(ins, I.Sigmoid16):      # its table is a ROM, not a program operand
        n_in = n_out = ins.n
    elif isinstance(ins, I.Magnitude):     # int16 re and im in; int8 out, or int16 (its clamp's act_max > 127)
        n_out = ins.outer * ins.c * ins.inner
        return ins.src, 4 * n_out, ins.dst, n_out * (2 if len(ins.qparams) > 4 and ins.qparams[4] > 127 else 1)
    else:
        return None
    eb = I.elem_size(ins)
    return ins.src, eb * n_in, ins.dst, eb * n_out


def moved_bytes(ins: I.Dma) -> int:
    """The bytes a DMA delivers (what its destination pattern receives)."""
    return math.prod(ins.shape) * ins.elem
