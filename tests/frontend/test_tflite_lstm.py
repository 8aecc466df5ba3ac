"""int8 UNIDIRECTIONAL_SEQUENCE_LSTM models (TFLite's integer 8x8_16 LSTM) import into one IR
LSTM node, compile, and the program equals LiteRT's reference kernels (BUILTIN_REF) element
for element, batch- and time-major, with and without a cell clip, on the NPU alone (no host
segment) with its weights resident in WBUF, alternating, or streamed in blocks, the cell whole or
in blocks of cells (parameter block larger than WBUF); the hidden and
cell states persist from run to run as from invoke to invoke of one LiteRT interpreter."""
from __future__ import annotations

import numpy as np
import pytest

from npukit.api import compile as npu_compile
from npukit.api import loads
from npukit.frontend.tflite import load_tflite
from npukit.ir.graph import Op
from npukit.testing.lstm_models import random_lstm, run_stream_reference
from npukit.testing.tflite_builder import run_reference

CASES = [  # batch, steps, n_input, n_cell, cell_exp, cell_clip, time_major, arch (weights in WBUF)
    (1, 8, 4, 6, -11, 0.0, False, "npu-m", "8 of 8 steps per input matmul, weights resident"),
    (2, 5, 7, 16, -12, 1.5, False, "npu-m", "resident"),
    (3, 4, 5, 9, -10, 0.0, True, "npu-m", "resident"),
    (1, 40, 16, 24, -11, 0.0, False, "npu-s", "of 40 steps per input matmul, weights resident"),
    (1, 3, 128, 128, -11, 0.0, False, "npu-m", "alternating"),
    (2, 2, 64, 96, -12, 2.0, False, "npu-s", "streamed in blocks"),
    (2, 3, 16, 416, -11, 1.0, False, "npu-s", "parameters reloaded per block"),   # 33 KB of parameters
]


@pytest.mark.parametrize("batch,steps,n_input,n_cell,cell_exp,clip,time_major,arch,tiling", CASES)
def test_lstm_program_equals_litert(batch, steps, n_input, n_cell, cell_exp, clip, time_major, arch, tiling,
                                    tmp_path):
    rng = np.random.default_rng(n_cell)
    case = random_lstm(rng, batch, steps, n_input, n_cell, cell_exp, clip, time_major)
    path = tmp_path / "lstm.tflite"
    path.write_bytes(case.model)
    g = load_tflite(path)
    assert [n.op for n in g.nodes if n.op is not Op.TRANSPOSE] == [Op.LSTM, Op.SLICE, Op.SLICE]   # state copies
    assert len(g.variables) == 2
    compiled = npu_compile(path, arch, host="never")     # streamed cases: the host is estimated cheaper
    profile = compiled.profile()
    assert profile.host_ops == []
    assert tiling in next(la for la in profile.layers if la.name.startswith("unidirectional")).detail["tiling"]
    prog = loads(compiled.to_bytes())                          # through the binary
    xs = [rng.integers(-128, 128, case.input_shape).astype(np.int8) for _ in range(3)]
    for x, want in zip(xs, run_stream_reference(case.model, xs)):     # the state carries over
        np.testing.assert_array_equal(prog.run({prog.input_names[0]: x})[prog.output_names[0]], want)
    prog.reset_state()
    np.testing.assert_array_equal(prog.run({prog.input_names[0]: xs[1]})[prog.output_names[0]],
                                  run_reference(case.model, [xs[1]])[0])


VARIANTS = [  # cifg, peephole, norm, n_output, proj_clip, time_major, arch, tiling
    (True, False, False, 0, 0.0, False, "npu-m", "weights resident"),
    (False, True, False, 0, 0.0, True, "npu-m", "weights resident"),
    (False, False, True, 0, 0.0, False, "npu-m", "weights resident"),
    (False, False, False, 6, 0.3, False, "npu-m", "weights resident"),
    (True, True, True, 12, 0.0, True, "npu-m", "weights resident"),
    (False, True, False, 0, 0.0, False, "npu-s", "parameters reloaded per block"),   # 416 cells: 48 KB of parameters
    (True, False, False, 96, 0.5, False, "npu-s", "streamed in blocks"),
]


@pytest.mark.parametrize("cifg,peephole,norm,n_output,proj_clip,time_major,arch,tiling", VARIANTS)
def test_lstm_variants_run_on_the_npu_equal_to_litert(cifg, peephole, norm, n_output, proj_clip, time_major, arch,
                                                      tiling, tmp_path):
    """CIFG, peephole, layer-norm and projection LSTMs (alone and combined) on the NPU alone,
    equal to LiteRT's reference element for element, the state carrying over from run to run."""
    rng = np.random.default_rng(8 * cifg + 4 * peephole + 2 * norm + n_output)
    n_cell, n_input = {(True, 0): (416, 5), (True, 96): (128, 64)}.get((arch == "npu-s", n_output), (12, 5))
    case = random_lstm(rng, 2, 4, n_input, n_cell, -12, 0.0, time_major, cifg, peephole, norm, n_output, proj_clip)
    path = tmp_path / "lstm.tflite"
    path.write_bytes(case.model)
    compiled = npu_compile(path, arch, host="never")
    profile = compiled.profile()
    assert profile.host_ops == []
    assert tiling in next(la for la in profile.layers if la.name.startswith("unidirectional")).detail["tiling"]
    prog = loads(compiled.to_bytes())
    xs = [rng.integers(-128, 128, case.input_shape).astype(np.int8) for _ in range(3)]
    for x, want in zip(xs, run_stream_reference(case.model, xs)):
        np.testing.assert_array_equal(prog.run({prog.input_names[0]: x})[prog.output_names[0]], want)


def test_peephole_projecting_to_fewer_outputs_runs_on_the_host_and_equals_litert(tmp_path):
    """A variant the NPU's LSTM does not cover falls back to LiteRT on the host, with the reason."""
    rng = np.random.default_rng(5)
    case = random_lstm(rng, 2, 5, 4, 6, peephole=True, n_output=4)
    path = tmp_path / "peephole.tflite"
    path.write_bytes(case.model)
    prog = npu_compile(path, "npu-m")
    assert [h["reason"].split(": ")[-1] for h in prog.profile().host_ops] == [
        "peephole with a projection to 4 of 6 cells is not supported"]
    x = rng.integers(-128, 128, case.input_shape).astype(np.int8)
    np.testing.assert_array_equal(prog.run({prog.input_names[0]: x})[prog.output_names[0]],
                                  run_reference(case.model, [x])[0])


def test_layer_norm_lstm_whose_cells_fit_no_block_runs_on_the_host_equal_to_litert(tmp_path):
    """A layer norm normalises over all cells: npu-s's WBUF holds no parameter block of 416 such
    cells, so the integer LSTM runs on the host with that reason, still equal to LiteRT."""
    rng = np.random.default_rng(0)
    case = random_lstm(rng, 1, 3, 8, 416, -12, norm=True)
    path = tmp_path / "ln.tflite"
    path.write_bytes(case.model)
    prog = npu_compile(path, "npu-s")
    assert [(h["op"], h["reason"]) for h in prog.profile().host_ops] == [
        ("lstm", "layer-norm LSTM of 416 cells: WBUF (32768 B) or ACC (16384 B) holds no block of all its cells")]
    x = rng.integers(-128, 128, case.input_shape).astype(np.int8)
    np.testing.assert_array_equal(prog.run({prog.input_names[0]: x})[prog.output_names[0]],
                                  run_reference(case.model, [x])[0])
