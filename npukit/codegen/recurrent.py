"""Weight matrices of a recurrent cell in WBUF and the CONVs that multiply by them (the
lowerings of the LSTM, codegen/lstm, and the GRU, codegen/gru), and the cell's split into blocks
of cells when its parameter block or recurrent accumulators do not fit.

All matrices stay resident when they fit beside the cell's parameter block; else, if the
largest does, they alternate in one slot (reloaded when another is needed); else they stream
through two slots in blocks of output channels, one CONV per pixel and block.
"""
from __future__ import annotations

import numpy as np

from ..errors import ScheduleError
from ..isa import instructions as I
from ..cost import costs
from .context import Ctx, SramSlots
from .emitter import contiguous


def cell_blocks(c: int, most: int) -> list[tuple[int, int]]:
    """Cells [0, c) in near-equal blocks (first cell, count) of at most `most` cells."""
    n = -(-c // max(most, 1))
    size = -(-c // n)
    return [(c0, min(size, c - c0)) for c0 in range(0, c, size)]


def split_cells(per_cell: int, widest: int, wbuf: int) -> int:
    """Cells whose parameters (`per_cell` bytes each) fit one of two slots taking at most half
    of WBUF and leaving two `widest`-byte weight rows."""
    return (min(wbuf // 2, wbuf - 64 - 4 * widest) // 2 - I.ALIGN) // per_cell


def gate_order(c: int, n_gates: int, blocks: list[tuple[int, int]]) -> np.ndarray:
    """The gate channels (gate k of cell j is channel k c + j) reordered block by block, each
    block's gates in order: block (c0, cn) takes the channels n_gates c0 to n_gates (c0 + cn),
    so one cell instruction of cn cells reads its gates and parameters contiguously."""
    return np.concatenate([k * c + np.arange(c0, c0 + cn) for c0, cn in blocks for k in range(n_gates)])


class RecurrentWeights:
    """`mats`: int8 matrices [K, k_in] (output channels by inputs), multiplied by ABUF tiles."""

    def __init__(self, ctx: Ctx, w_slots: SramSlots, mats: list[np.ndarray], what: str) -> None:
        self.ctx, self.mats = ctx, mats
        room = w_slots.size - w_slots.top - 64
        widest, most = max(m.shape[1] for m in mats), max(m.size for m in mats)
        if sum(I.align(m.size) for m in mats) <= room:
            self.kb, self.slots = 0, [w_slots.take(m.size, 1)[0] for m in mats]
        elif most <= room:                                  # one matrix at a time, alternating
            self.kb, self.slots = 0, w_slots.take(most, 1) * len(mats)
        else:
            self.kb = min(max(m.shape[0] for m in mats), room // 2 // widest - 1)
            if self.kb < 1:
                raise ScheduleError(f"{what}: WBUF holds no weight row of {widest} B beside its parameters")
            self.slots = w_slots.take(self.kb * widest, 2)
        self.whole = [ctx.const(m, True) for m in mats] if not self.kb else []
        self.blocks: dict[tuple[int, int, int], int] = {}
        self.loaded = -1                                    # the matrix in the alternating slot
        if not self.kb and len(set(self.slots)) == len(mats):
            for slot, at, m in zip(self.slots, self.whole, mats):
                contiguous(ctx.emitter, ctx.consts.space, at, I.WBUF, slot, m.size)
        self.dataflow = costs.OS if ctx.arch.mxu.dataflow == "os" else costs.WS

    def describe(self) -> str:
        if self.kb:
            return f"weights streamed in blocks of {self.kb} gate channels"
        return "weights resident" if len(set(self.slots)) == len(self.mats) else "weight matrices alternating in WBUF"

    def matmul(self, which: int, lo: int, hi: int, src: int, rows: int, cols: int, zp: int, dst: int) -> None:
        """ACC[dst] [rows * cols, hi - lo] = (X - zp) W[lo:hi]^T for X the ABUF tile [rows, cols,
        k_in] and W matrix `which`."""
        e, cs, one, m = self.ctx.emitter, self.ctx.consts.space, (1, 1), self.mats[which]
        k_in, df = m.shape[1], self.dataflow
        if not self.kb:
            if len(set(self.slots)) < len(self.mats) and self.loaded != which:
                contiguous(e, cs, self.whole[which], I.WBUF, self.slots[which], m.size)
                self.loaded = which
            w = self.slots[which] + lo * k_in
            e.emit(lambda L, d: I.Conv(L, d, src, rows, cols, k_in, 0, k_in, w, dst, rows, cols, hi - lo,
                                       one, one, one, one, 0, 0, zp, 0, df))
            return
        for n, k0 in enumerate(range(lo, hi, self.kb)):
            kn, slot = min(self.kb, hi - k0), self.slots[n % 2]
            key = (which, k0, kn)
            if key not in self.blocks:
                self.blocks[key] = self.ctx.const(m[k0:k0 + kn], True)
            contiguous(e, cs, self.blocks[key], I.WBUF, slot, kn * k_in)
            for pix in range(rows * cols):
                e.emit(lambda L, d: I.Conv(L, d, src + pix * k_in, 1, 1, k_in, 0, k_in, slot,
                                           dst + 4 * (pix * (hi - lo) + k0 - lo), 1, 1, kn, one, one, one, one, 0, 0,
                                           zp, 0, df))
