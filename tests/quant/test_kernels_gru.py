"""The integer GRU kernel (kernels_gru) against onnxruntime's float GRU on random single-op
models, linear_before_reset 0 and 1: weights quantised int8 per gate, biases int32, the input
and hidden state int8 at scales covering their ranges. Every output is within a stated number
of hidden-scale steps of float (docs/numerics.md explains the bound)."""
from __future__ import annotations

import numpy as np
import pytest

from npukit.kernels.kernels_gru import GruQuant, gru_float, gru_sequence, prepare_gru
from npukit.testing.gru_models import gru_feeds, gru_model, run_onnxruntime

STEPS_OF_ERROR = 5          # hidden-scale steps against onnxruntime: measured worst 4.3 (40 random
ARITHMETIC_STEPS = 3        # models of 10 steps); against float on the quantised operands 2.2


def _quantise(model, lbr: int, x_scale: float, h_scale: float):
    from onnx import numpy_helper
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    w, r, b = init["W"][0], init["R"][0], init["B"][0]
    c = r.shape[-1]
    ws = [float(np.float32(np.abs(w[k * c:(k + 1) * c]).max() / 127)) for k in range(3)]
    rs = [float(np.float32(np.abs(r[k * c:(k + 1) * c]).max() / 127)) for k in range(3)]
    wq = np.stack([np.round(w[k * c:(k + 1) * c] / ws[k]) for k in range(3)]).astype(np.int8)
    rq = np.stack([np.round(r[k * c:(k + 1) * c] / rs[k]) for k in range(3)]).astype(np.int8)
    b_in = (b[:3 * c] + b[3 * c:] * np.repeat([1, 1, 1 - lbr], c)).reshape(3, c)
    bq = np.round(b_in / (x_scale * np.asarray(ws)[:, None])).astype(np.int32)
    rbq = np.round(b[5 * c:] * lbr / (h_scale * rs[2])).astype(np.int32)
    p = prepare_gru(GruQuant(x_scale, 0, tuple(ws), tuple(rs), h_scale, 0), bq, rbq, lbr)
    return p, wq, rq, (w, r, b_in, b[5 * c:] * lbr)


@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("steps,batch,n_in,hidden", [(1, 1, 4, 8), (7, 2, 6, 16), (12, 3, 10, 5)])
def test_integer_gru_close_to_onnxruntime(lbr, steps, batch, n_in, hidden):
    rng = np.random.default_rng(steps * 10 + lbr)
    model = gru_model(rng, steps, batch, n_in, hidden, lbr)
    feed = {k: v[0] for k, v in gru_feeds(rng, 1, steps, batch, n_in, hidden).items()}
    x_scale, h_scale = float(np.abs(feed["x"]).max() / 127), 1 / 127
    p, wq, rq, (w, r, b_in, rb) = _quantise(model, lbr, x_scale, h_scale)
    xq = np.clip(np.round(feed["x"].transpose(1, 0, 2) / x_scale), -128, 127).astype(np.int8)
    hq = np.round(feed["h0"][0] / h_scale).astype(np.int8)
    y, h = gru_sequence(xq, hq, wq, rq, p)
    want_y, want_h = run_onnxruntime(model, feed)
    err = np.abs(y.astype(np.float64).transpose(1, 0, 2) * h_scale - want_y[:, 0]).max() / h_scale
    assert err <= STEPS_OF_ERROR, err
    np.testing.assert_array_equal(h, y[:, -1])
    # the float GRU the docs reason with is onnxruntime's ...
    fy, _ = gru_float(feed["x"].transpose(1, 0, 2), feed["h0"][0], w.reshape(3, hidden, -1),
                      r.reshape(3, hidden, hidden), b_in, rb, lbr)
    np.testing.assert_allclose(fy.transpose(1, 0, 2), want_y[:, 0], atol=1e-5)
    # ... and on the quantised operands it isolates the integer arithmetic's own error
    ws = np.abs(w.reshape(3, -1)).max(axis=1).astype(np.float32) / np.float32(127)
    rs = np.abs(r.reshape(3, -1)).max(axis=1).astype(np.float32) / np.float32(127)
    fq, _ = gru_float(xq * x_scale, hq * h_scale, wq * ws[:, None, None], rq * rs[:, None, None],
                      p.bias * x_scale * ws[:, None], p.recurrent_bias * h_scale * rs[2], lbr)
    assert np.abs(y * h_scale - fq).max() / h_scale <= ARITHMETIC_STEPS


def test_reset_before_matmul_differs_from_after():
    """The two variants are different functions: the same weights give different outputs."""
    outs = []
    for lbr in (0, 1):
        model = gru_model(np.random.default_rng(5), 6, 1, 4, 8, lbr)
        feed = {k: v[0] for k, v in gru_feeds(np.random.default_rng(6), 1, 6, 1, 4, 8).items()}
        outs.append(run_onnxruntime(model, feed)[0])
    assert np.abs(outs[0] - outs[1]).max() > 0.01


@pytest.mark.parametrize("relu", [False, True])
def test_integer_rnn_close_to_float_on_its_quantised_operands(relu):
    """ONNX RNN's single-gate cell (kernels_gru.rnn_update): over 20 random models of 10 steps
    within 2.5 hidden-scale steps of the float RNN on the same int8 weights, input and state
    (the integer arithmetic alone; measured 1.3 tanh, 2.1 relu) and within 7 of the float RNN
    (int8 weights and input too; 6.2 and 3.4)."""
    rng = np.random.default_rng(7 + relu)
    mode = 3 if relu else 2
    worst_q = worst_f = 0.0
    for _ in range(20):
        batch, steps, n_in, c = 2, 10, 8, 16
        w = rng.standard_normal((1, c, n_in)) / np.sqrt(n_in)
        r = 0.8 * rng.standard_normal((1, c, c)) / np.sqrt(c)
        b = 0.4 * rng.standard_normal((1, c))
        x = rng.standard_normal((batch, steps, n_in))
        h0 = 0.7 * np.tanh(rng.standard_normal((batch, c)))
        h0 = np.abs(h0) if relu else h0
        s_x, ws, rs = np.abs(x).max() / 127, np.abs(w).max() / 127, np.abs(r).max() / 127
        xq, wq, rq = (np.round(v / s).astype(np.int8) for v, s in ((x, s_x), (w, ws), (r, rs)))
        y_float, _ = gru_float(x, h0, w, r, b, np.zeros(c), 0, False, mode)
        s_h, zp = (max(float(y_float.max()), float(h0.max())) / 255, -128) if relu else (1 / 127, 0)
        h0q = np.clip(np.round(h0 / s_h) + zp, -128, 127).astype(np.int8)
        bq = np.round(b / (np.float32(s_x) * np.float32(ws))).astype(np.int32)
        p = prepare_gru(GruQuant(s_x, 0, (ws,), (rs,), s_h, zp), bq, np.zeros(c, np.int32), 0, mode)
        y, _ = gru_sequence(xq, h0q, wq, rq, p)
        got = (y.astype(np.float64) - zp) * s_h
        y_q, _ = gru_float(xq * s_x, (h0q - zp) * s_h, wq * ws, rq * rs, bq * s_x * ws, np.zeros(c), 0, False, mode)
        worst_q = max(worst_q, float(np.abs(got - y_q).max() / s_h))
        worst_f = max(worst_f, float(np.abs(got - y_float).max() / s_h))
    assert worst_q <= 2.5 and worst_f <= 7, (worst_q, worst_f)
