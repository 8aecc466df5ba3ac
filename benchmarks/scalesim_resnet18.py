"""ResNet-18 on a 32x32 array: npukit's per-layer MXU cycles against SCALE-Sim, and the
wall time / peak memory of a whole-network timing estimate against SCALE-Sim and ZigZag.

    bash benchmarks/setup_peers.sh scalesim zigzag   # once
    python benchmarks/scalesim_resnet18.py [--skip-zigzag] [--json OUT.json]
    python benchmarks/scalesim_resnet18.py --reuse-peers OLD.json   # npukit side only, peers' stored results

Part 1 (fidelity): the documented SCALE-Sim compat commands (docs/peers.md, "Reproducing
SCALE-Sim from the command line"), each run as a subprocess of this python:

    python -m npukit.models.zoo resnet18 -o resnet18.onnx
    npukit profile resnet18.onnx --arch examples/arch/scalesim_32x32.toml \
        --option timed_candidates=1 --dataflow ws --json prof_ws.json      # then --dataflow os

and each conv / FC layer's `mxu_cycles` in prof_*.json against SCALE-Sim's compute cycles for
the same layer (stall-free CALC bandwidth mode, no traces), fed the input extent actually read,
(E - 1) * stride + kernel. Layer shapes come from ONNX shape inference on the model file, not
from npukit; the profile's tiling must cover each layer whole (one tile), as SCALE-Sim's does.

Part 2 (speed): the whole network on a 32x32 array (npukit preset npu-l): npukit
compile + profile (what `npukit profile` does), npukit's timing-only part (lower +
simulate + profile on an already quantised graph), SCALE-Sim (ws, no traces) and ZigZag
(its TPU-like 32x32 accelerator, latency-optimal mapping search), each in a fresh process.
"""
from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, PeerMissing, machine_line, run_peer, run_self, table

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


COMPAT_ARCH = REPO / "examples" / "arch" / "scalesim_32x32.toml"


def npukit_cmd(*args: object) -> list[str]:
    """`npukit ARGS` (the console script's entry point) with this python, run from the repo root."""
    return [sys.executable, "-m", "npukit.cli", *map(str, args)]


def run_cmd(argv: list[str]) -> None:
    print("$ " + " ".join(Path(a).name if a == sys.executable else str(a) for a in argv), flush=True)
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"command failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def compat_profile(model_path: Path, dataflow: str, tmp: Path) -> dict[str, dict]:
    """The documented compat command; per layer its mxu_cycles and whether one tile covers it."""
    out = tmp / f"prof_{dataflow}.json"
    run_cmd(npukit_cmd("profile", model_path, "--arch", COMPAT_ARCH.relative_to(REPO),
                       "--option", "timed_candidates=1", "--dataflow", dataflow, "--json", out))
    return {L["name"]: L for L in json.loads(out.read_text())["layers"]}


def one_tile(layer: dict, L: dict) -> bool:
    t = layer.get("tiling") or {}
    return (t.get("th"), t.get("tk"), t.get("tc"), t.get("dataflow")) == (L["eh"], L["k"], L["c"], layer["df"])


def fidelity(layers: list[dict], model_path: Path, skip_scalesim: bool, tmp: Path, reuse: dict | None) -> dict:
    result = {}
    for df in ("ws", "os"):
        ours = compat_profile(model_path, df, tmp)
        spec = tmp / f"scalesim_{df}.json"
        spec.write_text(json.dumps({"rows": 32, "cols": 32, "dataflow": df, "layers": layers}))
        if reuse:
            peer = reuse["fidelity"][df]["scalesim"]
        else:
            peer = None if skip_scalesim else run_peer("scalesim", "scalesim_driver.py", spec)
        rows, mismatches = [], []
        for i, L in enumerate(layers):
            mine = dict(ours.get(L["name"], {"mxu_cycles": None}), df=df)
            whole = one_tile(mine, L)
            theirs = peer["layers"][i]["compute_cycles"] if peer else None
            diff = None if theirs is None or mine["mxu_cycles"] is None else mine["mxu_cycles"] - theirs
            rows.append([L["name"], f"{L['ifmap_h']}x{L['ifmap_w']}x{L['c']}", f"{L['kh']}x{L['kw']}/{L['stride']}",
                         L["k"], "yes" if whole else "NO", mine["mxu_cycles"], theirs, diff])
            if diff or (peer and theirs is not None and mine["mxu_cycles"] is None):
                mismatches.append({"layer": L["name"], "npukit": mine["mxu_cycles"], "scalesim": theirs, "diff": diff})
        print(table(["layer", "ifmap (read)", "kernel/s", "K", "one tile", "npukit mxu", "SCALE-Sim", "diff"], rows,
                    f"\n== {df}: npukit mxu_cycles vs SCALE-Sim compute cycles (compat command, 32x32) =="))
        split = [r[0] for r in rows if r[4] != "yes"]
        print(f"layers not covered by one tile: {split or 'none'}")
        if peer:
            print(f"layers equal: {len(rows) - len(mismatches)}/{len(rows)}"
                  + (f" (diffs: {sorted({m['diff'] for m in mismatches if m['diff']})})" if mismatches else ""))
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
    print(f"machine: {machine_line()}")
    if reuse:
        print(f"peer results (SCALE-Sim, ZigZag) reused from {args.reuse_peers}; npukit measured now")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model_path = tmp / "resnet18.onnx"
        run_cmd([sys.executable, "-m", "npukit.models.zoo", "resnet18", "-o", str(model_path)])
        layers = onnx_layers(onnx.load(str(model_path)))
        try:
            fid = fidelity(layers, model_path, args.skip_scalesim, tmp, reuse)
        except PeerMissing as exc:
            print(f"SCALE-Sim skipped: {exc}")
            fid = fidelity(layers, model_path, True, tmp, None)
        qgraph = npukit.compile(model_path, "npu-l").qgraph
        runs = speed(model_path, qgraph, fid["ws"]["scalesim"], args.skip_zigzag, tmp, reuse)
    if args.json:
        args.json.write_text(json.dumps({"fidelity": fid, "speed": runs}, indent=1, default=str))


if __name__ == "__main__":
    main()
