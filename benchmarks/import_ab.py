"""Before/after CPU of the whole `npukit compile MODEL --arch u55-256 -o OUT` process: best of N
fresh processes (user + system), two checkouts taking turns, byte-code cached per checkout.

    python benchmarks/import_ab.py N MODEL[,MODEL...] DIR_BEFORE DIR_AFTER

MODEL names a file of tests/data/mlperf_tiny (without .tflite); each DIR is a checkout of npukit
(e.g. `git archive COMMIT | tar -x -C DIR`)."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "mlperf_tiny"


def once(d: str, m: str) -> float:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "PYTHONPATH": d,
           "PYTHONPYCACHEPREFIX": "/tmp/pyc-ab-" + d.strip("/").replace("/", "-")}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "npukit.cli", "compile", str(MODELS / f"{m}.tflite"), "--arch", "u55-256",
                    "-o", os.devnull], cwd=d, env=env, check=True, capture_output=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime


def main() -> None:
    n, models, dirs = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3:]
    for d in dirs:          # fill each byte-code cache
        once(d, models[0])
    for m in models:
        best = {d: float("inf") for d in dirs}
        for _ in range(n):
            for d in dirs:
                best[d] = min(best[d], once(d, m))
        print(m, *(f"{d}={best[d]:.4f}" for d in dirs))


if __name__ == "__main__":
    main()
