"""Measurement child: compile one corpus model in a fresh interpreter, as `npukit compile
MODEL --calib FILE.npz` would, and print one JSON line: wall and CPU seconds of the compile
(npukit's lazy imports included) and the process's peak RSS (VmHWM).

    python benchmarks/corpus_compile.py NAME ARCH [CALIB.npz]
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout


def status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    name, arch = sys.argv[1], sys.argv[2]
    import npukit
    from npukit.models.corpus import CORPUS
    from npukit.models.fetch import fetch
    spec = CORPUS[name]
    path = fetch(name)
    calib = dict(np.load(sys.argv[3])) if len(sys.argv) > 3 else None
    extra = {"input_values": spec.input_values} if spec.input_values else {}
    rss_base = status_mib("VmRSS")
    warnings.simplefilter("ignore")
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        prog = npukit.compile(path, arch, input_shapes=spec.input_shapes, calibration=calib, sqnr=False, **extra)
    except npukit.NpukitError as exc:      # a refused model: its error, no figures
        print(json.dumps({"model": name, "error": f"{type(exc).__name__}: {exc}"}))
        return
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"model": name, "compile_s": wall, "cpu_s": cpu, "peak_rss_mib": status_mib("VmHWM"),
                      "rss_before_mib": rss_base, "instructions": len(prog.program.instructions)}))


if __name__ == "__main__":
    main()
