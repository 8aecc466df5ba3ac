"""Lowering of the integer LSTM (IR LSTM, kernels/kernels_lstm) to the NPU.

The input part of the gates depends on x only: one CONV (a 1x1 over [B, steps, I], 4C output
channels, zero point x_zp) puts its accumulators for a chunk of steps in ACC. Then each step
is a CONV of the hidden state [B, C] by the recurrent weights (zero point h_zp) into ACC and
one LSTM_CELL (requantisations, saturating gate sums, gemmlowp logistic / tanh, cell update,
hidden output) on the VPU; the int16 cell state stays in ABUF across steps and the hidden
state ping-pongs between two ABUF buffers, each step's copied to the output by a DMA. The
initial states are constants or tensors (the persistent variables of a TFLite model); the final
ones, when the node has those outputs, are copied out at the end. A reverse LSTM takes its
chunks from the end of the sequence and its steps last to first: the same instructions.
Weights are placed by codegen/recurrent (resident, alternating or streamed). When the
per-channel parameter block (I.LSTM_PARAM_ROWS int32 rows of 4C) and two weight rows do not fit
WBUF, or one step's accumulators do not fit ACC, the cell is split into blocks of cells: the
gate channels are reordered block by block (recurrent.gate_order), a step's recurrent CONV and
LSTM_CELL run per block (and batch row), and the blocks' parameters stay resident when the whole
block fits, else are reloaded into two alternating WBUF slots before each cell.
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


def _dims(g: Graph, node: Node) -> tuple[int, int, int, int]:
    b, t, i = g.tensors[node.inputs[0]].shape
    return b, t, i, g.tensors[node.inputs[4]].shape[1]


def _abuf_fixed(b: int, c: int) -> int:
    return I.align(2 * b * c) + 2 * I.align(b * c)       # cell state, two hidden buffers


def _params_fit(i: int, c: int, wbuf: int) -> bool:
    """The whole parameter block and two streamed weight rows fit WBUF."""
    return I.align(I.LSTM_PARAM_ROWS * 4 * 4 * c) + 64 + 4 * max(i, c) <= wbuf


def cells_per_block(b: int, i: int, c: int, wbuf: int, acc: int) -> int:
    """The most cells one LSTM_CELL covers (c: the cell is not split; < 1: it does not fit):
    unsplit, the parameter block fits beside two weight rows in WBUF and a step's input part and
    recurrent accumulators fit ACC; split, two parameter slots take at most half of WBUF (leaving
    two weight rows) and a block's recurrent accumulators fit beside one step's input part."""
    acc_fits = I.align(16 * b * c) + 64 + 16 * b * c <= acc
    if _params_fit(i, c, wbuf) and acc_fits:
        return c
    by_acc = (acc - 64 - 16 * b * c - I.ALIGN) // (16 * b)
    return min(c - 1, split_cells(4 * 4 * I.LSTM_PARAM_ROWS, max(i, c), wbuf), by_acc)


def lstm_support(g: Graph, node: Node, work_abuf: int, arch=None) -> str:
    """'' if the NPU runs the LSTM, else why not: its state and one step's input in ABUF and,
    for `arch`, a block of at least one cell (its parameters and two streamed weight rows in
    WBUF, one step's input and the block's recurrent accumulators in ACC)."""
    if g.tensors[node.inputs[0]].dtype is not DType.I8 or g.tensors[node.outputs[0]].dtype is not DType.I8:
        return "LSTM with other than int8 input and output"
    b, _, i, c = _dims(g, node)
    need = _abuf_fixed(b, c) + I.align(b * i)
    if need > work_abuf:
        return f"LSTM state and one step's input ({need} B) larger than ABUF"
    if arch is not None and cells_per_block(b, i, c, arch.wbuf_bytes, arch.acc_bytes) < 1:
        return (f"LSTM of {c} cells: WBUF ({arch.wbuf_bytes} B) or ACC ({arch.acc_bytes} B) holds no block "
                f"of one cell beside {max(i, c)}-byte weight rows and a step's accumulators")
    return ""


def lstm_macs(g: Graph, node: Node) -> int:
    b, t, i, c = _dims(g, node)
    return b * t * 4 * c * (i + c)


def lower_lstm(ctx: Ctx, g: Graph, node: Node) -> dict:
    e, p = ctx.emitter, node.params
    b, steps, n_in, c = _dims(g, node)
    gates = 4 * c
    x, w_in, w_rec, _, h0, c0 = node.inputs
    y = node.outputs[0]
    a_slots, w_slots, acc_slots = ctx.slots()
    cb = cells_per_block(b, n_in, c, w_slots.size, acc_slots.size)
    if cb < 1:
        raise ScheduleError(f"{node.name}: {lstm_support(g, node, 1 << 62, ctx.arch)}")
    blocks = cell_blocks(c, cb)
    order = gate_order(c, 4, blocks)
    whole = p.channels()
    parts = [whole[:, order[4 * c0:4 * (c0 + cn)]] for c0, cn in blocks]   # each block's parameter rows
    resident = _params_fit(n_in, c, w_slots.size)
    cs = ctx.consts.space
    if resident:                                           # block-major: block (c0, cn) at 80 c0 bytes
        rows = whole if len(blocks) == 1 else np.concatenate([r.ravel() for r in parts])
        wp = w_slots.take(rows.nbytes, 1)
        contiguous(e, cs, ctx.const(rows, True), I.WBUF, wp[0], rows.nbytes)
    else:
        wp, params = w_slots.take(parts[0].nbytes, 2), [ctx.const(r, True) for r in parts]
    rec = acc_slots.take(16 * b * cb, 1)[0]
    row = 4 * b * gates                                    # ACC bytes of one step's input part
    chunk = min(steps, (acc_slots.size - acc_slots.top - 64) // row,
                (a_slots.size - _abuf_fixed(b, c) - 64) // max(b * n_in, 1))
    if chunk < 1:
        raise ScheduleError(f"{node.name}: one LSTM step's accumulators ({row} B) do not fit ACC")
    acc_in = acc_slots.take(row * chunk, 1)[0]
    cell = a_slots.take(2 * b * c, 1)[0]
    hid = a_slots.take(b * c, 2)
    xa = a_slots.take(b * chunk * n_in, 1)[0]
    for state, at, nbytes in ((c0, cell, 2 * b * c), (h0, hid[0], b * c)):   # a constant or a tensor (a variable)
        st = g.tensors[state]
        src_space, src = (cs, ctx.const(st.const_data)) if st.is_const else (ctx.space(state), ctx.addr(state))
        contiguous(e, src_space, src, I.ABUF, at, nbytes)
    w = [g.tensors[t].const_data.reshape(gates, -1) for t in (w_in, w_rec)]
    weights = RecurrentWeights(ctx, w_slots, [m[order] for m in w] if len(blocks) > 1 else w, node.name)
    q = params_to_ints(p.cell())
    x_space, x_at, y_space, y_at = ctx.space(x), ctx.addr(x), ctx.space(y), ctx.addr(y)
    back = node.attrs.reverse
    loads = 0                                              # parameter slices loaded (the slot alternates)
    for s0 in range(0, steps, chunk):
        tn = min(chunk, steps - s0)
        t0 = steps - s0 - tn if back else s0               # the chunk's first time index
        dma(e, x_space, x_at + t0 * n_in, (0, 0, steps * n_in, 1), I.ABUF, xa, (0, 0, tn * n_in, 1),
            (1, 1, b, tn * n_in), 1)
        weights.matmul(0, 0, gates, xa, b, tn, p.input_zp, acc_in)
        for s in range(tn):
            t = tn - 1 - s if back else s                   # within the chunk
            cur, nxt = hid[(s0 + s) % 2], hid[(s0 + s + 1) % 2]
            if len(blocks) == 1:
                weights.matmul(1, 0, gates, cur, b, 1, p.state_zp, rec)
                e.emit(lambda L, d: I.LstmCell(L, d, acc_in + 4 * t * gates, tn * gates, rec, wp[0], cell, nxt,
                                               b, c, q))
            for j, (k0, kn) in enumerate(blocks if len(blocks) > 1 else ()):
                weights.matmul(1, 4 * k0, 4 * (k0 + kn), cur, b, 1, p.state_zp, rec)
                if resident:
                    pw = wp[0] + 4 * I.LSTM_PARAM_ROWS * 4 * k0
                else:
                    pw, loads = wp[loads % 2], loads + 1
                    contiguous(e, cs, params[j], I.WBUF, pw, parts[j].nbytes)
                for r in range(b):
                    e.emit(lambda L, d: I.LstmCell(L, d, acc_in + 4 * ((r * tn + t) * gates + 4 * k0), tn * gates,
                                                   rec + 16 * r * kn, pw, cell + 2 * (r * c + k0),
                                                   nxt + r * c + k0, 1, kn, q))
            dma(e, I.ABUF, nxt, (0, 0, c, 1), y_space, y_at + (t0 + t) * c, (0, 0, steps * c, 1), (1, 1, b, c), 1)
    for out, at, nbytes in zip(node.outputs[1:], (hid[steps % 2], cell), (b * c, 2 * b * c)):   # final h, c
        contiguous(e, I.ABUF, at, ctx.space(out), ctx.addr(out), nbytes)
    split = "" if len(blocks) == 1 else f", cell in {len(blocks)} blocks of {blocks[0][1]} cells, parameters " + \
        ("resident" if resident else "reloaded per block")
    last = ", last step first" if back else ""
    return {"tiling": f"{chunk} of {steps} steps per input matmul{last}, {weights.describe()}{split}"}
