"""The plain definition of LSTM_CELL: one integer LSTM step after its matmuls, by the kernel
the integer reference runs (kernels_lstm.cell_update)."""
from __future__ import annotations

import numpy as np

from ..errors import BinaryError
from ..isa import instructions as I
from ..isa.immediates import params_from_ints
from ..kernels import kernels_lstm
from ..kernels.kernels_lstm import LstmCellParams
from .machine import Machine
from .plan import Action


def lstm_cell(m: Machine, s: I.LstmCell) -> Action:
    q = params_from_ints(LstmCellParams, s.qparams)
    g = I.lstm_gates(s.variant) * s.c
    if min(s.n, s.c, s.src_stride - g + 1) < 1 or not -15 <= q.cell_exp <= -9 or not 0 <= q.cell_clip < 1 << 15 \
            or not -31 <= q.hidden_shift <= 30 or not 0 <= s.variant < 32:
        raise BinaryError(f"LSTM_CELL: {s.n} rows of {s.c} cells, input rows {s.src_stride} apart (at least {g}), "
                          f"cell exponent {q.cell_exp} (-15 to -9), clip {q.cell_clip}, hidden shift {q.hidden_shift}, "
                          f"variant {s.variant} (0 to 31)")
    flat = m.view(I.ACC, s.src, ((s.n - 1) * s.src_stride + g,), np.int32)
    rows = np.arange(s.n)[:, None] * s.src_stride + np.arange(g)
    rec = m.view(I.ACC, s.rec, (s.n, g), np.int32)
    params = m.view(I.WBUF, s.params, (I.lstm_param_rows(s.variant), g), np.int32)
    cell = m.view(I.ABUF, s.cell, (s.n, s.c), np.int16)
    dst = m.view(I.ABUF, s.dst, (s.n, s.c), np.int8)

    def run() -> None:
        block = params.astype(np.int64)
        pre = kernels_lstm.gate_requant(flat[rows].astype(np.int64) + block[0], block[1], np.clip(block[2], -31, 30))
        c_new, h = kernels_lstm.cell_update(pre, rec, cell, block, q, s.variant)
        cell[...] = c_new
        dst[...] = h
    return run
