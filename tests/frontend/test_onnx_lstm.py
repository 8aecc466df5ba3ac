"""ONNX LSTM imports into the IR LSTM, is quantised as TFLite's converter quantises its integer
LSTM (int8 weights per gate, int16 cell state at a power-of-two scale) and runs on the NPU with
no host segment; outputs against onnxruntime's float LSTM within a few steps of the hidden
state's scale; other configurations stay float on the host."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.sim.reference import run_reference as int_reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402


def _model(steps: int, batch: int, n_in: int, hidden: int, seed: int, states: bool,
           direction: str = "forward", seq_lens: np.ndarray | None = None, peephole: bool = False,
           **attrs) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    w = (rng.standard_normal((dirs, 4 * hidden, n_in)) / np.sqrt(n_in)).astype(np.float32)
    r = (rng.standard_normal((dirs, 4 * hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    b = (0.3 * rng.standard_normal((dirs, 8 * hidden))).astype(np.float32)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, batch, n_in])]
    names = ["x", "W", "R", "B"]
    consts = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"))]
    if seq_lens is not None:
        consts.append(numpy_helper.from_array(seq_lens.astype(np.int32), "seq_lens"))
    if states or seq_lens is not None:
        names.append("" if seq_lens is None else "seq_lens")
    if states:
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [dirs, batch, hidden]) for n in ("h0", "c0")]
        names += ["h0", "c0"]
    if peephole:                       # P [dirs, 3H], ONNX order i, o, f
        names += [""] * (7 - len(names)) + ["P"]
        consts.append(numpy_helper.from_array((0.5 * rng.standard_normal((dirs, 3 * hidden))).astype(np.float32), "P"))
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "y_h", "y_c")]
    node = helper.make_node("LSTM", names, ["y", "y_h", "y_c"], hidden_size=hidden, direction=direction, **attrs)
    graph = helper.make_graph([node], "lstm", inputs, outputs, consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def _feeds(rng, n: int, steps: int, batch: int, n_in: int, hidden: int, states: bool,
           dirs: int = 1) -> dict[str, np.ndarray]:
    out = {"x": rng.standard_normal((n, steps, batch, n_in)).astype(np.float32)}
    if states:
        out["h0"] = (0.7 * np.tanh(rng.standard_normal((n, dirs, batch, hidden)))).astype(np.float32)
        out["c0"] = rng.standard_normal((n, dirs, batch, hidden)).astype(np.float32)
    return out


@pytest.mark.parametrize("steps,batch,n_in,hidden,states,direction",
                         [(1, 1, 16, 32, True, "forward"), (6, 2, 8, 16, True, "forward"),
                          (5, 1, 12, 24, False, "forward"), (6, 2, 8, 16, True, "reverse"),
                          (5, 1, 12, 24, False, "reverse"), (6, 2, 8, 16, True, "bidirectional"),
                          (4, 1, 12, 24, False, "bidirectional"), (6, 2, 8, 16, True, "peephole"),
                          (5, 1, 12, 24, False, "peephole bidirectional"), (6, 2, 8, 16, True, "clip"),
                          (5, 1, 12, 24, True, "clip reverse"), (6, 2, 8, 16, True, "input_forget"),
                          (5, 1, 12, 24, False, "input_forget+peephole bidirectional")])
def test_onnx_lstm_on_the_npu_close_to_onnxruntime(steps, batch, n_in, hidden, states, direction, tmp_path):
    """Forward, reverse (the steps last to first) and bidirectional (one integer LSTM per
    direction, outputs concatenated in ONNX's [T, 2, B, H] / [2, B, H] layout); the simulator
    equals the integer reference on random codes, in program and timing order."""
    path = tmp_path / "lstm.onnx"
    variant, _, direction = direction.rpartition(" ") if " " in direction else (direction, "", "forward")
    if variant in ("forward", "reverse", "bidirectional"):
        variant, direction = "", variant
    peephole = "peephole" in variant                   # TFLite's peephole cell (P's i, f, o rows)
    clip = {"clip": 0.6} if "clip" in variant else {}  # binds on many gates
    if "input_forget" in variant:                      # TFLite's CIFG: i = 1 - f
        clip["input_forget"] = 1
    dirs = 2 if direction == "bidirectional" else 1
    onnx.save(_model(steps, batch, n_in, hidden, hidden, states, direction, peephole=peephole, **clip), path)
    rng = np.random.default_rng(steps)
    prog = npukit.compile(path, "npu-m", calibration=_feeds(rng, 48, steps, batch, n_in, hidden, states, dirs))
    assert prog.profile().host_ops == []
    lstms = [n for n in prog.qgraph.nodes if n.op.value == "lstm"]
    assert [n.attrs.reverse for n in lstms] == {"forward": [False], "reverse": [True],
                                                "bidirectional": [False, True]}[direction]
    s_h = max(prog.qgraph.tensors[n.outputs[0]].quant.s for n in lstms)
    assert all(prog.qgraph.tensors[n.outputs[2]].dtype.value == "int16" for n in lstms)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    held_out = _feeds(rng, 4, steps, batch, n_in, hidden, states, dirs)
    for k in range(4):
        feed = {name: v[k] for name, v in held_out.items()}
        got = prog.run(feed)
        for name, want in zip(("y", "y_h", "y_c"), session.run(None, feed)):
            err = np.abs(got[name] - want).max()
            assert err <= 4 * s_h * (2 if name == "y_c" else 1), (name, err / s_h)
    codes = {name: rng.integers(-128, 128, prog.qgraph.tensors[name].shape).astype(prog.qgraph.tensors[name].dtype.np)
             for name in prog.qgraph.inputs}          # the simulator equals the integer reference, in any order
    order = list(np.lexsort((np.arange(len(prog.timeline().start)), prog.timeline().start)))
    want_int = int_reference(prog.qgraph, codes)
    for got_int in (prog.run_int(codes), prog.run_int(codes, order=order)):
        for name in prog.qgraph.outputs:
            np.testing.assert_array_equal(got_int[name], want_int[name], err_msg=name)


@pytest.mark.parametrize("seq_lens,attrs,reason", [
    (np.array([3, 2]), {}, "LSTM with sequence_lens other than a constant full length"),
    (None, {"clip": 2.0, "peephole": True}, "LSTM with both clip and peephole weights")])
def test_lstm_the_integer_cell_does_not_cover_stays_float_on_the_host(seq_lens, attrs, reason, tmp_path):
    """A configuration the integer LSTM does not cover runs in float on the host, with the reason."""
    path = tmp_path / "host.onnx"
    onnx.save(_model(3, 2, 4, 8, 0, False, "reverse", seq_lens, **attrs), path)
    rng = np.random.default_rng(0)
    prog = npukit.compile(path, "npu-m", calibration=_feeds(rng, 8, 3, 2, 4, 8, False))
    assert [h["reason"] for h in prog.profile().host_ops] == [f"ONNX LSTM refused by the NPU converter: {reason}"]
    feed = {name: v[0] for name, v in _feeds(rng, 1, 3, 2, 4, 8, False).items()}
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)
    for name, w in zip(("y", "y_h", "y_c"), want):
        np.testing.assert_allclose(prog.run(feed)[name], w, atol=1e-6)


def test_full_length_sequence_lens_runs_on_the_npu(tmp_path):
    """A constant sequence_lens equal to the sequence length changes nothing: the NPU runs it."""
    path = tmp_path / "lens.onnx"
    onnx.save(_model(3, 2, 4, 8, 0, False, "bidirectional", np.array([3, 3])), path)
    prog = npukit.compile(path, "npu-m", calibration=_feeds(np.random.default_rng(1), 16, 3, 2, 4, 8, False))
    assert prog.profile().host_ops == []
    assert [n.op.value for n in prog.qgraph.nodes].count("lstm") == 2


def test_state_tensor_shared_by_h_and_c_is_int16_and_requantised_apart(tmp_path):
    """silero's pattern: h0 and c0 sliced out of one `state`, Y_h and Y_c concatenated back, Y_h
    also read on (a ReLU). The shared scales would tie the int8 hidden and int16 cell states
    together: QUANTIZE copies keep them apart, the tying tensors (`state`, its slices, the concat,
    `state_n`) are int16, the ReLU reads Y_h at the LSTM's hidden scale, everything runs on the
    NPU, each step is within a few hidden-state steps of onnxruntime, and a stream fed back
    through the int16 `state_n` follows the one whose state's ends run in float on the host
    (the states carried exactly)."""
    hidden, n_in = 16, 8
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((1, 4 * hidden, n_in)) / np.sqrt(n_in)).astype(np.float32)
    r = (rng.standard_normal((1, 4 * hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    b = np.zeros((1, 8 * hidden), np.float32)
    b[0, 2 * hidden:3 * hidden] = 3.0          # forget gate open: the cell state grows past the hidden range
    consts = [numpy_helper.from_array(a, n) for a, n in ((w, "W"), (r, "R"), (b, "B"), (np.array([0], np.int64), "zero"),
                                                          (np.array([1], np.int64), "one"),
                                                          (np.array([2], np.int64), "two"))]
    nodes = [helper.make_node("Slice", ["state", "zero", "one", "zero"], ["h0"], name="h_in"),
             helper.make_node("Slice", ["state", "one", "two", "zero"], ["c0"], name="c_in"),
             helper.make_node("LSTM", ["x", "W", "R", "B", "", "h0", "c0"], ["y", "y_h", "y_c"], hidden_size=hidden),
             helper.make_node("Concat", ["y_h", "y_c"], ["state_n"], axis=0, name="state_out"),
             helper.make_node("Relu", ["y_h"], ["act"])]
    graph = helper.make_graph(nodes, "state", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, n_in]),
                                               helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, 1, hidden])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "state_n", "act")],
                              consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    path = tmp_path / "state.onnx"
    onnx.save(model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def stream(step, xs):
        state, outs = np.zeros((2, 1, hidden), np.float32), []
        for x in xs:
            outs.append((state, *step(x, state)))
            state = outs[-1][2]
        return outs
    ort_step = lambda x, st: session.run(["y", "state_n", "act"], {"x": x, "state": st})   # noqa: E731
    xs = rng.standard_normal((60, 1, 1, n_in)).astype(np.float32)
    calib = stream(ort_step, xs[:40])          # calibrate on the states a stream meets
    assert np.abs(np.stack([o[2][1] for o in calib])).max() > 3 * np.abs(np.stack([o[2][0] for o in calib])).max()
    calibration = {"x": xs[:40], "state": np.stack([o[0] for o in calib])}
    prog = npukit.compile(path, "npu-m", calibration=calibration)
    assert prog.profile().host_ops == []
    qg = prog.qgraph
    lstm = next(n for n in qg.nodes if n.op.value == "lstm")
    assert [qg.tensors[t].dtype.value for t in (lstm.inputs[4], lstm.inputs[5], *lstm.outputs)] == \
        ["int8", "int16", "int8", "int8", "int16"]
    assert qg.tensors["state"].dtype.value == qg.tensors["state_n"].dtype.value == "int16"
    relu = next(n for n in qg.nodes if n.outputs[0] == "act")
    s_h = qg.tensors[lstm.outputs[1]].quant.s
    assert qg.tensors[relu.inputs[0]].quant.s == s_h
    for x, (st, *want) in zip(xs[20:24], calib[20:24]):
        got = prog.run({"x": x, "state": st})
        for name, w_ in zip(("y", "state_n", "act"), want):
            err = np.abs(got[name] - w_)[:1] if name == "state_n" else np.abs(got[name] - w_)   # the hidden state
            assert err.max() <= 3 * s_h, (name, err.max() / s_h)
    again = npukit.compile(path, "npu-m", scales=prog.scales)      # the scales replayed: the same program
    assert again.qgraph.tensors["state"].quant == qg.tensors["state"].quant
    assert all(np.array_equal(a, b) for a, b in zip(again.run({"x": xs[41], "state": calib[5][0]}).values(),
                                                      prog.run({"x": xs[41], "state": calib[5][0]}).values()))
    ends = npukit.compile(path, "npu-m", calibration=calibration, host_nodes=("h_in", "c_in", "state_out"))
    assert ends.qgraph.tensors["state_n"].dtype.value == "float32"

    def step(p):
        return lambda x, st: [p.run({"x": x, "state": st})[n] for n in ("y", "state_n", "act")]
    for (_, *want), (_, *got) in zip(stream(step(ends), xs[40:]), stream(step(prog), xs[40:])):
        for name, w_, g_ in zip(("y", "state_n", "act"), want, got):
            assert np.abs(g_ - w_).max() <= s_h, (name, np.abs(g_ - w_).max() / s_h)


def test_lstm_too_wide_for_wbuf_runs_in_blocks_of_cells(tmp_path):
    """npu-s's 32 KB WBUF cannot hold a 512-hidden LSTM's parameter block (5 int32 rows of 4 x
    512 channels) nor its 16 KB ACC a step's input part and recurrent accumulators: the cell runs
    in blocks of cells, each block's parameters reloaded; the simulator equals the integer
    reference and the outputs are close to onnxruntime's."""
    path = tmp_path / "wide.onnx"
    onnx.save(_model(2, 1, 8, 512, 5, False), path)
    calib = _feeds(np.random.default_rng(2), 8, 2, 1, 8, 512, False)
    prog = npukit.compile(path, "npu-s", calibration=calib, host="never")   # the host is estimated cheaper
    assert prog.profile().host_ops == []
    tiling = next(la for la in prog.profile().layers if la.op == "lstm").detail["tiling"]
    assert "cell in 6 blocks of 86 cells, parameters reloaded per block" in tiling, tiling
    feed = {"x": calib["x"][0]}
    assert_sim_equals_reference(prog, [feed], check_timing_order=False)
    s_h = prog.qgraph.tensors[next(n for n in prog.qgraph.nodes if n.op.value == "lstm").outputs[0]].quant.s
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)
    assert np.abs(prog.run(feed)["y"] - want[0]).max() <= 4 * s_h


@pytest.mark.parametrize("wbuf_kib,acc_kib,hidden,kept", [(64, 2, 40, "parameters resident"),
                                                          (4, 64, 64, "parameters reloaded")])
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_lstm_in_blocks_of_cells_equals_the_reference(wbuf_kib, acc_kib, hidden, kept, direction, tmp_path):
    """Split by ACC (the whole parameter block resident, sliced per block) or by WBUF (each
    block's parameters reloaded), batch 2 (one LSTM_CELL per row and block): the simulator, in
    program and timing order, equals the integer reference."""
    from npukit.api import CompiledModel
    from npukit.codegen.context import CompileOptions
    from npukit.compiler import compile_graph
    from npukit.frontend.onnx import load_onnx
    steps, batch, n_in = 3, 2, 24
    onnx.save(_model(steps, batch, n_in, hidden, 7, True, direction), tmp_path / "lstm.onnx")
    arch = small_arch(64, wbuf_kib, acc_kib, 8, 8, "ws")
    rng = np.random.default_rng(3)
    prog, qg, _ = compile_graph(load_onnx(tmp_path / "lstm.onnx"), arch,
                                _feeds(rng, 8, steps, batch, n_in, hidden, True), sqnr=False,
                                options=CompileOptions(recurrent_host="never"))   # the NPU lowering under test
    notes = [layer.detail.get("tiling", "") for layer in prog.layers if layer.target == "npu"]
    assert any("blocks of" in n and kept in n for n in notes), notes
    feeds = [{k: v[0] for k, v in _feeds(rng, 1, steps, batch, n_in, hidden, True).items()}]
    assert_sim_equals_reference(CompiledModel(prog, arch, qg), feeds)


def test_lstm_whose_cell_fits_no_block_runs_on_the_host_charged_by_its_macs(tmp_path):
    """A 1 KB WBUF holds no cell's parameters beside two 240-byte weight rows: the integer LSTM
    runs on the host with that reason, charged the CPU's per-MAC cycles times 4 gates x (in +
    hidden) x hidden x steps, its outputs close to onnxruntime's."""
    steps, batch, n_in, hidden = 2, 1, 8, 240
    path = tmp_path / "lstm.onnx"
    onnx.save(_model(steps, batch, n_in, hidden, 4, False), path)
    arch = small_arch(64, 1, 64, 8, 8, "ws")
    calib = _feeds(np.random.default_rng(4), 8, steps, batch, n_in, hidden, False)
    prog = npukit.compile(path, arch, calibration=calib)
    assert [h["op"] for h in prog.profile().host_ops] == ["lstm"]
    assert "holds no block of one cell" in prog.profile().host_ops[0]["reason"]
    from npukit.cost.timing import host_cycles
    cpu = host_cycles(prog.program, 0, arch)[2]
    assert cpu == batch * steps * 4 * hidden * (n_in + hidden) * arch.host.cycles_per_element["conv"]
    feed = {"x": calib["x"][0]}
    s_h = prog.qgraph.tensors[next(n for n in prog.qgraph.nodes if n.op.value == "lstm").outputs[0]].quant.s
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)
    assert np.abs(prog.run(feed)["y"] - want[0]).max() <= 4 * s_h


@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_lstm_with_constant_initial_states(direction, tmp_path):
    """initial_h / initial_c as constants [dirs, B, H]: each direction starts from its own row,
    and the states' scales cover the constants (|c0| up to 5, beyond what the cell reaches from
    the calibration inputs; without that, Y is off by 16 steps of its scale)."""
    steps, batch, n_in, hidden = 3, 2, 6, 16
    dirs = 2 if direction == "bidirectional" else 1
    model = _model(steps, batch, n_in, hidden, 7, False, direction)
    rng = np.random.default_rng(8)
    h0 = (0.8 * np.tanh(3 * rng.standard_normal((dirs, batch, hidden)))).astype(np.float32)
    c0 = (2 * rng.standard_normal((dirs, batch, hidden))).astype(np.float32)
    model.graph.initializer.extend([numpy_helper.from_array(h0, "h0"), numpy_helper.from_array(c0, "c0")])
    model.graph.node[0].input.extend(["", "h0", "c0"])
    path = tmp_path / "states.onnx"
    onnx.save(model, path)
    prog = npukit.compile(path, "npu-m", calibration=_feeds(rng, 32, steps, batch, n_in, hidden, False))
    assert prog.profile().host_ops == []
    s_h = max(prog.qgraph.tensors[n.outputs[0]].quant.s for n in prog.qgraph.nodes if n.op.value == "lstm")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for k in range(2):
        feed = {"x": _feeds(rng, 1, steps, batch, n_in, hidden, False)["x"][0]}
        got = prog.run(feed)
        for name, want in zip(("y", "y_h", "y_c"), session.run(None, feed)):
            err = np.abs(got[name] - want).max()
            assert err <= 4 * s_h * (2 if name == "y_c" else 1), (name, err / s_h)
