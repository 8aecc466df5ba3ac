"""Where an int16 program loses accuracy beyond its int8 weights (issue 13): a corpus model is
quantised as a compile does (`--precision int16` by default, the rounding `--option gptq=...`
names), and on the corpus's held-out inputs

  - the task metric / min output cosine against float of the float model with only its
    conv / FC weights replaced by the compile's rounded ones (GPTQ's, or round-to-nearest
    at max |w| / 127 per channel: the baseline), and of the integer program;
  - per activation, the SQNR of the integer reference's dequantised tensor against that same
    float-with-rounded-weights model (so the weights' error cancels and what is left is the
    activations': a layer where it drops well below its input's is where the program loses),
    with the tensor's type and scale, and the SQNR of its layer alone (inputs the float
    values quantised, as quant.wide.layer_noise measures: the layer's own loss);
  - the 16x8 layers whose int64 bias has codes past int32's range (those an int32 bound clips).

    python benchmarks/int16_gap.py hand-landmark-lite [--gptq sequential] [--precision int16] [--samples 4]
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
from npukit.kernels.float_exec import run_float  # noqa: E402
from npukit.measure import quantize_inputs, real_values  # noqa: E402
from npukit.models.corpus import CORPUS, calibration, fetch, held_out, reference, score  # noqa: E402
from npukit.opt.pipeline import optimize  # noqa: E402
from npukit.ptq import quantise  # noqa: E402
from npukit.ir.graph import DType, Graph, Op  # noqa: E402
from npukit.quant.gptq import eligible_layers, with_weights  # noqa: E402
from npukit.quant.wide import layer_noise  # noqa: E402
from npukit.sim.reference import run_reference  # noqa: E402


def nearest_weights(g: Graph) -> dict[str, np.ndarray]:
    """The conv / FC weights round-to-nearest at max |w| / 127 per output channel (what a
    compile without GPTQ ships), dequantised."""
    out = {}
    for n in g.nodes:
        if n.name not in eligible_layers(g):
            continue
        w = np.asarray(g.tensors[n.inputs[1]].const_data, np.float64)
        depthwise = n.op is Op.CONV2D and n.attrs.depthwise
        rows = w.reshape(-1, w.shape[-1]).T if depthwise else w.reshape(w.shape[0], -1)
        s = np.abs(rows).max(1, keepdims=True) / 127.0
        q = np.clip(np.round(rows / np.where(s > 0, s, 1.0)), -127, 127) * s
        out[n.inputs[1]] = (q.T if depthwise else q).reshape(w.shape).astype(np.float32)
    return out


def _alone(qg: Graph, fvals: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Per layer, the SQNR of its output with its inputs the float values quantised (the
    layer's own loss, as quant.wide.layer_noise measures it), where the float model has them."""
    fv = [{n: v for n, v in f.items()} for f in fvals]
    nodes = [n for n in qg.nodes if all(i in fv[0] or qg.tensors[i].data is not None for i in n.inputs)
             and n.outputs[0] in fv[0]]
    return layer_noise(qg.with_nodes(nodes, qg.tensors), fv)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--gptq", default="sequential", choices=("never", "auto", "sequential"))
    ap.add_argument("--precision", default="int16", choices=("int8", "int16", "auto"))
    ap.add_argument("--samples", type=int, default=4, help="held-out inputs in the per-tensor table")
    args = ap.parse_args()
    spec, path = CORPUS[args.model], fetch(args.model)
    g0 = load_model(path, spec.input_shapes, spec.input_values or None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantise(g0, calibration(args.model), sqnr=False,
                     options=CompileOptions(precision=args.precision, gptq=args.gptq))
    qg = q.graph
    g = optimize(g0)
    g = with_weights(g, {**nearest_weights(g), **(dict(q.scales.weights) if q.scales else {})})
    held = held_out(args.model)
    ref = reference(path, spec)
    outs_f = [ref(f) for f in held]
    names = list(outs_f[0])
    feeds = [{t: np.asarray(f.get(t, next(iter(f.values()))), np.float32) for t in g.inputs} for f in held]
    fvals = [run_float(g, f, keep_all=True) for f in feeds]
    ivals = [run_reference(qg, quantize_inputs(qg, f), keep_all=True) for f in feeds]

    def scored(outs: list[dict]) -> str:
        s = score(spec, outs_f, outs)
        return f"{s.metric:.3f} / {s.cosine:.4f}"
    print(f"{args.model}, precision {args.precision}, gptq {args.gptq}: metric / min cosine against float")
    print(f"  float, the compile's rounded weights: {scored([{n: v[o] for n, o in zip(names, g.outputs)} for v in fvals])}")
    print(f"  integer program: {scored([{n: real_values(qg.tensors[o], v[o]) for n, o in zip(names, qg.outputs)} for v in ivals])}")
    wide = [n for n, t in qg.tensors.items() if not t.is_const and t.dtype is DType.I16]
    narrow = [n for n, t in qg.tensors.items() if not t.is_const and t.dtype is DType.I8]
    print(f"  activations: {len(wide)} int16, {len(narrow)} int8" + (f" ({', '.join(narrow)})" if narrow else ""))
    for node in qg.nodes:
        for name in node.inputs:
            t = qg.tensors[name]
            if t.data is not None and t.dtype is DType.I64 and np.abs(t.data).max() >= 2 ** 31:
                over = int((np.abs(t.data) >= 2 ** 31).sum())
                print(f"  16x8 bias codes at or past 2^31: {node.name} ({over} of {t.data.size} channels, max {np.abs(t.data).max():.3g})")
    producer = {o: node for node in qg.nodes for o in node.outputs}
    alone = _alone(qg, [{n: v[n.removesuffix("/int16")] for n in qg.tensors if n.removesuffix("/int16") in v}
                        for v in fvals[:args.samples]])
    print("  | SQNR against float with the rounded weights | the layer alone | type | layer | tensor | scale |")
    for name, t in qg.tensors.items():
        base = name.removesuffix("/int16")
        if t.is_const or base not in fvals[0] or name not in ivals[0]:
            continue
        a = [np.asarray(v[base], np.float64) for v in fvals[:args.samples]]
        b = [real_values(t, v[name]) for v in ivals[:args.samples]]
        if a[0].shape != b[0].shape:
            continue
        sig = sum(float(np.sum(x * x)) for x in a)
        noise = sum(float(np.sum((x - y) ** 2)) for x, y in zip(a, b))
        db = float("inf") if noise == 0 else 10 * np.log10(max(sig, 1e-30) / noise)
        node = producer.get(name)
        layer = f"{node.op.value} {node.name}" if node else "input"
        own = f"{alone[node.name]:.1f} dB" if node and node.name in alone else ""
        print(f"  | {db:.1f} dB | {own} | {t.dtype.name} | {layer} | {name[:70]} | {t.quant.s if t.quant else '':.3g} |")


if __name__ == "__main__":
    main()
