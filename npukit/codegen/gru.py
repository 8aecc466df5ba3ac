"""Lowering of the integer GRU (IR GRU, kernels/kernels_gru) to the NPU, in the LSTM's
structure (codegen/lstm): the input part of the gates for a chunk of steps in one CONV (a 1x1
over [B, steps, I], 3C output channels, zero point x_zp) into ACC; per step the recurrent
CONVs of the hidden state [B, C] (zero point h_zp) and GRU_CELL on the VPU. With
linear_before_reset 1 a step is the z, r CONV (2C channels), the n CONV (C) and GRU_CELL mode
1; with 0 the n gate multiplies r h, so a step is the z, r CONV, GRU_CELL mode 0 (r h as int8),
the n CONV of that, then mode 1. The hidden state ping-pongs between two ABUF buffers, each
step's copied to the output by a DMA; weights as codegen/recurrent places them. When the
per-channel parameter block (I.GRU_PARAM_ROWS int32 rows of 3C) and two weight rows do not fit
WBUF, GRU_CELL runs per block of cells and batch row, the gate channels reordered block by block
(recurrent.gate_order; the recurrent z, r rows by blocks of z and r) and each block's parameters
reloaded into two alternating WBUF slots before its cell. A reverse GRU takes its chunks from
the end of the sequence and its steps last to first, as a reverse LSTM. ONNX RNN (GruAttrs.rnn)
is the same lowering with one gate: per step the recurrent CONV (C channels) and GRU_CELL in
its RNN mode.
"""
from __future__ import annotations

import numpy as np

from ..errors import ScheduleError
from ..ir.graph import DType, Graph, Node
from ..isa import instructions as I
from ..isa.immediates import params_to_ints
from .context import Ctx
from .emitter import contiguous, dma
from .recurrent import RecurrentWeights, cell_blocks, gate_order, split_cells

PARAM_BYTES = 4 * 3 * I.GRU_PARAM_ROWS     # parameter bytes per cell


def _dims(g: Graph, node: Node) -> tuple[int, int, int, int]:
    b, t, i = g.tensors[node.inputs[0]].shape
    return b, t, i, g.tensors[node.inputs[5]].shape[1]


def n_gates(node: Node) -> int:
    """3 for the GRU, 1 for ONNX RNN's single-gate cell."""
    return 1 if node.attrs.rnn else 3


def _resets(node: Node) -> bool:
    """The step writes r h (GRU_CELL mode 0) before the n gate's CONV."""
    return not node.attrs.rnn and not node.attrs.linear_before_reset


def cells_per_block(i: int, c: int, wbuf: int, per_cell: int = PARAM_BYTES) -> int:
    """The most cells one GRU_CELL covers: c when the parameter block fits WBUF beside two
    weight rows, else what two parameter slots in half of WBUF hold (< 1: none)."""
    if I.align(per_cell * c) + 64 + 4 * max(i, c) <= wbuf:
        return c
    return min(c - 1, split_cells(per_cell, max(i, c), wbuf))


def gru_support(g: Graph, node: Node, work_abuf: int, arch=None) -> str:
    """'' if the NPU runs the GRU, else why not: its state and one step's input in ABUF and, for
    `arch`, the parameters of one cell and two weight rows in WBUF (ACC is checked when lowering)."""
    what = "RNN" if node.attrs.rnn else "GRU"
    if any(g.tensors[t].dtype is not DType.I8 for t in (node.inputs[0], node.outputs[0])):
        return f"{what} with other than int8 input and output"
    b, _, i, c = _dims(g, node)
    need = (2 + _resets(node)) * I.align(b * c) + I.align(b * i)
    if need > work_abuf:
        return f"{what} state and one step's input ({need} B) larger than ABUF"
    if arch is not None and cells_per_block(i, c, arch.wbuf_bytes, 4 * n_gates(node) * I.GRU_PARAM_ROWS) < 1:
        return (f"{what} of {c} cells: WBUF ({arch.wbuf_bytes} B) holds no block of one cell's parameters beside "
                f"two {max(i, c)}-byte weight rows")
    return ""


def gru_macs(g: Graph, node: Node) -> int:
    b, t, i, c = _dims(g, node)
    return b * t * n_gates(node) * c * (i + c)


def lower_gru(ctx: Ctx, g: Graph, node: Node) -> dict:
    e, p = ctx.emitter, node.params
    b, steps, n_in, c = _dims(g, node)
    ng, rnn = n_gates(node), bool(node.attrs.rnn)
    gates = ng * c
    x, w_in, w_rec, _, _, h0 = node.inputs
    y = node.outputs[0]
    a_slots, w_slots, acc_slots = ctx.slots()
    cb = cells_per_block(n_in, c, w_slots.size, 4 * ng * I.GRU_PARAM_ROWS)
    if cb < 1:
        raise ScheduleError(f"{node.name}: {gru_support(g, node, 1 << 62, ctx.arch)}")
    blocks = cell_blocks(c, cb)
    cs = ctx.consts.space
    mats = [g.tensors[t].const_data.reshape(gates, -1) for t in (w_in, w_rec)]
    block = p.channels()
    if len(blocks) == 1:
        wp = w_slots.take(block.nbytes, 1)
        contiguous(e, cs, ctx.const(block, True), I.WBUF, wp[0], block.nbytes)
    else:                                                  # input channels block-major z r n, recurrent z r
        order = gate_order(c, ng, blocks)
        parts = [block[:, order[ng * c0:ng * (c0 + cn)]] for c0, cn in blocks]
        wp, params = w_slots.take(parts[0].nbytes, 2), [ctx.const(r, True) for r in parts]
        rec_order = order if rnn else np.concatenate([gate_order(c, 2, blocks), np.arange(2 * c, gates)])
        mats = [mats[0][order], mats[1][rec_order]]
    weights = RecurrentWeights(ctx, w_slots, mats, node.name)
    loads = [0]                                            # parameter slices loaded (the slot alternates)
    rec_w = c if rnn else 2 * c                            # recurrent accumulators GRU_CELL reads from `rec`

    def cell(src_t: int, stride: int, cur: int, dst: int, mode: int) -> None:
        """GRU_CELL `mode` for the step whose input part is at ACC[src_t]: whole, or per block and row."""
        if len(blocks) == 1:
            e.emit(lambda L, d: I.GruCell(L, d, src_t, stride, rec, rec_n, wp[0], cur, dst, b, c, mode, q))
            return
        for j, (c0, cn) in enumerate(blocks):
            pw = wp[loads[0] % 2]
            loads[0] += 1
            contiguous(e, cs, params[j], I.WBUF, pw, parts[j].nbytes)
            for r in range(b):
                e.emit(lambda L, d: I.GruCell(L, d, src_t + 4 * (r * stride + ng * c0), stride,
                                              rec + 4 * (r * rec_w + rec_w // c * c0), rec_n + 4 * (r * c + c0), pw,
                                              cur + r * c + c0, dst + r * c + c0, 1, cn, mode, q))
    rec = acc_slots.take(4 * rec_w * b, 1)[0]
    rec_n = 0 if rnn else acc_slots.take(4 * b * c, 1)[0]
    row = 4 * b * gates                                    # ACC bytes of one step's input part
    states = 2 + _resets(node)                             # hidden ping-pong, r h (linear_before_reset 0)
    chunk = min(steps, (acc_slots.size - acc_slots.top - 64) // row,
                (a_slots.size - states * I.align(b * c) - 64) // max(b * n_in, 1))
    if chunk < 1:
        raise ScheduleError(f"{node.name}: one GRU step's accumulators ({row} B) do not fit ACC")
    acc_in = acc_slots.take(row * chunk, 1)[0]
    hid = a_slots.take(b * c, 2)
    reset = a_slots.take(b * c, 1)[0] if _resets(node) else 0
    xa = a_slots.take(b * chunk * n_in, 1)[0]
    st = g.tensors[h0]                                     # a constant or a tensor (a variable)
    src_space, src = (cs, ctx.const(st.const_data)) if st.is_const else (ctx.space(h0), ctx.addr(h0))
    contiguous(e, src_space, src, I.ABUF, hid[0], b * c)
    q = params_to_ints(p.cell())
    x_space, x_at, y_space, y_at = ctx.space(x), ctx.addr(x), ctx.space(y), ctx.addr(y)
    zp, back = p.hidden_zp, node.attrs.reverse
    for s0 in range(0, steps, chunk):
        tn = min(chunk, steps - s0)
        t0 = steps - s0 - tn if back else s0               # the chunk's first time index
        dma(e, x_space, x_at + t0 * n_in, (0, 0, steps * n_in, 1), I.ABUF, xa, (0, 0, tn * n_in, 1),
            (1, 1, b, tn * n_in), 1)
        weights.matmul(0, 0, gates, xa, b, tn, p.input_zp, acc_in)
        for s in range(tn):
            t = tn - 1 - s if back else s                   # within the chunk
            cur, nxt, src_t = hid[(s0 + s) % 2], hid[(s0 + s + 1) % 2], acc_in + 4 * t * gates
            weights.matmul(1, 0, rec_w, cur, b, 1, zp, rec)
            if not rnn and p.linear_before_reset:
                weights.matmul(1, 2 * c, gates, cur, b, 1, zp, rec_n)
            elif not rnn:
                cell(src_t, tn * gates, cur, reset, 0)
                weights.matmul(1, 2 * c, gates, reset, b, 1, zp, rec_n)
            cell(src_t, tn * gates, cur, nxt, p.cell_mode)
            dma(e, I.ABUF, nxt, (0, 0, c, 1), y_space, y_at + (t0 + t) * c, (0, 0, steps * c, 1), (1, 1, b, c), 1)
    if len(node.outputs) > 1:                              # the final hidden state
        contiguous(e, I.ABUF, hid[steps % 2], ctx.space(node.outputs[1]), ctx.addr(node.outputs[1]), b * c)
    split = "" if len(blocks) == 1 else f", cell in {len(blocks)} blocks of {blocks[0][1]} cells, parameters " \
        "reloaded per block"
    last = ", last step first" if back else ""
    return {"tiling": f"{chunk} of {steps} steps per input matmul{last}, {weights.describe()}{split}"}
