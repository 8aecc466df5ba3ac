"""MLPerf-Tiny int8 TFLite models on Arm Ethos-U55-256: Vela's estimate against npukit's.

    bash benchmarks/setup_peers.sh vela   # once
    python benchmarks/vela_mlperf.py [MODEL.tflite ...] [--json OUT.json]

Default models: tests/data/mlperf_tiny/*.tflite (made by scripts/make_mlperf_tiny.py). Vela
runs with its defaults (ethos-u55-256, Ethos_U55_High_End_Embedded, Shared_Sram); npukit on
its `u55-256` preset, matched to that configuration. For each model: both tools' cycles,
bytes moved per region (system SRAM, off-chip flash) and in-process compile time (best of
3, imports excluded); per layer the same figures side by side. Vela's per-layer bytes are
its access cycles x the port's bytes per cycle (8 for SRAM, 1 for flash), so they include
its burst-efficiency rounding; its network bytes are exact (summary CSV).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, PeerMissing, machine_line, ratio, run_peer, table

DEFAULT_DIR = REPO / "tests" / "data" / "mlperf_tiny"
FALLBACK_DIR = REPO / "tests" / "data" / "tflite_ops"
REPEATS = 3


def npukit_model(path: Path) -> dict:
    """Compile on u55-256 (best of REPEATS) and collect per-layer cycles and region bytes."""
    import npukit
    walls, model = [], None
    for _ in range(REPEATS):          # each compile searches from scratch (its caches are its own)
        t0 = time.perf_counter()
        model = npukit.compile(path, "u55-256")
        profile = model.profile()
        walls.append(time.perf_counter() - t0)
    counts = model.timeline().counts
    groups: dict[str, dict] = {}
    for i, layer in enumerate(profile.layers):
        key = layer.nodes[0].split(":", 1)[-1] if layer.nodes else layer.name   # the op's output tensor
        g = groups.setdefault(key, {"name": layer.name, "op": layer.op, "cycles": 0, "sram": 0, "flash": 0,
                                    "target": layer.target})
        if layer.op != "reshape":   # name the group after its real operator, not a view
            g["name"], g["op"] = layer.name, layer.op
        g["cycles"] += layer.cycles
        for region, nbytes in counts[i].region_bytes.items():
            g[region] = g.get(region, 0) + int(nbytes)
    return {"compile_s": min(walls), "cycles": profile.total_cycles, "bytes": dict(profile.region_bytes),
            "image_bytes": dict(profile.image_bytes), "layers": groups}


def vela_groups(layers: list[dict], known: set[str]) -> dict[str, dict]:
    """Vela rows grouped by the original operator's output tensor; rows Vela adds for an
    operator it decomposes (e.g. softmax) precede the row named after that operator."""
    groups: dict[str, dict] = {}
    pending = []
    for row in layers:
        pending.append(row)
        if row["name"] in known:
            g = groups.setdefault(row["name"], {"op": row["op"], "cycles": 0, "sram": 0, "flash": 0})
            for r in pending:
                g["cycles"] += r["cycles"]
                g["sram"] += r["bytes"]["sram"]
                g["flash"] += r["bytes"]["flash"]
            pending = []
    if pending:
        groups["(unmatched)"] = {"op": "-", "cycles": sum(r["cycles"] for r in pending),
                                 "sram": sum(r["bytes"]["sram"] for r in pending),
                                 "flash": sum(r["bytes"]["flash"] for r in pending)}
    return groups


def compare(path: Path, vela: dict) -> dict:
    print(f"\n######## {path.stem} ########")
    if "error" in vela:
        print(f"Vela failed: {vela['error']}")
    try:
        ours = npukit_model(path)
    except Exception as exc:   # noqa: BLE001 -- report any failure and go on with the other models
        print(f"npukit could not compile {path.name}: {type(exc).__name__}: {exc}")
        ours = None
    if ours is None or "error" in vela:
        return {"model": path.stem, "vela": vela, "npukit": ours}
    vg = vela_groups(vela["layers"], set(ours["layers"]))
    rows = []
    for key, g in ours["layers"].items():
        v = vg.get(key, {})
        rows.append([g["name"], g["op"], g["cycles"], v.get("cycles", "-"),
                     ratio(g["cycles"], v["cycles"]) if v.get("cycles") else "-",
                     g.get("sram", 0), v.get("sram", "-"), g.get("flash", 0), v.get("flash", "-")])
    if "(unmatched)" in vg:
        u = vg["(unmatched)"]
        rows.append(["(Vela rows not matched)", "-", "-", u["cycles"], "-", "-", u["sram"], "-", u["flash"]])
    print(table(["layer", "op", "npukit cyc", "Vela cyc", "npk/Vela", "npukit SRAM B", "Vela SRAM B",
                 "npukit flash B", "Vela flash B"], rows, "per layer (Vela bytes from access cycles):"))
    summary = [["cycles", ours["cycles"], vela["cycles"], ratio(ours["cycles"], vela["cycles"])],
               ["SRAM bytes", ours["bytes"].get("sram", 0), vela["bytes"]["sram"],
                ratio(ours["bytes"].get("sram", 0), vela["bytes"]["sram"])],
               ["flash bytes", ours["bytes"].get("flash", 0), vela["bytes"]["flash"],
                ratio(ours["bytes"].get("flash", 0), vela["bytes"]["flash"])],
               ["weights in flash (image / encoded)", ours["image_bytes"].get("flash", 0),
                vela["encoded_weight_bytes"], ratio(ours["image_bytes"].get("flash", 0), vela["encoded_weight_bytes"])],
               ["compile s (best of 3)", ours["compile_s"], vela["compile_s"], ratio(ours["compile_s"], vela["compile_s"])]]
    print(table(["network", "npukit", "Vela", "npukit/Vela"], summary))
    verdict = "fewer" if ours["cycles"] < vela["cycles"] else "NOT fewer"
    print(f"target: npukit cycles < Vela cycles: {verdict} ({ours['cycles']} vs {vela['cycles']})")
    return {"model": path.stem, "vela": vela, "npukit": ours}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print(f"machine: {machine_line()}")
    models = args.models or sorted(DEFAULT_DIR.glob("*.tflite"))
    if not models:
        print(f"no MLPerf-Tiny models in {DEFAULT_DIR}: run scripts/make_mlperf_tiny.py "
              f"(needs tensorflow); falling back to the int8 operator models in {FALLBACK_DIR}")
        models = sorted(FALLBACK_DIR.glob("*.tflite"))
    try:
        vela = run_peer("vela", "vela_driver.py", REPEATS, *models)
    except PeerMissing as exc:
        sys.exit(str(exc))
    print(f"Vela {vela['version']}: ethos-u55-256, Ethos_U55_High_End_Embedded, Shared_Sram")
    results = [compare(path, v) for path, v in zip(models, vela["models"])]
    done = [r for r in results if r["npukit"] and "error" not in r["vela"]]
    if done:
        rows = [[r["model"], r["npukit"]["cycles"], r["vela"]["cycles"],
                 ratio(r["npukit"]["cycles"], r["vela"]["cycles"]),
                 r["npukit"]["bytes"].get("flash", 0), r["vela"]["bytes"]["flash"],
                 r["npukit"]["bytes"].get("sram", 0), r["vela"]["bytes"]["sram"],
                 r["npukit"]["compile_s"], r["vela"]["compile_s"],
                 ratio(r["npukit"]["compile_s"], r["vela"]["compile_s"])] for r in done]
        print(table(["model", "npukit cyc", "Vela cyc", "npk/Vela", "npukit flash B", "Vela flash B",
                     "npukit SRAM B", "Vela SRAM B", "npukit compile s", "Vela compile s", "compile npk/Vela"],
                    rows, "\n== summary: u55-256 vs Vela (Ethos-U55-256 default config) =="))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
