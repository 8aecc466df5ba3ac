"""Sweep the test models the `onnx` wheel ships (backend/test/data/{light, pytorch-converted,
pytorch-operator, simple}) through npukit as a new user would: `npukit.compile(path, "npu-m",
calibration=...)` on the model's own test input plus perturbed copies, `.run()` on that input,
each output against the expected output shipped beside the model; for a model that does not
compile, also `python -m npukit.cli compile` (it must print one line and exit 2).

    python benchmarks/onnx_wheel_sweep.py [--json OUT.jsonl] [--timeout S] [NAME_SUBSTRING ...]

Each model runs in its own child process (a crash or a hang is caught, not inherited). One
line per model: class (npu / host / refused / input refused / crash / wrong / slow), figures,
reason ("input refused": the model compiles, and `run` refuses its shipped input in one line).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))        # run from a checkout

COSINE_OK, REL_OK = 0.98, 0.1        # int8: cosine to the expected output, max |diff| / output range
STEPS_OK = 2.0                       # or max |diff| within this many steps of the output's int8 scale


def child(model: str) -> dict:
    """Compile and run one model; the dict the parent prints."""
    import warnings

    import numpy as np
    import npukit
    from npukit.testing.onnx_wheel import calibration, compare, load_case
    warnings.simplefilter("ignore")
    path = Path(model)
    feeds, want = load_case(path)
    t0 = time.perf_counter()
    try:
        prog = npukit.compile(path, "npu-m", calibration=calibration(feeds), sqnr=False)
    except npukit.NpukitError as exc:
        return {"class": "refused", "reason": f"{type(exc).__name__}: {exc}", "compile_s": time.perf_counter() - t0}
    compile_s = time.perf_counter() - t0
    specs = prog.input_specs
    try:
        got = prog.run({k: np.ascontiguousarray(v, dtype=specs[k][1]) for k, v in feeds.items()})
    except npukit.errors.InputError as exc:     # the shipped input itself (e.g. beyond float32)
        return {"class": "input refused", "reason": f"compiles; run refuses the shipped input: {exc}",
                "compile_s": compile_s}
    run_s = time.perf_counter() - t0 - compile_s
    host = [f"{h['op']}: {h['reason']}" for h in prog.profile().host_ops]
    ok, cos, rel, steps = True, 1.0, 0.0, 0.0
    for t, w in zip(prog.program.outputs, want):
        c, r = compare(got[t.name], w)
        finite = np.isfinite(w) if got[t.name].shape == w.shape else np.zeros(0, bool)
        s = float(np.abs(got[t.name][finite].astype(np.float64) - w[finite]).max() / t.scale) \
            if t.is_float and t.scale and finite.any() else float("inf")
        ok = ok and (c >= COSINE_OK and r <= REL_OK or s <= STEPS_OK)
        cos, rel, steps = min(cos, c), max(rel, r), max(steps, s)
    cls = "wrong" if not ok else ("host" if host else "npu")
    return {"class": cls, "cosine": cos, "rel_max_diff": rel, "steps": steps, "host": host,
            "compile_s": compile_s, "run_s": run_s}


def cli_check(model: Path, timeout: float) -> str:
    """What `python -m npukit.cli compile` says for a model that did not compile."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory() as d:
        try:
            r = subprocess.run([sys.executable, "-m", "npukit.cli", "compile", str(model), "--arch", "npu-m",
                                "-o", str(Path(d) / "model.npub")], capture_output=True, text=True, timeout=timeout,
                               env=env)
        except subprocess.TimeoutExpired:
            return "cli: timeout"
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]
    good = r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr
    return f"cli exit {r.returncode}, {len(lines)} line(s){'' if good else ' (BAD)'}: {lines[-1] if lines else ''}"


def run_one(name: str, model: Path, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, __file__, "--child", str(model)], capture_output=True, text=True,
                           timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"name": name, "class": "slow", "reason": f"over {timeout:.0f} s"}
    last = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else []
    if r.returncode != 0 or not last:
        tail = [ln for ln in r.stderr.strip().splitlines() if ln.strip()][-1:] or [f"exit {r.returncode}"]
        res = {"class": "crash", "reason": tail[0]}
    else:
        res = json.loads(last[0])
    res["name"], res["wall_s"] = name, time.perf_counter() - t0
    if res["class"] in ("refused", "crash"):
        res["cli"] = cli_check(model, timeout)
    return res


def line(r: dict) -> str:
    figs = f"cos {r['cosine']:.4f} rel {r['rel_max_diff']:.3f} {r['steps']:.1f} st" if "cosine" in r else ""
    why = "; ".join(r.get("host", [])) or r.get("reason", "")
    cli = f" [{r['cli']}]" if "cli" in r else ""
    return f"{r['name']:<60} {r['class']:<8} {figs:<32} {why[:150]}{cli}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="only models whose name contains one of these")
    ap.add_argument("--json", type=Path, help="write one JSON line per model")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per model before it counts as slow")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child)))
        return
    from npukit.testing.onnx_wheel import cases
    todo = [(n, p) for n, p in cases() if not a.names or any(s in n for s in a.names)]
    results = []
    for name, model in todo:
        r = run_one(name, model, a.timeout)
        results.append(r)
        print(line(r), flush=True)
        if a.json:
            with a.json.open("a") as f:
                f.write(json.dumps(r) + "\n")
    counts: dict[str, int] = {}
    for r in results:
        counts[r["class"]] = counts.get(r["class"], 0) + 1
    print(" ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
