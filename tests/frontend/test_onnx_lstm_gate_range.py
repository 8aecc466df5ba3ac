"""A float model's integer LSTM sums its gates in Q4.11 (LSTM_CELL's LSTM_GATE_Q4), not TFLite's
Q3.12: the input part of each gate is saturated to the gate range before the recurrent part is
added, so an input part past +-8 that the recurrent part brings back (silero-vad-seq's reach
+-23) was cut to 8 first. Against onnxruntime on a model whose input and recurrent parts reach
past +-8 and partly cancel: within a few hidden steps with Q4.11, not with Q3.12; the simulator
equals the integer reference."""
from __future__ import annotations

import numpy as np
from onnx import helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit
from npukit.isa.instr_base import LSTM_GATE_Q4
from npukit.quant import recurrent_params
from npukit.sim.reference import run_reference

STEPS, N_IN, H = 12, 3, 4
I_, O_, F_, C_ = 0, 1, 2, 3                  # ONNX's gate order


def _model() -> bytes:
    """Unit 1 is driven on by its biases (h_1 near 0.7); unit 0's i, o, f gates have an input
    part of 12 + W x and take -14 h_1 from the recurrent part: float sums them to about 2,
    Q3.12 cuts the 12 to 8 first and sums to about -2."""
    rng = np.random.default_rng(3)
    w = (0.3 * rng.standard_normal((1, 4 * H, N_IN))).astype(np.float32)
    r = (0.3 * rng.standard_normal((1, 4 * H, H)) / np.sqrt(H)).astype(np.float32)
    b = np.zeros((1, 8 * H), np.float32)
    for gate in (I_, O_, F_):
        b[0, gate * H] = 12.0
        r[0, gate * H, 1] = -14.0
    for gate, v in ((I_, 3.0), (O_, 3.0), (F_, -3.0), (C_, 3.0)):
        b[0, gate * H + 1] = v
    return model_bytes([helper.make_node("LSTM", ["x", "W", "R", "B"], ["y", "y_h", "y_c"], hidden_size=H)],
                       {"x": (STEPS, 1, N_IN)}, ["y", "y_h", "y_c"], {"W": w, "R": r, "B": b}, opset=14)


def _errors(tmp_path, mb: bytes, xs: np.ndarray) -> tuple[float, float, npukit.CompiledModel]:
    """(max |y - onnxruntime's| over the held-out inputs in hidden steps, the input part's
    largest |value| in float, the program)."""
    (tmp_path / "m.onnx").write_bytes(mb)
    prog = npukit.compile(tmp_path / "m.onnx", "npu-m", calibration={"x": xs[:16]}, sqnr=False)
    s_h = next(prog.qgraph.tensors[n.outputs[0]].quant.s for n in prog.qgraph.nodes if n.op.value == "lstm")
    err = max(float(np.abs(prog.run({"x": x})["y"] - onnxruntime_outputs(mb, {"x": x})["y"]).max()) for x in xs[16:])
    return err / s_h, s_h, prog


def test_gate_sums_past_8_follow_onnxruntime_in_q4_11(tmp_path, monkeypatch):
    mb = _model()
    xs = np.random.default_rng(4).uniform(-1, 1, (20, STEPS, 1, N_IN)).astype(np.float32)
    err, _, prog = _errors(tmp_path, mb, xs)
    lstm = next(n for n in prog.qgraph.nodes if n.op.value == "lstm")
    assert lstm.params.variant & LSTM_GATE_Q4
    assert {la.target for la in prog.program.layers} == {"npu"}
    codes = {"x": np.random.default_rng(5).integers(-128, 128, (STEPS, 1, N_IN)).astype(np.int8)}
    want = run_reference(prog.qgraph, codes)
    got = prog.run_int(codes)
    for name in prog.qgraph.outputs:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    monkeypatch.setattr(recurrent_params, "FLOAT_MODEL_GATE_EXP", -12)     # TFLite's Q3.12
    err_q3, _, prog_q3 = _errors(tmp_path, mb, xs)
    assert not next(n for n in prog_q3.qgraph.nodes if n.op.value == "lstm").params.variant & LSTM_GATE_Q4
    assert err <= 4 < err_q3
