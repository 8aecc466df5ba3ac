"""Single-operator float ONNX GRU and RNN models (random weights) and their onnxruntime outputs: the
float oracle npukit's integer GRU (kernels_gru) is measured against."""
from __future__ import annotations

import numpy as np


def gru_model(rng: np.random.Generator, steps: int, batch: int, n_in: int, hidden: int, lbr: int,
              states: bool = True, direction: str = "forward"):
    """GRU(x [steps, batch, n_in], W, R, B[, h0]) -> y, y_h; weights ~ N(0, 1/fan_in)."""
    dirs = 2 if direction == "bidirectional" else 1
    w = (rng.standard_normal((dirs, 3 * hidden, n_in)) / np.sqrt(n_in)).astype(np.float32)
    r = (rng.standard_normal((dirs, 3 * hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    b = (0.3 * rng.standard_normal((dirs, 6 * hidden))).astype(np.float32)
    return _single_op("GRU", (w, r, b), steps, batch, n_in, hidden, states, direction, linear_before_reset=lbr)


def gru_feeds(rng: np.random.Generator, n: int, steps: int, batch: int, n_in: int, hidden: int,
              states: bool = True, dirs: int = 1) -> dict[str, np.ndarray]:
    out = {"x": rng.standard_normal((n, steps, batch, n_in)).astype(np.float32)}
    if states:
        out["h0"] = (0.7 * np.tanh(rng.standard_normal((n, dirs, batch, hidden)))).astype(np.float32)
    return out


def run_onnxruntime(model, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def rnn_model(rng: np.random.Generator, steps: int, batch: int, n_in: int, hidden: int, activation: str,
              states: bool = True, direction: str = "forward"):
    """RNN(x [steps, batch, n_in], W, R, B[, h0]) -> y, y_h with tanh or relu; weights ~ N(0, 1/fan_in)."""
    dirs = 2 if direction == "bidirectional" else 1
    w = (rng.standard_normal((dirs, hidden, n_in)) / np.sqrt(n_in)).astype(np.float32)
    r = (0.8 * rng.standard_normal((dirs, hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
    b = (0.3 * rng.standard_normal((dirs, 2 * hidden))).astype(np.float32)
    return _single_op("RNN", (w, r, b), steps, batch, n_in, hidden, states, direction,
                      activations=[activation] * dirs)


def _single_op(op: str, wrb, steps: int, batch: int, n_in: int, hidden: int, states: bool, direction: str,
               **attrs):
    """A model of one `op` node (x, W, R, B[, h0]) -> (y, y_h), opset 14."""
    from onnx import TensorProto, helper, numpy_helper
    dirs = 2 if direction == "bidirectional" else 1
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [steps, batch, n_in])]
    names = ["x", "W", "R", "B"]
    if states:
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, [dirs, batch, hidden]))
        names += ["", "h0"]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "y_h")]
    node = helper.make_node(op, names, ["y", "y_h"], hidden_size=hidden, direction=direction, **attrs)
    graph = helper.make_graph([node], op.lower(), inputs, outputs,
                              [numpy_helper.from_array(a, n) for a, n in zip(wrb, ("W", "R", "B"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    return model


def assert_runs_in_float_on_the_host(model, path, reason: str) -> None:
    """`model` (3 steps, batch 1, 4 inputs, hidden 8) compiles with its one node on the host
    for `reason`, and its outputs equal onnxruntime's (the host runs it in float)."""
    import onnx

    import npukit
    onnx.save(model, path)
    rng = np.random.default_rng(0)
    prog = npukit.compile(path, "npu-m", calibration=gru_feeds(rng, 8, 3, 1, 4, 8))
    assert [h["reason"] for h in prog.profile().host_ops] == [reason]
    feed = {name: v[0] for name, v in gru_feeds(rng, 1, 3, 1, 4, 8).items()}
    for name, want in zip(("y", "y_h"), run_onnxruntime(model, feed)):
        np.testing.assert_allclose(prog.run(feed)[name], want, atol=1e-6)


def assert_within_steps(prog, model, feeds: list[dict[str, np.ndarray]], step: float, steps: float) -> None:
    """Every output of `prog` on `feeds` has onnxruntime's shape and is within `steps` of the
    hidden state's quantisation `step` of onnxruntime's float outputs."""
    for feed in feeds:
        got = prog.run(feed)
        for name, want in zip(("y", "y_h"), run_onnxruntime(model, feed)):
            assert got[name].shape == want.shape, name
            err = np.abs(got[name] - want).max()
            assert err <= steps * step, (name, err / step)
