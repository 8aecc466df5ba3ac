"""A float TFLite WHILE with a trip count fixed at import (a counter against a constant, as a
Keras RNN's) is unrolled (frontend/tflite_while): all on the NPU, its iterations' copies tied.
The model: a tanh recurrence over 4 steps of its input, h <- tanh(W h + x[t]) (x[t] a GATHER by
the counter), then out = h * 0.5. Oracle: LiteRT's reference kernels on the same float model."""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.frontend.tflite import load_tflite
from npukit.kernels.float_exec import run_float
from npukit.testing.tflite_builder import Operator, Subgraph, build_model, run_default
from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.tflite_builder import options as _opts

STEPS, C = 4, 8


def _model() -> bytes:
    def f(name, shape=(1, C), data=None):
        return T(name, shape, "float32", data=None if data is None else np.asarray(data, np.float32))

    def i(name, data=None):
        return T(name, (), "int32", data=None if data is None else np.asarray(data, np.int32))
    w = np.random.default_rng(3).normal(0, 0.5, (C, C))
    x, xs, h0, out, half = f("x", (STEPS, 1, C)), f("xs", (STEPS, 1, C)), f("h0", data=np.zeros((1, C))), f("out"), \
        f("half", (), 0.5)
    i0, n_out, h_out = i("i0", 0), i("n_out"), f("h_out")
    ci, cx, ch, stop, flag = i("ci"), f("cx", (STEPS, 1, C)), f("ch"), i("stop", STEPS), T("flag", (), "bool")
    cond = Subgraph((Operator("LESS", (ci, stop), (flag,), None),), (ci, cx, ch), (flag,), "cond")
    bi, bx, bh, one = i("bi"), f("bx", (STEPS, 1, C)), f("bh"), i("one", 1)
    bi1, xt, wh, pre, bh1 = i("bi1"), f("xt"), f("wh"), f("pre"), f("bh1")
    body = Subgraph((Operator("ADD", (bi, one), (bi1,), tfl.AddOptionsT()),
                     Operator("GATHER", (bx, bi), (xt,), _opts(tfl.GatherOptionsT, axis=0)),
                     Operator("FULLY_CONNECTED", (bh, f("w", (C, C), w)), (wh,), tfl.FullyConnectedOptionsT()),
                     Operator("ADD", (wh, xt), (pre,), tfl.AddOptionsT()),
                     Operator("TANH", (pre,), (bh1,), None)), (bi, bx, bh), (bi1, bx, bh1), "body")
    ops = [Operator("MUL", (x, f("ones", (STEPS, 1, C), np.ones((STEPS, 1, C)))), (xs,), tfl.MulOptionsT()),
           Operator("WHILE", (i0, xs, h0), (n_out, f("x_out", (STEPS, 1, C)), h_out),
                    _opts(tfl.WhileOptionsT, condSubgraphIndex=1, bodySubgraphIndex=2)),
           Operator("MUL", (h_out, half), (out,), tfl.MulOptionsT())]
    return build_model(ops, [x], [out], subgraphs=(cond, body))


def test_while_unrolled_equals_litert_float(tmp_path):
    path = tmp_path / "rnn.tflite"
    mb = _model()
    path.write_bytes(mb)
    g = load_tflite(path)
    assert not any(n.op.value == "host_tflite" for n in g.nodes)
    assert [len(t) for t in g.ties.groups] and all(len(t) <= STEPS for t in g.ties.groups)
    for x in np.random.default_rng(4).normal(0, 1, (3, STEPS, 1, C)).astype(np.float32):
        np.testing.assert_allclose(run_float(g, {g.inputs[0]: x})[g.outputs[0]], run_default(mb, [x])[0], atol=1e-5)


def test_while_unrolled_program_close_to_litert(tmp_path):
    """Within 0.05 of outputs in [-0.5, 0.5] (the int8 state's error carried through 4 steps)."""
    path = tmp_path / "rnn.tflite"
    mb = _model()
    path.write_bytes(mb)
    xs = np.random.default_rng(5).normal(0, 1, (16, STEPS, 1, C)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": xs[:12]}, sqnr=False)
    assert prog.profile().host_ops == []
    for x in xs[12:]:
        np.testing.assert_allclose(prog.run({"x": x})["out"], run_default(mb, [x])[0], atol=0.05)
