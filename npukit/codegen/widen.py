"""int8 -> int16 on the VPU without rounding: a 1x1 DWCONV of weight 1 whose output stage is
the identity (multiplier 2^30, shift 1) writes the int16 values x - zp of an int8 tile, as
LiteRT's Requantize at an equal scale does. The same block with another multiplier is the
requantising QUANTIZE between int8 and int16 (codegen/wide.py)."""
from __future__ import annotations

import numpy as np

from ..isa import instructions as I
from .context import Ctx, SramSlots
from .emitter import Emitter, contiguous

IDENTITY = (1 << 30, 1)         # QuantizeMultiplier(1.0): exact


def unit_weight(ctx: Ctx, w_slots: SramSlots, multiplier: int, shift: int) -> int:
    """WBUF address of a 1x1 DWCONV's weight 1 and its output stage (bias 0, `multiplier`, `shift`)."""
    block = np.concatenate([np.array([1, 0, 0, 0], np.int8), np.array([0, multiplier, shift], np.int32).view(np.int8)])
    at = w_slots.take(16, 1)[0]
    contiguous(ctx.emitter, ctx.consts.space, ctx.const(block, True), I.WBUF, at, 16)
    return at


def widen(e: Emitter, src: int, n: int, zp: int, dst: int, unit: int) -> None:
    """int8 ABUF[src, n] -> the int16 values x - zp at dst: a 1x1 DWCONV of weight 1 whose output
    stage is the identity (`unit`: the block of `unit_weight(ctx, w_slots, *IDENTITY)`)."""
    e.emit(lambda L, d: I.DwConv(
        L, d, src=src, in_h=1, in_w=n, c=1, wgt=unit, params=unit + 4, dst=dst, out_h=1, out_w=n, mult=1,
        kernel=(1, 1), stride=(1, 1), dilation=(1, 1), pad_t=0, pad_l=0, zp=zp, out_zp=0, act_min=-32768,
        act_max=32767, engine=int(I.Engine.VPU), in_bytes=1, out_bytes=2))
