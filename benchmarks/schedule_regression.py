"""Total cycles of the test models on the test presets and option sets, against a record.

    python -m benchmarks.schedule_regression --record benchmarks/schedule_baseline.json
    python -m benchmarks.schedule_regression --check benchmarks/schedule_baseline.json

`--check` fails (exit 1) when any program takes more cycles than the record; it prints each
case's cycles and compile seconds before and after. `--zoo` adds ResNet-18 and MobileNetV2
(224x224, slower).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from npukit.arch import load_arch
from npukit.codegen.context import CompileOptions
from npukit.codegen.lower import lower_program
from npukit.compiler import compile_graph, load_model
from npukit.cost.timing import simulate

REPO = Path(__file__).resolve().parent.parent
PRESETS = ("u55-256", "npu-m")
SHAPES = {"digits_cnn": {"x": (1, 1, 8, 8)}}
OPTION_SETS = {
    "default": {},
    "fuse_always": {"fuse_depthwise": "always", "fuse_expansion": "always"},
    "fuse_never": {"fuse_depthwise": "never"},
    "expansion_never": {"fuse_expansion": "never"},
    "closed_forms": {"timed_candidates": 1},
    "single_buffer": {"double_buffer": False},
    "offchip": {"onchip_fraction": 0.0, "max_tile_rows": 3},
}


def _models(zoo: bool) -> dict:
    """name -> the quantised graph (calibrated on seeded random inputs for ONNX models)."""
    paths = {"digits_cnn": REPO / "examples/digits/digits_cnn.onnx"}
    paths |= {p.stem: p for p in sorted((REPO / "tests/data/mlperf_tiny").glob("*.tflite"))}
    out = {}
    arch = load_arch("npu-m")
    if zoo:
        import onnx
        from npukit.models import zoo as z
        tmp = Path("/tmp/npukit_schedule_regression")
        tmp.mkdir(exist_ok=True)
        for name in ("resnet18", "mobilenet_v2"):
            onnx.save(getattr(z, name)(), tmp / f"{name}.onnx")
            paths[name] = tmp / f"{name}.onnx"
    for name, path in paths.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, qg, _ = compile_graph(load_model(path, SHAPES.get(name)), arch, None, sqnr=False)
        out[name] = qg
    return out


def measure(zoo: bool, option_sets=OPTION_SETS) -> dict:
    results = {}
    for model, qg in _models(zoo).items():
        for preset in PRESETS:
            arch = load_arch(preset)
            for opt_name, opts in option_sets.items():
                if zoo and model in ("resnet18", "mobilenet_v2") and opt_name != "default":
                    continue
                t0 = time.perf_counter()
                prog = lower_program(qg, arch, CompileOptions(**opts), {})
                seconds = time.perf_counter() - t0
                cycles = simulate(prog, arch).total_cycles
                results[f"{model}/{preset}/{opt_name}"] = {"cycles": int(cycles), "seconds": round(seconds, 2)}
                print(f"{model:24s} {preset:8s} {opt_name:16s} {cycles:>12d} {seconds:7.2f}s", flush=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--record", type=Path)
    ap.add_argument("--check", type=Path)
    ap.add_argument("--zoo", action="store_true")
    a = ap.parse_args()
    np.seterr(all="ignore")
    got = measure(a.zoo)
    if a.record:
        a.record.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    if not a.check:
        return 0
    before = json.loads(a.check.read_text())
    worse = []
    print(f"\n{'case':48s} {'before':>10s} {'after':>10s} {'s before':>9s} {'s after':>8s}")
    for case, now in got.items():
        if case not in before:
            continue
        b = before[case]
        mark = " WORSE" if now["cycles"] > b["cycles"] else ""
        print(f"{case:48s} {b['cycles']:>10d} {now['cycles']:>10d} {b['seconds']:>9.2f} {now['seconds']:>8.2f}{mark}")
        if mark:
            worse.append(case)
    tb = sum(before[c]["seconds"] for c in got if c in before)
    ta = sum(got[c]["seconds"] for c in got if c in before)
    print(f"compile seconds: {tb:.1f} before, {ta:.1f} after; {len(worse)} case(s) slower in cycles")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
