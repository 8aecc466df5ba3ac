"""ResNet-18 on a 32x32 array: npukit's per-layer MXU cycles against SCALE-Sim, and the
wall time / peak memory of a whole-network timing estimate against SCALE-Sim and ZigZag.

    bash benchmarks/setup_peers.sh scalesim zigzag   # once
    python benchmarks/scalesim_resnet18.py [--skip-zigzag] [--json OUT.json]
    python benchmarks/scalesim_resnet18.py --reuse-peers OLD.json   # npukit side only, peers' stored results

Part 1 (fidelity): npukit on a 32x32 array with `fold_overlap = false`, a fixed dataflow
(ws, then os) and SRAMs so large that no layer is split; each conv / FC layer's
`mxu_cycles` against SCALE-Sim's compute cycles for the same layer (stall-free CALC
bandwidth mode, no traces), fed the input extent actually read, (E - 1) * stride + kernel.
Layer shapes come from ONNX shape inference on the model, not from npukit.

Part 2 (speed): the whole network on a 32x32 array (npukit preset npu-l): npukit
compile + profile (what `npukit profile` does), npukit's timing-only part (lower +
simulate + profile on an already quantised graph), SCALE-Sim (ws, no traces) and ZigZag
(its TPU-like 32x32 accelerator, latency-optimal mapping search), each in a fresh process.
"""
from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import warnings
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PeerMissing, machine_line, run_peer, run_self, table

HUGE_KIB = 64 * 1024
TARGET_VS_SCALESIM, TARGET_VS_ZIGZAG, TARGET_PEAK_MIB = 250.0, 50.0, 300.0


def onnx_layers(model: onnx.ModelProto) -> list[dict]:
    """Conv and Gemm layers with their shapes, from ONNX shape inference."""
    m = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)}
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    out = []
    for node in m.graph.node:
        if node.op_type == "Conv":
            attrs = {a.name: list(a.ints) for a in node.attribute}
            k, c, kh, kw = inits[node.input[1]]
            _, _, eh, ew = shapes[node.output[0]]
            stride = attrs.get("strides", [1, 1])[0]
            if attrs.get("group", [1]) not in ([1], []):
                continue
            out.append({"name": node.name, "c": c, "k": k, "kh": kh, "kw": kw, "stride": stride, "eh": eh, "ew": ew})
        elif node.op_type == "Gemm":
            k, c = inits[node.input[1]]   # transB = 1: [out, in]
            out.append({"name": node.name, "c": c, "k": k, "kh": 1, "kw": 1, "stride": 1, "eh": 1, "ew": 1})
    for L in out:   # SCALE-Sim has no padding: give it the extent actually read
        L["ifmap_h"] = (L["eh"] - 1) * L["stride"] + L["kh"]
        L["ifmap_w"] = (L["ew"] - 1) * L["stride"] + L["kw"]
    return out


def fidelity_arch(dataflow: str):
    from npukit.arch import load_arch
    return load_arch("npu-l").replace({
        "mxu.dataflow": dataflow, "mxu.fold_overlap": False,
        "sram.abuf_kib": HUGE_KIB, "sram.wbuf_kib": HUGE_KIB, "sram.acc_kib": HUGE_KIB})


def npukit_layer_cycles(qgraph, dataflow: str) -> dict[str, dict]:
    from npukit.codegen.context import CompileOptions
    from npukit.codegen.lower import lower_program
    from npukit.isa import instructions as I
    from npukit.report.profile import build_profile
    from npukit.cost.timing import simulate
    arch = fidelity_arch(dataflow)
    # closed-form tiling choice: with buffers this large it keeps every layer one tile (timing
    # candidates may split a layer to overlap its transfers, which is faster but not the
    # single-tile case SCALE-Sim's numbers describe)
    program = lower_program(qgraph, arch, CompileOptions(timed_candidates=1), {})
    profile = build_profile(program, arch, simulate(program, arch))
    tiles: dict[int, int] = {}
    for ins in program.instructions:
        if isinstance(ins, I.Conv):
            tiles[ins.layer] = tiles.get(ins.layer, 0) + 1
    return {L.name: {"mxu_cycles": L.mxu_cycles, "tiles": tiles.get(i, 0)}
            for i, L in enumerate(profile.layers)}


def fidelity(layers: list[dict], qgraph, skip_scalesim: bool, tmp: Path, reuse: dict | None) -> dict:
    result = {}
    for df in ("ws", "os"):
        ours = npukit_layer_cycles(qgraph, df)
        spec = tmp / f"scalesim_{df}.json"
        spec.write_text(json.dumps({"rows": 32, "cols": 32, "dataflow": df, "layers": layers}))
        if reuse:
            peer = reuse["fidelity"][df]["scalesim"]
        else:
            peer = None if skip_scalesim else run_peer("scalesim", "scalesim_driver.py", spec)
        rows, mismatches = [], []
        for i, L in enumerate(layers):
            mine = ours.get(L["name"], {"mxu_cycles": None, "tiles": 0})
            theirs = peer["layers"][i]["compute_cycles"] if peer else None
            diff = None if theirs is None or mine["mxu_cycles"] is None else mine["mxu_cycles"] - theirs
            rows.append([L["name"], f"{L['ifmap_h']}x{L['ifmap_w']}x{L['c']}", f"{L['kh']}x{L['kw']}/{L['stride']}",
                         L["k"], mine["tiles"], mine["mxu_cycles"], theirs, diff])
            if diff:
                mismatches.append({"layer": L["name"], "npukit": mine["mxu_cycles"], "scalesim": theirs, "diff": diff})
        print(table(["layer", "ifmap (read)", "kernel/s", "K", "tiles", "npukit mxu", "SCALE-Sim", "diff"], rows,
                    f"\n== {df}: npukit mxu_cycles vs SCALE-Sim compute cycles (32x32, fold_overlap=false) =="))
        split = [r[0] for r in rows if r[4] != 1]
        print(f"layers split into more than one tile: {split or 'none'}")
        print(f"mismatching layers: {len(mismatches)} of {len(rows)}"
              + (f" (diffs: {sorted({m['diff'] for m in mismatches})})" if mismatches else ""))
        result[df] = {"rows": rows, "mismatches": mismatches, "scalesim": peer}
    return result


def speed(model_path: Path, qgraph, scalesim_ws: dict | None, skip_zigzag: bool, tmp: Path,
          reuse: dict | None) -> dict:
    from npukit.arch import load_arch
    arch_path = tmp / "npu-l.toml"
    arch_path.write_text(load_arch("npu-l").to_toml())
    qpath = tmp / "resnet18_q.pkl"
    qpath.write_bytes(pickle.dumps(qgraph))
    runs = {"npukit compile+profile": run_self("npukit_timing.py", "full", model_path, arch_path, 3),
            "npukit timing only": run_self("npukit_timing.py", "timing", qpath, arch_path, 5)}
    if scalesim_ws:
        runs["SCALE-Sim 3.0 (ws, no traces)"] = scalesim_ws
    zigzag_name = "ZigZag 3.9 (tpu_like)"
    if reuse and zigzag_name in reuse["speed"]:
        runs[zigzag_name] = reuse["speed"][zigzag_name]
    elif not skip_zigzag:
        try:
            runs[zigzag_name] = run_peer("zigzag", "zigzag_driver.py", model_path)
        except PeerMissing as exc:
            print(f"ZigZag skipped: {exc}")
    rows = [[name, r["wall_s"], r.get("cpu_s", "-"), r["peak_rss_mib"], r.get("traced_peak_mib", ""),
             r.get("total_cycles", r.get("latency_cycles", sum(x.get("total_cycles", 0) for x in r.get("layers", []))))]
            for name, r in runs.items()]
    print(table(["tool", "wall s", "CPU s", "peak RSS MiB", "traced peak MiB", "network cycles"], rows,
                "\n== whole-network timing estimate of ResNet-18 (224x224) on a 32x32 array =="))
    print("\nratios, peer / npukit (wall time; CPU time, which the shared machine's load disturbs less):")
    for ours in ("npukit compile+profile", "npukit timing only"):
        for peer, target in (("SCALE-Sim 3.0 (ws, no traces)", TARGET_VS_SCALESIM),
                             ("ZigZag 3.9 (tpu_like)", TARGET_VS_ZIGZAG)):
            if peer in runs:
                r = runs[peer]["wall_s"] / runs[ours]["wall_s"]
                c = runs[peer]["cpu_s"] / runs[ours]["cpu_s"]
                print(f"  {peer:30s} / {ours:22s} = wall {r:7.1f}x, CPU {c:7.1f}x  (target >= {target:.0f}x: "
                      f"{'met' if min(r, c) >= target else 'NOT met'})")
    for ours in ("npukit compile+profile", "npukit timing only"):
        p = runs[ours]["peak_rss_mib"]
        print(f"  {ours} peak RSS {p:.0f} MiB (target < {TARGET_PEAK_MIB:.0f} MB: "
              f"{'met' if p * 1.048576 < TARGET_PEAK_MIB else 'NOT met'})")
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-zigzag", action="store_true")
    ap.add_argument("--skip-scalesim", action="store_true")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--reuse-peers", type=Path, help="take SCALE-Sim and ZigZag results from an earlier --json")
    args = ap.parse_args()
    reuse = json.loads(args.reuse_peers.read_text()) if args.reuse_peers else None
    warnings.simplefilter("ignore")   # random calibration: cycle counts do not depend on the data
    import npukit
    from npukit.models import zoo
    print(f"machine: {machine_line()}")
    if reuse:
        print(f"peer results (SCALE-Sim, ZigZag) reused from {args.reuse_peers}; npukit measured now")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model = zoo.resnet18()
        model_path = zoo.save(model, tmp / "resnet18.onnx")
        layers = onnx_layers(model)
        qgraph = npukit.compile(model_path, fidelity_arch("ws")).qgraph
        try:
            fid = fidelity(layers, qgraph, args.skip_scalesim, tmp, reuse)
        except PeerMissing as exc:
            print(f"SCALE-Sim skipped: {exc}")
            fid = fidelity(layers, qgraph, True, tmp, None)
        runs = speed(model_path, qgraph, fid["ws"]["scalesim"], args.skip_zigzag, tmp, reuse)
    if args.json:
        args.json.write_text(json.dumps({"fidelity": fid, "speed": runs}, indent=1, default=str))


if __name__ == "__main__":
    main()
