"""How much an LSTM's int8 hidden state costs a corpus model (issue 13): the float model is run
with only its LSTM replaced by an integer one, everything else float, and scored against the
float model on the corpus's held-out inputs:

  - float:      the float LSTM (npukit's float executor: the baseline);
  - float, int8 weights: the float LSTM with the compile's int8 weights (what they alone cost);
  - 8x8_16:     the integer LSTM the compile ships (kernels_lstm: int8 input and hidden state),
                at the quantisation `--precision` gives it (a float model's: gates in Q4.11);
(A 16x8 LSTM kernel, int16 input and hidden state, was measured the same way and not kept:
BENCHMARKS.md, 2026-12-08; `git show 35adc99`.)

Each row also gives the SQNR of the LSTM's output sequence and of the model's outputs against
float over the held-out inputs. A second table runs the integer program `--precision` ships
(the integer reference) as it is, and with each LSTM's arithmetic float inside (its int8 / int16
input and states dequantised, its outputs requantised to the program's types): the most any
LSTM kernel at the program's input and output types could give.

    python benchmarks/lstm16_gap.py silero-vad-16k [--precision int16]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from npukit.codegen.context import CompileOptions  # noqa: E402
from npukit.compiler import load_model  # noqa: E402
from npukit.ir.graph import Op  # noqa: E402
from npukit.kernels import float_exec  # noqa: E402
from npukit.kernels import kernels_lstm as kl  # noqa: E402
from npukit.measure import quantize_inputs, real_values  # noqa: E402
from npukit.sim import reference as sim_reference  # noqa: E402
from npukit.models.corpus import CORPUS, calibration, fetch, held_out, reference, score  # noqa: E402
from npukit.opt.pipeline import optimize  # noqa: E402
from npukit.ptq import quantise  # noqa: E402


def _codes(v: np.ndarray, s: float, zp: int, lo: int, hi: int, dtype) -> np.ndarray:
    return np.clip(np.round(np.asarray(v, np.float64) / s) + zp, lo, hi).astype(dtype)


def integer_lstm(qg, name: str, mode: str):
    """(float ins) -> [y, h, c] of the LSTM `name` of the quantised graph `qg` run integer."""
    node = next(n for n in qg.nodes if n.name == name)
    t = qg.tensors
    x_name, w_name, r_name = node.inputs[:3]
    xq, hq, cq = t[x_name].qp, t[node.outputs[0]].qp, t[node.outputs[2]].qp
    w, r = t[w_name].const_data, t[r_name].const_data
    sw = np.asarray(t[w_name].qp.scale, np.float64)
    p8 = node.params

    def run(ins: list[np.ndarray]) -> list[np.ndarray]:
        x, h0, c0 = ins[0], ins[4], ins[5]
        if mode == "float, int8 weights":
            return list(kl.lstm_float(x, h0, c0, w * sw[:, None, None], r * np.asarray(t[r_name].qp.scale)[:, None, None],
                                      ins[3], node.attrs.reverse, clip=node.attrs.gate_clip))
        c = _codes(c0, cq.s, 0, -32768, 32767, np.int16)
        y, h, c = kl.lstm_sequence(_codes(x, xq.s, xq.zp, -128, 127, np.int8),
                                   _codes(h0, hq.s, hq.zp, -128, 127, np.int8), c, w, r, p8, node.attrs.reverse)
        return [(y.astype(np.float64) - hq.zp) * hq.s, (h.astype(np.float64) - hq.zp) * hq.s, c * cq.s]
    return run


def float_inside(node, ins: list[np.ndarray], in_q) -> list[np.ndarray]:
    """The LSTM `node` of a quantised graph run float between its quantised inputs and outputs
    (the outputs' quantisation is node.params': the hidden state's and the cell state's)."""
    xq, wq, rq, _, hq, cq = in_q[:6]
    sw, sr = (np.asarray(q.scale, np.float64)[:, None, None] for q in (wq, rq))
    x = (ins[0].astype(np.float64) - xq.zp) * xq.s
    bias = ins[3].astype(np.float64) * np.float64(np.float32(xq.s)) * sw[:, :, 0]
    h0, c0 = (ins[4].astype(np.float64) - hq.zp) * hq.s, ins[5].astype(np.float64) * cq.s
    y, h, c = kl.lstm_float(x, h0, c0, ins[1] * sw, ins[2] * sr, bias, node.attrs.reverse,
                            clip=node.attrs.gate_clip)
    p = node.params
    out_s = hq.s if node.attrs.hidden_scale == 0 else node.attrs.hidden_scale
    return [_codes(y, out_s, p.hidden_zp, -128, 127, np.int8), _codes(h, out_s, p.hidden_zp, -128, 127, np.int8),
            _codes(c, cq.s, 0, -32768, 32767, np.int16)][:len(node.outputs)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--precision", default="int16", choices=("int8", "int16", "auto"))
    args = ap.parse_args()
    spec, path = CORPUS[args.model], fetch(args.model)
    g0 = load_model(path, spec.input_shapes, spec.input_values or None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = quantise(g0, calibration(args.model), sqnr=False,
                      options=CompileOptions(precision=args.precision, gptq="never")).graph
    g = optimize(g0)
    lstms = [n.name for n in g.nodes if n.op is Op.LSTM]
    held = held_out(args.model)
    ref = reference(path, spec)
    outs_ref = [ref(f) for f in held]
    names = list(outs_ref[0])
    feeds = [{t: np.asarray(f.get(t, next(iter(f.values()))), np.float32) for t in g.inputs} for f in held]
    plain = float_exec.run_outputs
    base = [float_exec.run_float(g, f, keep_all=True) for f in feeds]
    print(f"{args.model}, LSTMs {lstms}, quantisation of --precision {args.precision}; "
          f"against npukit's float run on {len(feeds)} held-out inputs")
    print(f"| LSTM | metric / min cosine | LSTM output SQNR | {' | '.join(g.outputs)} SQNR |")
    print("|---|---|---|" + "---|" * len(g.outputs))
    for mode in ("float", "float, int8 weights", "8x8_16"):
        runs = {n: integer_lstm(qg, n, mode) for n in lstms} if mode != "float" else {}

        def patched(node, ins):
            return runs[node.name](ins)[:len(node.outputs)] if node.name in runs else plain(node, ins)
        float_exec.run_outputs = patched
        try:
            vals = [float_exec.run_float(g, f, keep_all=True) for f in feeds]
        finally:
            float_exec.run_outputs = plain
        s = score(spec, [{n: b[o] for n, o in zip(names, g.outputs)} for b in base],
                  [{n: v[o] for n, o in zip(names, g.outputs)} for v in vals])
        dbs = []
        for keys in ([next(n for n in g.nodes if n.name == lstms[0]).outputs[0]], *([o] for o in g.outputs)):
            sig = sum(float(np.sum(np.asarray(b[k], np.float64) ** 2)) for b in base for k in keys)
            noise = sum(float(np.sum((np.asarray(b[k], np.float64) - v[k]) ** 2)) for b, v in zip(base, vals) for k in keys)
            dbs.append("inf" if noise == 0 else f"{10 * np.log10(sig / noise):.1f} dB")
        print(f"| {mode} | {s.metric:.3f} / {s.cosine:.4f} | {' | '.join(dbs)} |")
    plain_q = sim_reference.run_qoutputs
    print(f"\nthe integer program (--precision {args.precision}) against the float model")
    print("| LSTM | metric / min cosine |")
    print("|---|---|")
    for mode in ("integer (shipped)", "float inside, program's I/O types"):
        def patched_q(node, ins, in_q):
            if node.op is Op.LSTM and mode != "integer (shipped)":
                return float_inside(node, ins, in_q)
            return plain_q(node, ins, in_q)
        sim_reference.run_qoutputs = patched_q
        try:
            ivals = [sim_reference.run_reference(qg, quantize_inputs(qg, f)) for f in feeds]
        finally:
            sim_reference.run_qoutputs = plain_q
        s = score(spec, outs_ref, [{n: real_values(qg.tensors[o], v[o]) for n, o in zip(names, qg.outputs)}
                                   for v in ivals])
        print(f"| {mode} | {s.metric:.3f} / {s.cosine:.4f} |")


if __name__ == "__main__":
    main()
