"""ONNX RNN (tanh and relu; forward, reverse, bidirectional) imports as the IR GRU's single-gate
cell, is quantised into npukit's integer RNN (kernels_gru.rnn_update) and runs on the NPU with
no host segment (GRU_CELL's RNN modes), the simulator equal to the integer reference; outputs
within a few steps of the hidden state's scale of onnxruntime's float RNN."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import npukit
from npukit.testing.gru_models import assert_runs_in_float_on_the_host, assert_within_steps, gru_feeds, rnn_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402

STEPS_OF_ERROR = 7      # hidden-scale steps (tests/quant/test_kernels_gru.py measures the bound)


@pytest.mark.parametrize("activation", ["Tanh", "Relu"])
@pytest.mark.parametrize("steps,batch,n_in,hidden,states,direction",
                         [(1, 1, 16, 32, True, "forward"), (8, 2, 8, 16, True, "forward"),
                          (6, 1, 12, 24, False, "reverse"), (5, 2, 8, 16, True, "bidirectional")])
def test_onnx_rnn_on_the_npu_close_to_onnxruntime(activation, steps, batch, n_in, hidden, states, direction,
                                                  tmp_path):
    rng = np.random.default_rng(steps + len(activation))
    dirs = 2 if direction == "bidirectional" else 1
    model = rnn_model(rng, steps, batch, n_in, hidden, activation, states, direction)
    onnx.save(model, tmp_path / "rnn.onnx")
    calib = gru_feeds(rng, 48, steps, batch, n_in, hidden, states, dirs)
    if states and activation == "Relu":
        calib["h0"] = np.abs(calib["h0"])
    prog = npukit.compile(tmp_path / "rnn.onnx", "npu-m", calibration=calib)
    assert prog.profile().host_ops == []
    cells = [n for n in prog.qgraph.nodes if n.op.value == "gru"]
    assert [(n.attrs.rnn, n.attrs.reverse) for n in cells] == [
        (activation.lower(), r) for r in {"forward": [False], "reverse": [True], "bidirectional": [False, True]}[direction]]
    s_h = max(prog.qgraph.tensors[n.outputs[0]].quant.s for n in cells)
    held_out = gru_feeds(rng, 3, steps, batch, n_in, hidden, states, dirs)
    held_out["x"] = np.clip(held_out["x"], calib["x"].min(), calib["x"].max())   # the cell's error, not x's clipping
    if states and activation == "Relu":
        held_out["h0"] = np.abs(held_out["h0"])
    feeds = [{name: v[k] for name, v in held_out.items()} for k in range(3)]
    assert_within_steps(prog, model, feeds, s_h, STEPS_OF_ERROR)
    assert_sim_equals_reference(prog, feeds[:1])


@pytest.mark.parametrize("activation", ["Tanh", "Relu"])
def test_rnn_in_blocks_of_cells_equals_the_reference(activation, tmp_path):
    """A 2 KB WBUF splits a 64-cell RNN into blocks (one GRU_CELL per row and block, parameters
    reloaded): the simulator, in program and timing order, equals the integer reference."""
    from npukit.api import CompiledModel
    from npukit.codegen.context import CompileOptions
    from npukit.compiler import compile_graph
    from npukit.frontend.onnx import load_onnx
    rng = np.random.default_rng(3)
    steps, batch, n_in, hidden = 3, 2, 24, 64
    onnx.save(rnn_model(rng, steps, batch, n_in, hidden, activation), tmp_path / "rnn.onnx")
    arch = small_arch(64, 1, 64, 8, 8, "ws")
    prog, qg, _ = compile_graph(load_onnx(tmp_path / "rnn.onnx"), arch,
                                gru_feeds(rng, 8, steps, batch, n_in, hidden), sqnr=False,
                                options=CompileOptions(recurrent_host="never"))
    notes = [layer.detail.get("tiling", "") for layer in prog.layers if layer.target == "npu"]
    assert any("cell in" in n and "parameters reloaded" in n for n in notes), notes
    feeds = [{k: v[0] for k, v in gru_feeds(rng, 1, steps, batch, n_in, hidden).items()}]
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds)


def test_rnn_with_other_activations_stays_float_on_the_host(tmp_path):
    assert_runs_in_float_on_the_host(
        rnn_model(np.random.default_rng(0), 3, 1, 4, 8, "Sigmoid"), tmp_path / "rnn.onnx",
        "ONNX RNN refused by the NPU converter: RNN with activations ['sigmoid'] other than one of tanh or relu")
