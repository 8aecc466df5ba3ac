"""ResNet-18 at 224x224: compile + whole-network profile with default options, as
`npukit profile resnet18.onnx --arch X` does it (random calibration, one sample, no noise
report), on npu-m and npu-l, each in a fresh process (benchmarks/npukit_timing.py).

    python benchmarks/resnet18_profile.py [--repeats 3] [--json OUT.json]

Per preset: the first run (wall and CPU seconds, npukit's lazy imports included: onnx, ...),
the best of `repeats` runs in the same process (imports done), and the process's peak RSS.
Byte-code is cached as an installed package has it (`common.bytecode_env`; one untimed run
fills the cache first), so a first run does not compile npukit's modules from source.
Target: at most TARGET_S s and TARGET_MB MB on each preset.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # this checkout's npukit
from common import bytecode_env, machine_line, run_self, table

TARGET_S, TARGET_MB = 1.0, 300.0
PRESETS = ("npu-m", "npu-l")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    from npukit.arch import load_arch
    from npukit.models import zoo
    print(f"machine: {machine_line()}")
    runs = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        model = zoo.save(zoo.resnet18(), tmp / "resnet18.onnx")
        env = bytecode_env(tmp / "pycache")
        for preset in PRESETS:
            arch = tmp / f"{preset}.toml"
            arch.write_text(load_arch(preset).to_toml())
            if not runs:
                run_self("npukit_timing.py", "full", model, arch, 1, env=env)    # fills the byte-code cache
            runs[preset] = run_self("npukit_timing.py", "full", model, arch, args.repeats, env=env)
    rows = []
    for preset, r in runs.items():
        mb = r["peak_rss_mib"] * 1.048576
        met = r["first_wall_s"] <= TARGET_S and mb <= TARGET_MB
        rows.append([preset, r["first_wall_s"], r["first_cpu_s"], r["wall_s"], r["cpu_s"], round(mb),
                     r["total_cycles"], "met" if met else "NOT met"])
    print(table(["preset", "first wall s", "first CPU s", f"best-of-{args.repeats} wall s", "best CPU s",
                 "peak RSS MB", "cycles", f"<= {TARGET_S:g} s, {TARGET_MB:g} MB (first run)"], rows,
                "\n== ResNet-18 224x224: compile + profile, default options, fresh process per preset =="))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
