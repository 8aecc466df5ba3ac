"""Whole-process wall and CPU time of npukit's command line, and of Vela's on the same models.

    python benchmarks/startup.py [--repeats 5] [--before DIR] [--json OUT.json]

Each command runs as a fresh subprocess from the repository root (so imports count); the
figures are the best of `--repeats` runs: wall time, and CPU time (user + system of the
process, less sensitive to a busy machine). Byte-code is cached (in a temporary
PYTHONPYCACHEPREFIX, even when PYTHONDONTWRITEBYTECODE is set) as an installed package has
it: the first run fills it. Measured: `npukit --help`, `npukit archs`, `python -c "import
npukit"`, `python -c pass` on npukit's interpreter and on Vela's venv (what starting each costs
before any of its own code: site-packages' .pth files included), and `npukit compile MODEL
--arch u55-256 -o M.npub` of each MLPerf-Tiny int8 model (tests/data/mlperf_tiny); with Vela
installed (`bash benchmarks/setup_peers.sh vela`), `vela MODEL --accelerator-config ethos-u55-256` on the same files in the same run, and
npukit's time over Vela's. `--before DIR`: another checkout of npukit (e.g. `git worktree add
DIR COMMIT`) timed the same way, each repeat right after this one's, for a before/after
comparison under the same load.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PEERS_DIR, REPO, machine_line, ratio, table

MODELS = sorted((REPO / "tests" / "data" / "mlperf_tiny").glob("*.tflite"))
NPUKIT = [sys.executable, "-m", "npukit.cli"]


def once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of `argv` as a fresh process (it must succeed)."""
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited with {proc.returncode}: {proc.stderr[-1000:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def best(runs: dict[str, tuple[list[str], Path]], repeats: int, env: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) of each named command; the commands take turns in every repeat."""
    out = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(repeats):
        for name, (argv, cwd) in runs.items():
            w, c = once(argv, cwd, env)
            out[name] = (min(out[name][0], w), min(out[name][1], c))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--before", type=Path, help="another npukit checkout to time alongside this one")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
        measure(args, {**env, "PYTHONPYCACHEPREFIX": f"{tmp}/pycache"}, Path(tmp))


def measure(args: argparse.Namespace, env: dict[str, str], tmp: Path) -> None:
    trees = {"": REPO} | ({"before ": args.before.resolve()} if args.before else {})
    vela = PEERS_DIR / "vela" / "bin" / "vela"
    commands = {"npukit --help": ["--help"], "npukit archs": ["archs"]}
    runs = {f"{tag}{name}": ([*NPUKIT, *argv], root) for name, argv in commands.items() for tag, root in trees.items()}
    runs |= {f"{tag}python -c 'import npukit'": ([sys.executable, "-c", "import npukit"], root)
             for tag, root in trees.items()}
    # the interpreters alone: npukit's (with its site-packages' .pth files) and Vela's venv
    runs["python -c pass (npukit's interpreter)"] = ([sys.executable, "-c", "pass"], REPO)
    if vela.exists():
        runs["python -c pass (Vela's venv)"] = ([str(vela.parent / "python"), "-c", "pass"], REPO)
    startup = best(runs, args.repeats, env)
    print(table(["command", "wall s", "CPU s"], [[k, *v] for k, v in startup.items()],
                f"startup, best of {args.repeats} fresh processes"))
    rows, results = [], {"machine": machine_line(), "startup": startup, "compile": {}}
    for model in MODELS:
        runs = {tag or "after": ([*NPUKIT, "compile", str(model), "--arch", "u55-256", "-o", str(tmp / f"{model.stem}.npub")],
                                 root) for tag, root in trees.items()}
        if vela.exists():
            runs["vela"] = ([str(vela), str(model), "--accelerator-config", "ethos-u55-256", "--output-dir", str(tmp)],
                            REPO)
        got = best(runs, args.repeats, env)
        results["compile"][model.stem] = {k.strip(): {"wall_s": w, "cpu_s": c} for k, (w, c) in got.items()}
        theirs = got.get("vela")
        for tag in trees:
            w, c = got[tag or "after"]
            rows.append([model.stem + (f" ({tag.strip()})" if tag else ""), w, c,
                         *(["n/a"] * 4 if theirs is None else [*theirs, ratio(w, theirs[0]), ratio(c, theirs[1])])])
    print()
    print(table(["model (u55-256)", "npukit wall s", "npukit CPU s", "Vela wall s", "Vela CPU s",
                 "wall / Vela", "CPU / Vela"], rows,
                f"compile, whole process, best of {args.repeats}"
                + ("" if vela.exists() else f" (Vela not installed under {PEERS_DIR})")))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
