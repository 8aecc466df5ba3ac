"""Measurement child: one whole-network npukit timing estimate in a fresh interpreter.

    python benchmarks/npukit_timing.py full   MODEL.onnx ARCH.toml   # compile + profile
    python benchmarks/npukit_timing.py timing QGRAPH.pkl ARCH.toml   # lower + simulate + profile

`full` is what `npukit profile MODEL` does in memory (load, optimise, calibrate on random
inputs, quantise, lower, simulate; no SQNR pass). `timing` starts from an already quantised graph (pickled by the parent) and
times only the timing model's own work. Prints one JSON line: wall seconds (best of
`repeats`; `first_*`: the first run, which also pays npukit's lazy imports: onnx, ...), peak
RSS of the process (VmHWM), RSS after imports, and the tracemalloc peak of one extra traced run.
"""
from __future__ import annotations

import json
import pickle
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's npukit, not an installed one


def status_mib(key: str) -> float:
    """VmRSS / VmHWM of this process (ru_maxrss would include the parent's RSS at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    mode, source, arch_path = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    warnings.simplefilter("ignore")   # random calibration: timing does not depend on the data
    import npukit
    from npukit.arch import load_arch
    from npukit.codegen.context import CompileOptions
    from npukit.codegen.lower import lower_program
    from npukit.report.profile import build_profile
    from npukit.cost.timing import simulate

    arch = load_arch(arch_path)
    qgraph = pickle.loads(source.read_bytes()) if mode == "timing" else None
    rss_base = status_mib("VmRSS")

    def estimate():
        if mode == "full":
            # as `npukit profile MODEL` does: no noise report, one random calibration sample
            return npukit.compile(source, arch, sqnr=False, random_samples=1).profile()
        program = lower_program(qgraph, arch, CompileOptions(), {})
        return build_profile(program, arch, simulate(program, arch))

    times, cpus, profile = [], [], None
    for _ in range(repeats):          # each compile searches from scratch (its caches are its own)
        t0, c0 = time.perf_counter(), time.process_time()
        profile = estimate()
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    peak_rss = status_mib("VmHWM")
    tracemalloc.start()
    estimate()
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    print(json.dumps({"tool": f"npukit-{mode}", "wall_s": min(times), "walls_s": times, "cpu_s": min(cpus),
                      "first_wall_s": times[0], "first_cpu_s": cpus[0],
                      "peak_rss_mib": peak_rss, "rss_after_import_mib": rss_base,
                      "traced_peak_mib": traced_peak, "total_cycles": profile.total_cycles,
                      "instructions": profile.instructions, "npukit": str(Path(npukit.__file__).parent)}))


if __name__ == "__main__":
    main()
