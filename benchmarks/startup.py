"""Whole-process wall time of npukit's command line, and of Vela's on the same models.

    python benchmarks/startup.py [--repeats 5] [--json OUT.json]

Each command runs as a fresh subprocess from the repository root (so imports count); the
figure is the best of `--repeats` runs. Byte-code is cached (in a temporary PYTHONPYCACHEPREFIX,
even when PYTHONDONTWRITEBYTECODE is set) as an installed package has it: the first run fills it. Measured: `npukit --help`, `npukit archs`,
`python -c "import npukit"`, and `npukit compile MODEL --arch u55-256` of each MLPerf-Tiny
int8 model (tests/data/mlperf_tiny); with Vela installed (`bash benchmarks/setup_peers.sh
vela`), `vela MODEL --accelerator-config ethos-u55-256` on the same files in the same run,
and npukit's time over Vela's.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS_DIR, REPO, machine_line, ratio, table

MODELS = sorted((REPO / "tests" / "data" / "mlperf_tiny").glob("*.tflite"))
NPUKIT = [sys.executable, "-m", "npukit.cli"]


def wall(argv: list[str], repeats: int, env: dict[str, str]) -> float:
    """Best of `repeats` wall times of `argv` as a fresh process (it must succeed)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
        best = min(best, time.perf_counter() - t0)
        if proc.returncode:
            raise RuntimeError(f"{' '.join(map(str, argv))} exited with {proc.returncode}: {proc.stderr[-1000:]}")
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    vela = PEERS_DIR / "vela" / "bin" / "vela"
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        measure(args, vela, {**env, "PYTHONPYCACHEPREFIX": f"{tmp}/pycache"}, Path(tmp))


def measure(args: argparse.Namespace, vela: Path, env: dict[str, str], tmp: Path) -> None:
    startup = {"npukit --help": wall([*NPUKIT, "--help"], args.repeats, env),
               "npukit archs": wall([*NPUKIT, "archs"], args.repeats, env),
               "python -c 'import npukit'": wall([sys.executable, "-c", "import npukit"], args.repeats, env)}
    print(table(["command", "wall s"], [[k, v] for k, v in startup.items()],
                f"startup, best of {args.repeats} fresh processes"))
    rows, results = [], {"machine": machine_line(), "startup": startup, "compile": {}}
    for model in MODELS:
        ours = wall([*NPUKIT, "compile", str(model), "--arch", "u55-256", "-o", str(tmp / f"{model.stem}.npub")],
                    args.repeats, env)
        theirs = wall([str(vela), str(model), "--accelerator-config", "ethos-u55-256", "--output-dir", str(tmp)],
                      args.repeats, env) if vela.exists() else None
        results["compile"][model.stem] = {"npukit_s": ours, "vela_s": theirs}
        rows.append([model.stem, ours, "n/a" if theirs is None else theirs,
                     "n/a" if theirs is None else ratio(ours, theirs)])
    print()
    print(table(["model (u55-256)", "npukit compile s", "Vela s", "npukit / Vela"], rows,
                f"compile, whole process, best of {args.repeats}"
                + ("" if vela.exists() else f" (Vela not installed under {PEERS_DIR})")))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
