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
Weights and the per-channel parameter block (I.LSTM_PARAM_ROWS int32 rows of 4C) stay in
WBUF when both weight matrices fit; else, if one does, they alternate in one slot (the input
weights reloaded per chunk, the recurrent ones after); else they stream through two WBUF slots
in blocks of gate channels, one CONV per pixel and block (slow, but any WBUF holding a row runs it).
"""
from __future__ import annotations

from ..errors import ScheduleError
from ..ir.graph import DType, Graph, Node
from ..isa import instructions as I
from ..isa.immediates import params_to_ints
from ..cost import costs
from .context import Ctx
from .emitter import contiguous, dma


def _dims(g: Graph, node: Node) -> tuple[int, int, int, int]:
    b, t, i = g.tensors[node.inputs[0]].shape
    return b, t, i, g.tensors[node.inputs[4]].shape[1]


def _abuf_fixed(b: int, c: int) -> int:
    return I.align(2 * b * c) + 2 * I.align(b * c)       # cell state, two hidden buffers


def lstm_support(g: Graph, node: Node, work_abuf: int, arch=None) -> str:
    """'' if the NPU runs the LSTM, else why not: its state and one step's input in ABUF and,
    for `arch`, the parameter block and two streamed weight rows in WBUF, one step's input and
    recurrent accumulators in ACC."""
    if g.tensors[node.inputs[0]].dtype is not DType.I8 or g.tensors[node.outputs[0]].dtype is not DType.I8:
        return "LSTM with other than int8 input and output"
    b, _, i, c = _dims(g, node)
    need = _abuf_fixed(b, c) + I.align(b * i)
    if need > work_abuf:
        return f"LSTM state and one step's input ({need} B) larger than ABUF"
    wbuf = I.align(I.LSTM_PARAM_ROWS * 4 * 4 * c) + 64 + 4 * max(i, c)
    if arch is not None and wbuf > arch.wbuf_bytes:
        return f"LSTM parameter block and weight rows ({wbuf} B) larger than WBUF"
    acc = I.align(16 * b * c) + 64 + 16 * b * c
    if arch is not None and acc > arch.acc_bytes:
        return f"LSTM step accumulators ({acc} B) larger than ACC"
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
    block = p.channels()
    wp = w_slots.take(block.nbytes, 1)[0]
    room = w_slots.size - w_slots.top - 64
    widest = max(n_in, c)
    if I.align(gates * n_in) + I.align(gates * c) <= room:
        kb, wslots = gates, [w_slots.take(gates * n_in, 1)[0], w_slots.take(gates * c, 1)[0]]
    elif gates * widest <= room:                           # one matrix at a time, alternating
        kb, wslots = gates, w_slots.take(gates * widest, 1) * 2
    else:
        kb = min(gates, room // 2 // widest - 1)
        if kb < 1:
            raise ScheduleError(f"{node.name}: WBUF holds no LSTM weight row of {widest} B beside its parameters")
        wslots = w_slots.take(kb * widest, 2)
    rec = acc_slots.take(4 * b * gates, 1)[0]
    row = 4 * b * gates                                    # ACC bytes of one step's input part
    chunk = min(steps, (acc_slots.size - acc_slots.top - 64) // row,
                (a_slots.size - _abuf_fixed(b, c) - 64) // max(b * n_in, 1))
    if chunk < 1:
        raise ScheduleError(f"{node.name}: one LSTM step's accumulators ({row} B) do not fit ACC")
    acc_in = acc_slots.take(row * chunk, 1)[0]
    cell = a_slots.take(2 * b * c, 1)[0]
    hid = a_slots.take(b * c, 2)
    xa = a_slots.take(b * chunk * n_in, 1)[0]
    cs = ctx.consts.space
    contiguous(e, cs, ctx.const(block, True), I.WBUF, wp, block.nbytes)
    for state, at, nbytes in ((c0, cell, 2 * b * c), (h0, hid[0], b * c)):   # a constant or a tensor (a variable)
        st = g.tensors[state]
        src_space, src = (cs, ctx.const(st.const_data)) if st.is_const else (ctx.space(state), ctx.addr(state))
        contiguous(e, src_space, src, I.ABUF, at, nbytes)
    w = [g.tensors[t].const_data.reshape(gates, -1) for t in (w_in, w_rec)]
    blocks = [[(k0, min(kb, gates - k0), ctx.const(m[k0:k0 + kb], True)) for k0 in range(0, gates, kb)] for m in w]
    loaded = [-1]                                          # the matrix in the alternating slot
    if kb == gates and wslots[0] != wslots[1]:             # both matrices resident, loaded once
        for slot, ((_, _, at),), m in zip(wslots, blocks, w):
            contiguous(e, cs, at, I.WBUF, slot, m.size)
    dataflow = costs.OS if ctx.arch.mxu.dataflow == "os" else costs.WS
    one = (1, 1)

    def matmul(which: int, src: int, rows: int, cols: int, k_in: int, zp: int, dst: int) -> None:
        """ACC[dst] [rows * cols, 4C] = (X - zp) W^T for X the ABUF tile [rows, cols, k_in]: one
        CONV with the weights resident, else block by block, a CONV per pixel (the [pixel, 4C]
        layout the cell reads)."""
        if kb == gates:
            if wslots[0] == wslots[1] and loaded[0] != which:
                contiguous(e, cs, blocks[which][0][2], I.WBUF, wslots[which], w[which].size)
                loaded[0] = which
            e.emit(lambda L, d: I.Conv(L, d, src, rows, cols, k_in, 0, k_in, wslots[which], dst, rows, cols, gates,
                                       one, one, one, one, 0, 0, zp, 0, dataflow))
            return
        for n, (k0, kn, at) in enumerate(blocks[which]):
            slot = wslots[n % 2]
            contiguous(e, cs, at, I.WBUF, slot, kn * k_in)
            for pix in range(rows * cols):
                e.emit(lambda L, d: I.Conv(L, d, src + pix * k_in, 1, 1, k_in, 0, k_in, slot,
                                           dst + 4 * (pix * gates + k0), 1, 1, kn, one, one, one, one, 0, 0, zp, 0,
                                           dataflow))

    q = params_to_ints(p.cell())
    x_space, x_at, y_space, y_at = ctx.space(x), ctx.addr(x), ctx.space(y), ctx.addr(y)
    back = node.attrs.reverse
    for s0 in range(0, steps, chunk):
        tn = min(chunk, steps - s0)
        t0 = steps - s0 - tn if back else s0               # the chunk's first time index
        dma(e, x_space, x_at + t0 * n_in, (0, 0, steps * n_in, 1), I.ABUF, xa, (0, 0, tn * n_in, 1),
            (1, 1, b, tn * n_in), 1)
        matmul(0, xa, b, tn, n_in, p.input_zp, acc_in)
        for s in range(tn):
            t = tn - 1 - s if back else s                   # within the chunk
            cur, nxt = hid[(s0 + s) % 2], hid[(s0 + s + 1) % 2]
            matmul(1, cur, b, 1, c, p.state_zp, rec)
            e.emit(lambda L, d: I.LstmCell(L, d, acc_in + 4 * t * gates, tn * gates, rec, wp, cell, nxt, b, c, q))
            dma(e, I.ABUF, nxt, (0, 0, c, 1), y_space, y_at + (t0 + t) * c, (0, 0, steps * c, 1), (1, 1, b, c), 1)
    for out, at, nbytes in zip(node.outputs[1:], (hid[steps % 2], cell), (b * c, 2 * b * c)):   # final h, c
        contiguous(e, I.ABUF, at, ctx.space(out), ctx.addr(out), nbytes)
    kept = ("weights resident" if wslots[0] != wslots[1] else "weight matrices alternating in WBUF") \
        if kb == gates else f"weights streamed in blocks of {kb} gate channels"
    order = ", last step first" if back else ""
    return {"tiling": f"{chunk} of {steps} steps per input matmul{order}, {kept}"}
