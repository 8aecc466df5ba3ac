"""The plain definition of GRU_CELL: npukit's integer GRU after its matmuls, by the kernel the
integer reference runs (kernels_gru.reset_gates / reset_hidden, mode 0; cell_update, mode 1;
rnn_update, the RNN modes)."""
from __future__ import annotations

import numpy as np

from ..errors import BinaryError
from ..isa import instructions as I
from ..isa.immediates import params_from_ints
from ..kernels import kernels_gru, kernels_lstm
from ..kernels.kernels_gru import GruCellParams
from .machine import Machine
from .plan import Action


def gru_cell(m: Machine, s: I.GruCell) -> Action:
    q = params_from_ints(GruCellParams, s.qparams)
    read, gates = I.gru_cell_gates(s.mode)
    g = read * s.c
    if min(s.n, s.c, s.src_stride - g + 1) < 1 or not 0 <= s.mode < 4 or q.linear_before_reset not in (0, 1) \
            or not -31 <= q.hidden_shift <= 30:
        raise BinaryError(f"GRU_CELL: mode {s.mode} (0 to 3), {s.n} rows of {s.c} cells, input rows {s.src_stride} "
                          f"apart (at least {g}), linear_before_reset {q.linear_before_reset}, hidden shift "
                          f"{q.hidden_shift}")
    flat = m.view(I.ACC, s.src, ((s.n - 1) * s.src_stride + g,), np.int32)
    rows = np.arange(s.n)[:, None] * s.src_stride + np.arange(g)
    rnn = s.mode in (I.GRU_RNN_TANH, I.GRU_RNN_RELU)
    rec = m.view(I.ACC, s.rec, (s.n, s.c if rnn else 2 * s.c), np.int32)
    rec_n = m.view(I.ACC, s.rec_n, (s.n, s.c), np.int32) if s.mode == 1 else None
    params = m.view(I.WBUF, s.params, (I.GRU_PARAM_ROWS, gates * s.c), np.int32)
    h = m.view(I.ABUF, s.h, (s.n, s.c), np.int8)
    dst = m.view(I.ABUF, s.dst, (s.n, s.c), np.int8)

    def run() -> None:
        bias, in_mult, in_shift, rec_mult, rec_shift, rec_bias = params.astype(np.int64)
        pre = kernels_lstm.gate_requant(flat[rows].astype(np.int64) + bias[:g], in_mult[:g],
                                        np.clip(in_shift[:g], -31, 30))
        rec_shift = np.clip(rec_shift, -31, 30)
        if rnn:
            dst[...] = kernels_gru.rnn_update(pre, rec, rec_mult, rec_shift, q, s.mode == I.GRU_RNN_RELU)
        elif rec_n is None:
            _, r = kernels_gru.reset_gates(pre, rec, rec_mult, rec_shift)
            dst[...] = kernels_gru.reset_hidden(r, h, q.hidden_zp)
        else:
            acc = np.concatenate([rec, rec_n], axis=-1)
            dst[...] = kernels_gru.cell_update(pre, acc, h, rec_mult, rec_shift, rec_bias, q)
    return run
