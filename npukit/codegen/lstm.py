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
    return b, t, i, g.tensors[node.inputs[5]].shape[1]


def variant(g: Graph, node: Node) -> int:
    """The LSTM_CELL variant bits of the IR LSTM (CIFG: its input weights have 3 gates)."""
    a = node.attrs
    return I.LSTM_CIFG * (g.tensors[node.inputs[1]].shape[0] == 3) | I.LSTM_PEEPHOLE * a.peephole | \
        I.LSTM_LAYER_NORM * a.layer_norm | I.LSTM_GATE_CLIP * (a.gate_clip > 0)


def cell_layout(g: Graph, node: Node) -> tuple[int, int, int]:
    """(gates, parameter bytes per cell, output channels O: the projection's, else C)."""
    v = variant(g, node)
    n_gates = I.lstm_gates(v)
    return n_gates, 4 * n_gates * I.lstm_param_rows(v), g.tensors[node.inputs[4]].shape[1]


def _abuf_fixed(b: int, c: int, o: int, proj: bool) -> int:
    """Cell state, two hidden buffers and, with a projection, the cell's unprojected output."""
    return I.align(2 * b * c) + 2 * I.align(b * o) + (I.align(b * c) if proj else 0)


def _params_fit(i: int, c: int, wbuf: int, per_cell: int = 4 * 4 * I.LSTM_PARAM_ROWS) -> bool:
    """The whole parameter block and two streamed weight rows fit WBUF."""
    return I.align(per_cell * c) + 64 + 4 * max(i, c) <= wbuf


def cells_per_block(b: int, i: int, c: int, wbuf: int, acc: int, n_gates: int = 4,
                    per_cell: int = 4 * 4 * I.LSTM_PARAM_ROWS) -> int:
    """The most cells one LSTM_CELL covers (c: the cell is not split; < 1: it does not fit):
    unsplit, the parameter block fits beside two weight rows in WBUF and a step's input part and
    recurrent accumulators fit ACC; split, two parameter slots take at most half of WBUF (leaving
    two weight rows) and a block's recurrent accumulators fit beside one step's input part."""
    row = 4 * n_gates * b
    acc_fits = I.align(row * c) + 64 + row * c <= acc
    if _params_fit(i, c, wbuf, per_cell) and acc_fits:
        return c
    by_acc = (acc - 64 - row * c - I.ALIGN) // row
    return min(c - 1, split_cells(per_cell, max(i, c), wbuf), by_acc)


def lstm_support(g: Graph, node: Node, work_abuf: int, arch=None) -> str:
    """'' if the NPU runs the LSTM, else why not: its state and one step's input in ABUF and,
    for `arch`, a block of at least one cell (its parameters and two streamed weight rows in
    WBUF, one step's input and the block's recurrent accumulators in ACC; a layer-norm LSTM
    normalises over all its cells, so needs them in one block)."""
    if g.tensors[node.inputs[0]].dtype is not DType.I8 or g.tensors[node.outputs[0]].dtype is not DType.I8:
        return "LSTM with other than int8 input and output"
    b, _, i, c = _dims(g, node)
    n_gates, per_cell, o = cell_layout(g, node)
    need = _abuf_fixed(b, c, o, node.attrs.projection) + I.align(b * i)
    if need > work_abuf:
        return f"LSTM state and one step's input ({need} B) larger than ABUF"
    if arch is None:
        return ""
    acc = arch.acc_bytes - (I.align(4 * b * o) if node.attrs.projection else 0)
    cb = cells_per_block(b, max(i, o), c, arch.wbuf_bytes, acc, n_gates, per_cell)
    if cb < 1:
        return (f"LSTM of {c} cells: WBUF ({arch.wbuf_bytes} B) or ACC ({arch.acc_bytes} B) holds no block "
                f"of one cell beside {max(i, c, o)}-byte weight rows and a step's accumulators")
    if cb < c and node.attrs.layer_norm:
        return (f"layer-norm LSTM of {c} cells: WBUF ({arch.wbuf_bytes} B) or ACC ({arch.acc_bytes} B) holds "
                f"no block of all its cells")
    return ""


def lstm_macs(g: Graph, node: Node) -> int:
    b, t, i, c = _dims(g, node)
    n_gates, _, o = cell_layout(g, node)
    return b * t * (n_gates * c * (i + o) + (o * c if node.attrs.projection else 0))


def lower_lstm(ctx: Ctx, g: Graph, node: Node) -> dict:
    e, p = ctx.emitter, node.params
    b, steps, n_in, c = _dims(g, node)
    n_gates, per_cell, o = cell_layout(g, node)
    proj = p.projection
    gates = n_gates * c
    x, w_in, w_rec, _, h0, c0 = node.inputs[:6]
    y = node.outputs[0]
    a_slots, w_slots, acc_slots = ctx.slots()
    acc_room = acc_slots.size - (I.align(4 * b * o) if proj else 0)
    cb = cells_per_block(b, max(n_in, o), c, w_slots.size, acc_room, n_gates, per_cell)
    if cb < 1 or (cb < c and node.attrs.layer_norm):
        raise ScheduleError(f"{node.name}: {lstm_support(g, node, 1 << 62, ctx.arch)}")
    blocks = cell_blocks(c, cb)
    order = gate_order(c, n_gates, blocks)
    whole = p.channels()
    parts = [whole[:, order[n_gates * c0:n_gates * (c0 + cn)]] for c0, cn in blocks]   # each block's parameter rows
    resident = _params_fit(max(n_in, o), c, w_slots.size, per_cell)
    cs = ctx.consts.space
    if resident:                                           # block-major: block (c0, cn) at per_cell c0 bytes
        rows = whole if len(blocks) == 1 else np.concatenate([r.ravel() for r in parts])
        wp = w_slots.take(rows.nbytes, 1)
        contiguous(e, cs, ctx.const(rows, True), I.WBUF, wp[0], rows.nbytes)
    else:
        wp, params = w_slots.take(parts[0].nbytes, 2), [ctx.const(r, True) for r in parts]
    if proj:                                               # the projection's requantisation (REQUANT mode 0)
        prows = np.stack([proj.bias, np.full(o, proj.multiplier), np.full(o, proj.shift)]).astype(np.int32)
        pq = w_slots.take(prows.nbytes, 1)[0]
        contiguous(e, cs, ctx.const(prows, True), I.WBUF, pq, prows.nbytes)
        proj_acc = acc_slots.take(4 * b * o, 1)[0]
    rec = acc_slots.take(4 * n_gates * b * cb, 1)[0]
    row = 4 * b * gates                                    # ACC bytes of one step's input part
    chunk = min(steps, (acc_slots.size - acc_slots.top - 64) // row,
                (a_slots.size - _abuf_fixed(b, c, o, bool(proj)) - 64) // max(b * n_in, 1))
    if chunk < 1:
        raise ScheduleError(f"{node.name}: one LSTM step's accumulators ({row} B) do not fit ACC")
    acc_in = acc_slots.take(row * chunk, 1)[0]
    cell = a_slots.take(2 * b * c, 1)[0]
    hid = a_slots.take(b * o, 2)
    m_out = a_slots.take(b * c, 1)[0] if proj else 0       # the cell's output before the projection
    xa = a_slots.take(b * chunk * n_in, 1)[0]
    for state, at, nbytes in ((c0, cell, 2 * b * c), (h0, hid[0], b * o)):   # a constant or a tensor (a variable)
        st = g.tensors[state]
        src_space, src = (cs, ctx.const(st.const_data)) if st.is_const else (ctx.space(state), ctx.addr(state))
        contiguous(e, src_space, src, I.ABUF, at, nbytes)
    w = [g.tensors[t].const_data.reshape(gates, -1) for t in (w_in, w_rec)]
    mats = [m[order] for m in w] if len(blocks) > 1 else w
    weights = RecurrentWeights(ctx, w_slots, mats + ([proj.weights] if proj else []), node.name)
    q, v = params_to_ints(p.cell()), p.variant
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
            out = m_out if proj else nxt
            if len(blocks) == 1:
                weights.matmul(1, 0, gates, cur, b, 1, p.state_zp, rec)
                e.emit(lambda L, d: I.LstmCell(L, d, acc_in + 4 * t * gates, tn * gates, rec, wp[0], cell, out,
                                               b, c, q, v))
            for j, (k0, kn) in enumerate(blocks if len(blocks) > 1 else ()):
                weights.matmul(1, n_gates * k0, n_gates * (k0 + kn), cur, b, 1, p.state_zp, rec)
                if resident:
                    pw = wp[0] + per_cell * k0
                else:
                    pw, loads = wp[loads % 2], loads + 1
                    contiguous(e, cs, params[j], I.WBUF, pw, parts[j].nbytes)
                for r in range(b):
                    e.emit(lambda L, d: I.LstmCell(L, d, acc_in + 4 * ((r * tn + t) * gates + n_gates * k0),
                                                   tn * gates, rec + 4 * n_gates * r * kn, pw, cell + 2 * (r * c + k0),
                                                   out + r * c + k0, 1, kn, q, v))
            if proj:                                       # m (B, C) -> h (B, O)
                weights.matmul(2, 0, o, m_out, b, 1, p.hidden_zp, proj_acc)
                e.emit(lambda L, d: I.Requant(L, d, proj_acc, b, o, pq, nxt, o, 0, proj.output_zp, proj.act_min,
                                              proj.act_max, 0))
            dma(e, I.ABUF, nxt, (0, 0, o, 1), y_space, y_at + (t0 + t) * o, (0, 0, steps * o, 1), (1, 1, b, o), 1)
    for fin, at, nbytes in zip(node.outputs[1:], (hid[steps % 2], cell), (b * o, 2 * b * c)):   # final h, c
        contiguous(e, I.ABUF, at, ctx.space(fin), ctx.addr(fin), nbytes)
    split = "" if len(blocks) == 1 else f", cell in {len(blocks)} blocks of {blocks[0][1]} cells, parameters " + \
        ("resident" if resident else "reloaded per block")
    last = ", last step first" if back else ""
    return {"tiling": f"{chunk} of {steps} steps per input matmul{last}, {weights.describe()}{split}"}
