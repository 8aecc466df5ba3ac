"""Latency against the roofline bound: ResNet-18 and MobileNetV2 (224x224) on npu-m.

    PYTHONPATH=. python benchmarks/roofline.py [--arch npu-m] [--worst 5] [--no-fuse]

Compiles each model from `npukit.models.zoo` as `npukit profile` does (random calibration:
timing does not depend on the data), runs the timing model and prints, per model, total
cycles, the bound (DESIGN.md section 6, `docs/design.md`), achieved / bound against the
1.15 target, instruction count, off-chip bytes and the layers furthest from their bound.
A fused pair (depthwise + the 1x1 after it) is listed as one row, since its two layers'
instructions interleave.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import warnings
from pathlib import Path

TARGET = 1.15


def _rows(profile) -> list[tuple[str, int, int]]:
    """(name, cycles, bound) per layer, fused pairs merged into one row."""
    out, layers, i = [], profile.layers, 0
    while i < len(layers):
        la = layers[i]
        if "fused with" in la.detail.get("tiling", "") and i + 1 < len(layers):
            nxt = layers[i + 1]
            out.append((f"{la.name}+{nxt.name}", la.cycles + nxt.cycles, la.roofline_cycles + nxt.roofline_cycles))
            i += 2
            continue
        out.append((la.name, la.cycles, la.roofline_cycles))
        i += 1
    return out


def pair_bound(layers, profile, arch) -> int:
    """The bound with each fused pair taken as one layer: the slowest of its MXU work, VPU
    work and off-chip bytes summed over both layers, the depthwise on the engine that helps
    (docs/design.md, "Lower bound"); other layers keep their own bound."""
    rows, cols, lanes = arch.mxu.rows, arch.mxu.cols, arch.vpu.lanes
    total, i = 0, 0
    while i < len(layers):
        if "fused with" not in layers[i].detail.get("tiling", "") or i + 1 >= len(layers):
            total += profile.layers[i].roofline_cycles
            i += 1
            continue
        dw, pw = layers[i], layers[i + 1]
        dw_mxu = dw.macs / (min(int(dw.detail["depthwise_taps"]), rows) * cols)
        pw_mxu, vpu = pw.macs / (rows * cols), (dw.vpu_ops + pw.vpu_ops) / lanes
        regions = set(dw.min_region_bytes) | set(pw.min_region_bytes)
        mem = max(((dw.min_region_bytes.get(r, 0) + pw.min_region_bytes.get(r, 0)) / arch.region_bytes_per_cycle(r)
                   for r in regions), default=0)
        total += math.ceil(min(max(dw_mxu + pw_mxu, vpu, mem), max(pw_mxu, vpu + dw.macs / lanes, mem)))
        i += 2
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="npu-m")
    ap.add_argument("--worst", type=int, default=5)
    ap.add_argument("--no-fuse", action="store_true", help="lower every layer on its own")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import npukit
    from npukit.codegen.context import CompileOptions
    from npukit.models import zoo

    options = CompileOptions(fuse_depthwise="never" if args.no_fuse else "auto")
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
                print(f"    pair bound (each fused pair as one layer) {pb:,}: achieved/bound {p.total_cycles / pb:.3f}")
            rows = sorted(_rows(p), key=lambda r: r[1] - r[2], reverse=True)[:args.worst]
            for layer, cycles, bound in rows:
                print(f"    {layer:24s} {cycles:>9,} cycles  bound {bound:>9,}  lost {cycles - bound:>8,}")


if __name__ == "__main__":
    main()
