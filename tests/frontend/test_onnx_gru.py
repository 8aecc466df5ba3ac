"""ONNX GRU (linear_before_reset 0 and 1) imports into the IR GRU, is quantised into npukit's
integer GRU (int8 weights per gate, int8 hidden state) and runs on the NPU with no host
segment, the simulator equal to the integer reference; outputs within a few steps of the hidden
state's scale of onnxruntime's float GRU; other configurations stay float on the host."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import npukit
from npukit.testing.gru_models import assert_runs_in_float_on_the_host, assert_within_steps, gru_feeds, gru_model, run_onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402

STEPS_OF_ERROR = 5      # hidden-scale steps (tests/quant/test_kernels_gru.py measures the bound)


@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("steps,batch,n_in,hidden,states,direction",
                         [(1, 1, 16, 32, True, "forward"), (6, 2, 8, 16, True, "forward"),
                          (5, 1, 12, 24, False, "forward"), (6, 2, 8, 16, True, "reverse"),
                          (5, 1, 12, 24, False, "bidirectional"), (4, 2, 8, 16, True, "bidirectional")])
def test_onnx_gru_on_the_npu_close_to_onnxruntime(lbr, steps, batch, n_in, hidden, states, direction, tmp_path):
    """Forward, reverse (the steps last to first) and bidirectional (one integer GRU per
    direction, outputs concatenated in ONNX's [T, 2, B, H] / [2, B, H] layout)."""
    rng = np.random.default_rng(steps + lbr)
    dirs = 2 if direction == "bidirectional" else 1
    model = gru_model(rng, steps, batch, n_in, hidden, lbr, states, direction)
    onnx.save(model, tmp_path / "gru.onnx")
    calib = gru_feeds(rng, 48, steps, batch, n_in, hidden, states, dirs)
    prog = npukit.compile(tmp_path / "gru.onnx", "npu-m", calibration=calib)
    assert prog.profile().host_ops == []
    grus = [n for n in prog.qgraph.nodes if n.op.value == "gru"]
    assert [n.attrs.reverse for n in grus] == {"forward": [False], "reverse": [True],
                                               "bidirectional": [False, True]}[direction]
    s_h = max(prog.qgraph.tensors[n.outputs[0]].quant.s for n in grus)
    held_out = gru_feeds(rng, 3, steps, batch, n_in, hidden, states, dirs)
    held_out["x"] = np.clip(held_out["x"], calib["x"].min(), calib["x"].max())   # the cell's error, not x's clipping
    feeds = [{name: v[k] for name, v in held_out.items()} for k in range(3)]
    assert_within_steps(prog, model, feeds, s_h, STEPS_OF_ERROR)
    assert_sim_equals_reference(prog, feeds[:1], check_timing_order=direction != "forward")


@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("wbuf_kib,kept", [(10, "alternating"), (4, "streamed in blocks")])
def test_gru_weights_alternating_or_streamed_equal_the_reference(lbr, wbuf_kib, kept, tmp_path):
    """A WBUF too small for both weight matrices: they alternate in one slot, or stream in
    blocks of gate channels; the simulator (program and timing order) equals the reference."""
    from npukit.api import CompiledModel
    from npukit.compiler import compile_graph
    from npukit.frontend.onnx import load_onnx
    rng = np.random.default_rng(lbr)
    steps, batch, n_in, hidden = 4, 2, 64, 32
    model = gru_model(rng, steps, batch, n_in, hidden, lbr)
    onnx.save(model, tmp_path / "gru.onnx")
    arch = small_arch(64, wbuf_kib, 64, 16, 16, "ws")
    prog, qg, _ = compile_graph(load_onnx(tmp_path / "gru.onnx"), arch,
                                gru_feeds(rng, 16, steps, batch, n_in, hidden), sqnr=False)
    notes = [layer.detail.get("tiling", "") for layer in prog.layers if layer.target == "npu"]
    assert any(kept in n for n in notes), notes
    feeds = [{k: v[0] for k, v in gru_feeds(rng, 1, steps, batch, n_in, hidden).items()}]
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds)


def test_clipped_gru_stays_float_on_the_host(tmp_path):
    """A configuration the integer GRU does not cover runs in float on the host, with the reason."""
    model = gru_model(np.random.default_rng(0), 3, 1, 4, 8, 1, direction="reverse")
    model.graph.node[0].attribute.append(onnx.helper.make_attribute("clip", 2.0))
    assert_runs_in_float_on_the_host(model, tmp_path / "clip.onnx",
                                     "ONNX GRU refused by the NPU converter: GRU with ['clip'] other than the default cell")


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_too_wide_for_wbuf_runs_in_blocks_of_cells(lbr, tmp_path):
    """npu-s's 32 KB WBUF cannot hold a 512-hidden GRU's parameter block (6 int32 rows of 3 x 512
    channels): GRU_CELL runs per block of cells, each block's parameters reloaded; the simulator
    equals the integer reference (the same model unsplit: test_onnx_gru_on_the_npu_close_to_onnxruntime)."""
    rng = np.random.default_rng(lbr)
    steps, batch, n_in, hidden = 2, 1, 8, 512
    onnx.save(gru_model(rng, steps, batch, n_in, hidden, lbr), tmp_path / "gru.onnx")
    prog = npukit.compile(tmp_path / "gru.onnx", "npu-s", calibration=gru_feeds(rng, 8, steps, batch, n_in, hidden),
                          host="never")      # the host is estimated cheaper: force the NPU lowering under test
    assert prog.profile().host_ops == []
    tiling = next(la for la in prog.profile().layers if la.op == "gru").detail["tiling"]
    assert "cell in 5 blocks of 103 cells, parameters reloaded per block" in tiling, tiling
    feed = {k: v[0] for k, v in gru_feeds(rng, 1, steps, batch, n_in, hidden).items()}
    assert_sim_equals_reference(prog, [feed], check_timing_order=False)


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_in_blocks_of_cells_batch_two_equals_the_reference(lbr, tmp_path):
    """A 4 KB WBUF splits a 64-cell GRU into blocks, batch 2 (one GRU_CELL per row and block):
    the simulator, in program and timing order, equals the integer reference."""
    from npukit.api import CompiledModel
    from npukit.codegen.context import CompileOptions
    from npukit.compiler import compile_graph
    from npukit.frontend.onnx import load_onnx
    rng = np.random.default_rng(5 + lbr)
    steps, batch, n_in, hidden = 3, 2, 24, 64
    onnx.save(gru_model(rng, steps, batch, n_in, hidden, lbr, True), tmp_path / "gru.onnx")
    arch = small_arch(64, 4, 64, 8, 8, "ws")
    prog, qg, _ = compile_graph(load_onnx(tmp_path / "gru.onnx"), arch,
                                gru_feeds(rng, 8, steps, batch, n_in, hidden, True), sqnr=False,
                                options=CompileOptions(recurrent_host="never"))   # the NPU lowering under test
    notes = [layer.detail.get("tiling", "") for layer in prog.layers if layer.target == "npu"]
    assert any("cell in" in n and "parameters reloaded" in n for n in notes), notes
    feeds = [{k: v[0] for k, v in gru_feeds(rng, 1, steps, batch, n_in, hidden, True).items()}]
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds)


def test_gru_whose_cell_fits_no_wbuf_block_is_refused_with_the_reason(tmp_path):
    """A 1 KB WBUF holds no cell's parameters beside two 240-byte weight rows: placement puts the
    GRU on the host with that reason (no compile error), its cost the CPU's per-MAC cycles times
    its MACs, and the outputs stay close to onnxruntime."""
    rng = np.random.default_rng(9)
    steps, batch, n_in, hidden = 2, 1, 8, 240
    model = gru_model(rng, steps, batch, n_in, hidden, 1)
    onnx.save(model, tmp_path / "gru.onnx")
    arch = small_arch(64, 1, 64, 8, 8, "ws")
    prog = npukit.compile(tmp_path / "gru.onnx", arch, calibration=gru_feeds(rng, 8, steps, batch, n_in, hidden))
    assert [(h["op"], h["reason"]) for h in prog.profile().host_ops] == [
        ("gru", "GRU of 240 cells: WBUF (1024 B) holds no block of one cell's parameters beside two 240-byte "
                "weight rows")]
    from npukit.cost.timing import host_cycles          # the host charges its MACs: 3 gates x (in + hidden) x hidden
    cpu = host_cycles(prog.program, 0, arch)[2]
    assert cpu == batch * steps * 3 * hidden * (n_in + hidden) * arch.host.cycles_per_element["conv"]
    feed = {k: v[0] for k, v in gru_feeds(rng, 1, steps, batch, n_in, hidden).items()}
    s_h = prog.qgraph.tensors[next(n for n in prog.qgraph.nodes if n.op.value == "gru").outputs[0]].quant.s
    assert np.abs(prog.run(feed)["y"] - run_onnxruntime(model, feed)[0]).max() <= STEPS_OF_ERROR * s_h


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru_constant_initial_state_beyond_calibration_is_not_clipped(lbr, tmp_path):
    """A constant initial_h of +-0.95 while calibration (small inputs, no state) keeps the hidden
    state near zero: its values join the hidden state's range, so the first steps start from it
    unclipped; outputs within a few steps of the hidden scale of onnxruntime's."""
    from onnx import numpy_helper
    rng = np.random.default_rng(11 + lbr)
    steps, batch, n_in, hidden = 4, 1, 8, 16
    model = gru_model(rng, steps, batch, n_in, hidden, lbr)
    h0 = (0.95 * np.sign(rng.standard_normal((1, batch, hidden)))).astype(np.float32)
    del model.graph.input[1]                                    # h0: a graph input made constant
    model.graph.initializer.append(numpy_helper.from_array(h0, "h0"))
    onnx.save(model, tmp_path / "gru.onnx")
    calib = {"x": 0.05 * gru_feeds(rng, 16, steps, batch, n_in, hidden, False)["x"]}
    prog = npukit.compile(tmp_path / "gru.onnx", "npu-m", calibration=calib)
    assert prog.profile().host_ops == []
    gru = next(n for n in prog.qgraph.nodes if n.op.value == "gru")
    s_h = prog.qgraph.tensors[gru.outputs[0]].quant.s
    feed = {"x": calib["x"][0]}
    for name, want in zip(("y", "y_h"), run_onnxruntime(model, feed)):
        err = np.abs(prog.run(feed)[name] - want).max()
        assert err <= STEPS_OF_ERROR * s_h, (name, err / s_h)
