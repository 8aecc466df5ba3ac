"""int8 UNIDIRECTIONAL_SEQUENCE_LSTM models (TFLite's integer 8x8_16 LSTM) import into one IR
LSTM node, compile, and the program equals LiteRT's reference kernels (BUILTIN_REF) element
for element, batch- and time-major, with and without a cell clip."""
from __future__ import annotations

import numpy as np
import pytest

from npukit.api import compile as npu_compile
from npukit.api import loads
from npukit.frontend.tflite import load_tflite
from npukit.ir.graph import Op
from npukit.testing.lstm_models import random_lstm
from npukit.testing.tflite_builder import run_reference

CASES = [  # batch, steps, n_input, n_cell, cell_exp, cell_clip, time_major
    (1, 8, 4, 6, -11, 0.0, False),
    (2, 5, 7, 16, -12, 1.5, False),
    (3, 4, 5, 9, -10, 0.0, True),
]


@pytest.mark.parametrize("batch,steps,n_input,n_cell,cell_exp,clip,time_major", CASES)
def test_lstm_program_equals_litert(batch, steps, n_input, n_cell, cell_exp, clip, time_major, tmp_path):
    rng = np.random.default_rng(n_cell)
    case = random_lstm(rng, batch, steps, n_input, n_cell, cell_exp, clip, time_major)
    path = tmp_path / "lstm.tflite"
    path.write_bytes(case.model)
    g = load_tflite(path)
    assert [n.op for n in g.nodes if n.op is not Op.TRANSPOSE] == [Op.LSTM]
    prog = loads(npu_compile(path, "npu-m").to_bytes())       # through the binary
    for _ in range(3):
        x = rng.integers(-128, 128, case.input_shape).astype(np.int8)
        got = prog.run({prog.input_names[0]: x})[prog.output_names[0]]
        np.testing.assert_array_equal(got, run_reference(case.model, [x])[0])
