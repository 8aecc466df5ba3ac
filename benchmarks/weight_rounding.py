"""Where the int8 weights' error lies, and what each rounding does to it (issue 13): the float
model of a corpus entry with only its conv / FC weights replaced by their dequantised int8
values, on the corpus's held-out inputs (task metric / min output cosine against float), for

  nearest     round-to-nearest at max |w| / 127 per output channel (what int8 ships)
  clip        round-to-nearest at the per-channel scale a x max |w| / 127, a in [0.5, 1] the
              one of least layer output error w_e H w_e^T on the calibration inputs (H = X^T X)
  gptq        quant.gptq (option gptq=auto)
  sequential  quant.gptq_seq (option gptq=sequential)

and per layer (--layers): the layer's own output SQNR w H w^T / e H e^T, each calibration
sample held out in turn (rounded on the others, measured on it), for nearest, clip and gptq,
and the task metric / cosine with that layer alone round-to-nearest (the rest float).

    python benchmarks/weight_rounding.py hand-landmark-lite palm-detection-lite [--layers]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from npukit.compiler import load_model  # noqa: E402
from npukit.ir.graph import Op  # noqa: E402
from npukit.kernels.float_exec import run_float  # noqa: E402
from npukit.models.corpus import CORPUS, calibration, fetch, held_out, reference, score  # noqa: E402
from npukit.opt.pipeline import optimize  # noqa: E402
from npukit.quant.calibrate import calibration_feeds  # noqa: E402
from npukit.quant.gptq import eligible_layers, gptq_rows, hessian, with_weights  # noqa: E402
from npukit.quant.gptq_seq import by_rows, sequential_subsets  # noqa: E402

ALPHAS = np.linspace(1.0, 0.5, 26)


def _err(e: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Per row e H e^T (h shared [K, K] or per row [R, K, K])."""
    return np.einsum("rk,kl,rl->r", e, h, e) if h.ndim == 2 else np.einsum("rk,rkl,rl->r", e, h, e)


def _scales(rows: np.ndarray) -> np.ndarray:
    amax = np.abs(rows).max(1)
    return np.where(amax > 0, amax / 127.0, 1.0)


def nearest(rows: np.ndarray, h: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
    s = _scales(rows) if s is None else s
    return np.clip(np.round(rows / s[:, None]), -127, 127) * s[:, None]


def clip(rows: np.ndarray, h: np.ndarray) -> np.ndarray:
    best, out = None, None
    for a in ALPHAS:
        q = nearest(rows, h, a * _scales(rows))
        e = _err(q - rows, h)
        keep = np.full(len(rows), True) if best is None else e < best
        best = e if best is None else np.where(keep, e, best)
        out = q if out is None else np.where(keep[:, None], q, out)
    assert out is not None
    return out


def gptq(rows: np.ndarray, h: np.ndarray) -> np.ndarray:
    s = _scales(rows)
    return gptq_rows(rows, s, h).astype(np.float64) * s[:, None]


PER_LAYER = {"nearest": nearest, "clip": clip, "gptq": gptq}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--layers", action="store_true", help="also the per-layer table")
    args = ap.parse_args()
    for name in args.models:
        spec, path = CORPUS[name], fetch(name)
        g = optimize(load_model(path, spec.input_shapes, spec.input_values or None))
        values = [run_float(g, f, keep_all=True) for f in calibration_feeds(g, calibration(name))]
        held = held_out(name)
        ref = reference(path, spec)
        outs_f = [ref(f) for f in held]
        names = list(outs_f[0])
        feeds = [{t: np.asarray(f.get(t, next(iter(f.values()))), np.float32) for t in g.inputs} for f in held]

        def evaluate(weights: dict) -> str:
            gg = with_weights(g, weights)
            outs = [dict(zip(names, (run_float(gg, f)[o] for o in g.outputs))) for f in feeds]
            s = score(spec, outs_f, outs)
            return f"{s.metric:.3f} / {s.cosine:.4f}"
        layers = [n for n in g.nodes if n.name in eligible_layers(g)]
        hs = {n.name: [hessian(n, g.tensors[n.inputs[1]].const_data, [v[n.inputs[0]]]) for v in values]
              for n in layers}
        print(f"{name}: {len(layers)} conv / FC layers, {len(values)} calibration samples")
        for how, fn in PER_LAYER.items():
            w = {n.inputs[1]: by_rows(n, g.tensors[n.inputs[1]].const_data, [sum(hs[n.name])], fn) for n in layers}
            print(f"  weights alone, {how}: {evaluate(w)}")
        print(f"  weights alone, sequential: {evaluate(sequential_subsets(g, values, [range(len(values))])[0])}")
        if not args.layers:
            continue
        print("  | layer | weights | " + " | ".join(f"{k} (held-out SQNR)" for k in PER_LAYER)
              + " | only this layer nearest |")
        for n in layers:
            w = g.tensors[n.inputs[1]].const_data
            sig = np.zeros(len(PER_LAYER))
            noise = np.zeros(len(PER_LAYER))
            for i in range(len(values)):
                rest = sum(h for j, h in enumerate(hs[n.name]) if j != i)
                for k, fn in enumerate(PER_LAYER.values()):
                    def measured(rows, h_rest, h_i, fn=fn, k=k):
                        noise[k] += _err(fn(rows, h_rest) - rows, h_i).sum()
                        sig[k] += _err(rows, h_i).sum()
                        return rows
                    by_rows(n, w, [rest, hs[n.name][i]], measured)
            db = " | ".join(f"{10 * np.log10(s / max(e, 1e-30)):.1f} dB" for s, e in zip(sig, noise))
            alone = evaluate({n.inputs[1]: by_rows(n, w, [sum(hs[n.name])], nearest)})
            kind = "depthwise" if n.op is Op.CONV2D and n.attrs.depthwise else n.op.value
            print(f"  | {n.name} | {kind} {tuple(w.shape)} | {db} | {alone} |", flush=True)


if __name__ == "__main__":
    main()
