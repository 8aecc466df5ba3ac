"""Which layers' int8 weight rounding costs a corpus model its task metric, and how many need
wider weights to come within 1 point of float (issue 13). The float model (npukit's float
executor, numpy) with only its conv / FC weights fake-quantised, on

  held    the corpus's held-out inputs (seeds 1000.., what `corpus.py` scores), and
  wide    --wide inputs (seeds 1000..: the held-out ones and more), and
  dev     --dev inputs (seeds 2000..), none of them held out by the corpus;

the layers are chosen on one set (`--choose`), so their effect on the others is not fitted.

The int8 baseline is the rounding `--precision auto` ships on these models (`--base gptq`:
quant.gptq on the calibration inputs; or `nearest`: max |w| / 127 per output channel). A
layer "widened" takes round-to-nearest at max |w| / (2^(bits-1) - 1) per output channel
(`--bits 16`: int16 weights). Printed:

  - the baseline and every layer widened (all-wide: the bound wider weights can reach);
  - per layer: only that layer int8 round-to-nearest (the rest float: its cost alone) and the
    baseline with only that layer widened (its gain), on the `--choose` inputs, with its
    weights and MACs;
  - the greedy prefix: layers widened in order of their cost alone (then gain) on the
    `--choose` inputs until the metric there is within `--target` of float's (1.0), then
    that prefix on every set (`--narrow`: from every layer widened, each layer back to the
    baseline, least costly alone first, where the metric stays within `--target`).

    python benchmarks/weight_layers.py palm-detection-lite [--base gptq] [--choose dev|wide|held]
        [--bits 16] [--summary]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

from npukit.compiler import load_model  # noqa: E402
from npukit.ir.graph import Graph, Node, Op  # noqa: E402
from npukit.kernels.float_exec import run_float  # noqa: E402
from npukit.models.corpus import CORPUS, calibration, fetch, held_out, reference, score  # noqa: E402
from npukit.opt.pipeline import optimize  # noqa: E402
from npukit.quant.calibrate import calibration_feeds  # noqa: E402
from npukit.quant.gptq import eligible_layers, gptq_weights, with_weights  # noqa: E402


def rounded(node: Node, w: np.ndarray, bits: int) -> np.ndarray:
    """`w` round-to-nearest, symmetric per output channel at max |w| / (2^(bits-1) - 1)."""
    top = 2 ** (bits - 1) - 1
    w64 = np.asarray(w, np.float64)
    depthwise = node.op is Op.CONV2D and node.attrs.depthwise
    rows = w64.reshape(-1, w.shape[-1]).T if depthwise else w64.reshape(w.shape[0], -1)
    s = np.abs(rows).max(1, keepdims=True) / top
    q = np.clip(np.round(rows / np.where(s > 0, s, 1.0)), -top, top) * s
    return (q.T if depthwise else q).reshape(w.shape).astype(np.float32)


def macs(g: Graph, node: Node) -> int:
    """Multiply-accumulates of a conv / FC layer: output elements x taps per output."""
    w = g.tensors[node.inputs[1]].shape
    out = int(np.prod(g.tensors[node.outputs[0]].shape))
    if node.op is Op.FULLY_CONNECTED:
        return out * int(w[-1])
    if node.attrs.depthwise:
        return out * int(w[1] * w[2])
    return out * int(np.prod(w[1:]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--base", default="gptq", choices=("gptq", "nearest"))
    ap.add_argument("--bits", type=int, default=16, help="a widened layer's weight bits")
    ap.add_argument("--dev", type=int, default=16, help="inputs of the dev set (seeds 2000..)")
    ap.add_argument("--wide", type=int, default=16, help="more held-out inputs (seeds 1000..)")
    ap.add_argument("--target", type=float, default=0.01, help="within this of float's metric (1.0)")
    ap.add_argument("--cycles", action="store_true",
                    help="also compile `--precision auto --min-sqnr 30` (npu-m) and estimate the prefix's cost")
    ap.add_argument("--narrow", action="store_true",
                    help="instead of the prefix: from every layer wide, narrow back the least costly while the target holds")
    ap.add_argument("--summary", action="store_true", help="the baseline and all-wide lines only")
    ap.add_argument("--choose", default="dev", choices=("dev", "wide", "held"), help="the inputs the layers are chosen on")
    args = ap.parse_args()
    if args.model not in CORPUS:
        ap.error(f"unknown corpus model {args.model!r}")
    spec, path = CORPUS[args.model], fetch(args.model)
    g = optimize(load_model(path, spec.input_shapes, spec.input_values or None))
    layers = [n for n in g.nodes if n.name in eligible_layers(g)]
    t0 = time.time()
    if args.base == "gptq":
        values = [run_float(g, f, keep_all=True) for f in calibration_feeds(g, calibration(args.model))]
        base = gptq_weights(g, values)
        del values
    else:
        base = {}
    base = {n.inputs[1]: base.get(n.inputs[1], rounded(n, g.tensors[n.inputs[1]].const_data, 8)) for n in layers}
    wide = {n.name: rounded(n, g.tensors[n.inputs[1]].const_data, args.bits) for n in layers}
    near8 = {n.name: rounded(n, g.tensors[n.inputs[1]].const_data, 8) for n in layers}
    ref = reference(path, spec)
    sets = {"held": held_out(args.model), "dev": [spec.sample(2000 + i) for i in range(args.dev)],
            "wide": [spec.sample(1000 + i) for i in range(args.wide)]}
    floats = {k: [ref(f) for f in v] for k, v in sets.items()}
    names = list(floats["held"][0])
    feeds = {k: [{t: np.asarray(f.get(t, next(iter(f.values()))), np.float32) for t in g.inputs} for f in v]
             for k, v in sets.items()}

    def metric(weights: dict[str, np.ndarray], which: str) -> tuple[float, float]:
        gg = with_weights(g, weights)
        outs = [dict(zip(names, (run_float(gg, f)[o] for o in g.outputs))) for f in feeds[which]]
        s = score(spec, floats[which], outs)
        return s.metric, s.cosine

    def widened(chosen: list[str]) -> dict[str, np.ndarray]:
        return {**base, **{n.inputs[1]: wide[n.name] for n in layers if n.name in chosen}}

    def show(label: str, weights: dict[str, np.ndarray]) -> None:
        cells = [f"{k} {m:.3f} / {c:.4f}" for k in sets for m, c in [metric(weights, k)]]
        print(f"  {label}: " + "; ".join(cells), flush=True)

    total_w = sum(g.tensors[n.inputs[1]].const_data.size for n in layers)
    total_m = sum(macs(g, n) for n in layers)
    print(f"{args.model}: {len(layers)} conv / FC layers, {total_w} weights, {total_m} MACs; "
          f"base {args.base} ({time.time() - t0:.0f} s); metric / min cosine against float")
    show("float weights", {})
    show(f"base {args.base} int8", base)
    show(f"every layer int{args.bits}", widened([n.name for n in layers]))
    if args.summary:
        return
    on = args.choose
    b_on = metric(base, on)[0]
    print(f"  | layer | kind | weights | MACs | only this layer int8 nearest ({on}) | base, this layer wide ({on}) |")
    gain, cost = {}, {}
    for n in layers:
        alone = metric({n.inputs[1]: near8[n.name]}, on)[0]
        cost[n.name] = 1.0 - alone
        gain[n.name] = metric(widened([n.name]), on)[0] - b_on
        kind = "depthwise" if n.op is Op.CONV2D and n.attrs.depthwise else n.op.value
        w = g.tensors[n.inputs[1]].const_data
        print(f"  | {n.name} | {kind} {tuple(w.shape)} | {w.size} | {macs(g, n)} | {alone:.3f} | "
              f"{gain[n.name]:+.4f} |", flush=True)
    order = sorted(gain, key=lambda k: (-cost[k], -gain[k]))
    chosen: list[str] = []
    if args.narrow:     # from every layer wide, back to the baseline least costly first while it holds
        chosen = list(order)
        for name in reversed(order):
            m = metric(widened([c for c in chosen if c != name]), on)[0]
            if m >= 1.0 - args.target:
                chosen.remove(name)
            print(f"  narrow {name}: {on} {m:.3f} -> {'int8' if name not in chosen else 'kept wide'}; "
                  f"{len(chosen)} wide", flush=True)
        order = []
    for name in order:
        chosen.append(name)
        m = metric(widened(chosen), on)[0]
        node = next(n for n in layers if n.name == name)
        w_share = sum(g.tensors[n.inputs[1]].const_data.size for n in layers if n.name in chosen) / total_w
        m_share = sum(macs(g, n) for n in layers if n.name in chosen) / total_m
        print(f"  prefix {len(chosen)} (+{name}, {macs(g, node)} MACs): {on} {m:.3f}; "
              f"{w_share:.1%} of weights, {m_share:.1%} of MACs", flush=True)
        if m >= 1.0 - args.target:
            break
    show(f"prefix of {len(chosen)} widened", widened(chosen))
    if args.cycles:
        estimate(args.model, chosen, [n.name for n in layers])


def estimate(model: str, chosen: list[str], layers: list[str]) -> None:
    """Not an implementation's cycles: `--precision auto`'s program (npu-m), and per layer its
    16x8 cycles beside int8's from the timing model. A layer's MXU work with int16 weights is
    twice its 16x8 work (a pass per weight byte-plane), so where the MXU bounds the layer
    its 16x16 cycles are about twice its 16x8 cycles: the estimate adds each widened layer's
    16x8 cycles once more."""
    import npukit
    spec = CORPUS[model]
    prog = npukit.compile(fetch(model), "npu-m", input_shapes=spec.input_shapes, calibration=calibration(model),
                          options={"precision": "auto", "min_sqnr": 30.0}, sqnr=False)
    p = prog.program.meta["precision"]
    rows = {r["layer"]: r for r in p["layers"]}
    print(f"  auto (npu-m): {p['cycles']} cycles, int8 {p['int8_cycles']}; {len(rows)} layers touch int16")
    for label, names in (("the prefix", chosen), ("every conv / FC layer", layers)):
        found = [rows[n] for n in names if n in rows]
        extra = sum(r["cycles"] for r in found)
        print(f"  {label}: {len(found)} of {len(names)} run 16x8 under auto, {extra} cycles there "
              f"({sum(r['int8_cycles'] for r in found)} int8); with int16 weights about "
              f"{p['cycles'] + extra} cycles (+{extra / p['cycles']:.0%})", flush=True)


if __name__ == "__main__":
    main()
