"""Latency against the roofline bound: ResNet-18 and MobileNetV2 (224x224) on npu-m.

    PYTHONPATH=. python benchmarks/roofline.py [--arch npu-m] [--worst 5] [--no-fuse] [--no-expansion]

Compiles each model from `npukit.models.zoo` as `npukit profile` does (random calibration:
timing does not depend on the data), runs the timing model and prints, per model, total
cycles, the bound (DESIGN.md section 6, `docs/design.md`), achieved / bound against the
1.15 target, instruction count, off-chip bytes and the layers furthest from their bound.
A fused group (depthwise + the 1x1 after it, with or without the expansion 1x1 before it)
is listed as one row, since its layers' instructions interleave.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import warnings
from pathlib import Path

TARGET = 1.15


def _groups(layers) -> list[list[int]]:
    """Layer indices, each fused group (a layer noted "fused with" and the layers noted
    "fused into" after it: depthwise + 1x1, or expansion + depthwise + 1x1) as one entry."""
    out, i = [], 0
    while i < len(layers):
        j = i + 1
        if "fused with" in layers[i].detail.get("tiling", ""):
            while j < len(layers) and layers[j].detail.get("tiling", "").startswith("fused into"):
                j += 1
        out.append(list(range(i, j)))
        i = j
    return out


def _rows(profile) -> list[tuple[str, int, int]]:
    """(name, cycles, bound) per layer, fused groups merged into one row."""
    la = profile.layers
    return [("+".join(la[i].name for i in g), sum(la[i].cycles for i in g), sum(la[i].roofline_cycles for i in g))
            for g in _groups(la)]


def pair_bound(layers, profile, arch) -> int:
    """The bound with each fused group taken as one layer: the slowest of its MXU work, VPU
    work and off-chip bytes summed over its layers, the depthwise on the engine that helps
    (docs/design.md, "Lower bound"); other layers keep their own bound."""
    rows, cols, lanes = arch.mxu.rows, arch.mxu.cols, arch.vpu.lanes
    total = 0
    for g in _groups(layers):
        if len(g) == 1:
            total += profile.layers[g[0]].roofline_cycles
            continue
        group = [layers[i] for i in g]
        dw = next(la for la in group if "depthwise_taps" in la.detail)
        dw_mxu = dw.macs / (min(int(dw.detail["depthwise_taps"]), rows) * cols)
        dense_mxu = sum(la.macs for la in group if la is not dw) / (rows * cols)
        vpu = sum(la.vpu_ops for la in group) / lanes
        regions = {r for la in group for r in la.min_region_bytes}
        mem = max((sum(la.min_region_bytes.get(r, 0) for la in group) / arch.region_bytes_per_cycle(r)
                   for r in regions), default=0)
        total += math.ceil(min(max(dw_mxu + dense_mxu, vpu, mem), max(dense_mxu, vpu + dw.macs / lanes, mem)))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="npu-m")
    ap.add_argument("--worst", type=int, default=5)
    ap.add_argument("--no-fuse", action="store_true", help="lower every layer on its own")
    ap.add_argument("--no-expansion", action="store_true", help="fuse depthwise + 1x1 pairs only")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import npukit
    from npukit.codegen.context import CompileOptions
    from npukit.models import zoo

    options = CompileOptions(fuse_depthwise="never" if args.no_fuse else "auto",
                             fuse_expansion="never" if args.no_expansion else "auto")
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in (("resnet18", zoo.resnet18), ("mobilenet_v2", zoo.mobilenet_v2)):
            path = Path(tmp) / f"{name}.onnx"
            zoo.save(build(size=224), path)
            model = npukit.compile(path, args.arch, sqnr=False, random_samples=1, options=options)
            p = model.profile()
            verdict = "meets" if p.roofline_ratio <= TARGET else "misses"
            print(f"{name} on {p.arch}: {p.total_cycles:,} cycles, bound {p.roofline_cycles:,}, "
                  f"achieved/bound {p.roofline_ratio:.3f} ({verdict} {TARGET}), {p.instructions:,} instructions, "
                  f"off-chip {p.dram_bytes:,} B")
            pb = pair_bound(model.program.layers, p, model.arch)
            if pb != p.roofline_cycles:
                print(f"    pair bound (each fused group as one layer) {pb:,}: achieved/bound {p.total_cycles / pb:.3f}")
            rows = sorted(_rows(p), key=lambda r: r[1] - r[2], reverse=True)[:args.worst]
            for layer, cycles, bound in rows:
                print(f"    {layer:24s} {cycles:>9,} cycles  bound {bound:>9,}  lost {cycles - bound:>8,}")


if __name__ == "__main__":
    main()
