"""Throughput of the README's design-space sweep, for one or more versions of npukit side by side.

    python benchmarks/explore_throughput.py [--rev a019d55] [--rev .] [--repeats 3] [--samples N] [--json OUT.json]

Runs `npukit explore --space examples/space.toml --db runs.sqlite --workers 2` (this tree's
space file, a fresh database each time) as a fresh process from each revision's source tree
(`.` = this working tree; a git revision is exported with `git archive` to a cache folder under
the temporary directory, so no worktree is touched). Runs are interleaved across revisions,
after one unmeasured warm-up run of each (it fills the byte-code cache, kept in a temporary
PYTHONPYCACHEPREFIX even when PYTHONDONTWRITEBYTECODE is set, and numba's cache, as an
installed package has them). Prints, per revision, the best wall time of `--repeats` runs,
points per second over it (points stored / whole-process wall time, start-up included), the
best points/s the explorer itself printed (its clock starts after the command line is parsed),
the CPU seconds of the explorer and its workers, and whether every revision stored the same
results as the one before it (and what differs): each point's row (matched by model, swept
values and options) apart from the key and version (they hash the source) and the run-time
columns. Compiler options added after an older revision are left out of the comparison when
they hold one value in every row (their default), and named in the report. `--samples N`
runs the same space with N random configurations instead of its 40 (start-up then weighs less).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine_line, ratio, table

SPACE = REPO / "examples" / "space.toml"
CACHE = Path(tempfile.gettempdir()) / "npukit-explore-bench"
IGNORED = {"key", "npukit_version", "eval_seconds", "created_at"}


def source_tree(rev: str) -> tuple[Path, str]:
    """(the folder to run `rev` from, a label)."""
    if rev == ".":
        return REPO, "this tree"
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = CACHE / sha[:12]
    if not (tree / "npukit").is_dir():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=REPO, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree, f"{rev} ({sha[:7]})"


def space_file(work: Path, samples: int | None) -> Path:
    """The README's space file, or a copy drawing `samples` configurations."""
    if samples is None:
        return SPACE
    text = SPACE.read_text()
    assert "samples = 40" in text and 'path = "digits/' in text, "examples/space.toml changed: update this script"
    out = work / "space.toml"
    out.write_text(text.replace("samples = 40", f"samples = {samples}")
                   .replace('path = "digits/', f'path = "{SPACE.parent}/digits/'))
    return out


def run_sweep(tree: Path, space: Path, db: Path, workers: int) -> tuple[float, float, int, float]:
    """(wall s, CPU s of the process and its children, points stored, the explorer's own
    points/s) of one sweep."""
    for f in db.parent.glob(db.name + "*"):
        f.unlink()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(tree), PYTHONPYCACHEPREFIX=str(db.parent / "pycache"))
    argv = [sys.executable, "-m", "npukit.cli", "explore", "--space", str(space), "--db", str(db),
            "--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    _reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)} (in {tree}) exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with sqlite3.connect(db) as con:
        points = con.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    own = float(proc.stdout.rsplit(" points/s", 1)[0].rsplit(" ", 1)[1])
    return wall, cpu, points, own


def _become_subreaper() -> None:
    """Descendants orphaned by the explorer (a fork server, its workers) become this process's
    children, so that their CPU time is counted when they are reaped (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1)   # PR_SET_CHILD_SUBREAPER


def _reap_orphans() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def results(db: Path) -> list[dict]:
    """Each stored point's row without the columns that depend on the source or the run."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = [{k: v for k, v in dict(r).items() if k not in IGNORED} for r in con.execute("SELECT * FROM points")]
    con.close()
    return rows


def compared(stored: list[list[dict]]) -> tuple[list[dict[tuple, dict]], dict[str, set]]:
    """Each revision's rows keyed by (model, swept values, options), options cut to the fields
    every revision has; a compiler option some revision lacks (added later) must hold one value
    in all of its rows, returned as {option: values} for the report."""
    options = [[json.loads(r["options_json"]) for r in rows] for rows in stored]
    common = set.intersection(*(set(o) for opts in options for o in opts))
    extra: dict[str, set] = {}
    for opts in options:
        for o in opts:
            for k in set(o) - common:
                extra.setdefault(k, set()).add(json.dumps(o[k]))
    keyed = []
    for rows, opts in zip(stored, options):
        by = {}
        for r, o in zip(rows, opts):
            cut = json.dumps({k: o[k] for k in sorted(common)})
            by[r["model"], r["params_json"], cut] = {**r, "options_json": cut}
        keyed.append(by)
    return keyed, extra


def differences(a: dict[tuple, dict], b: dict[tuple, dict]) -> list[str]:
    """What differs between two revisions' rows: points only one stored, and each column that
    differs with the number of points it differs in."""
    out = [f"{len(a.keys() ^ b.keys())} points stored by only one"] if a.keys() != b.keys() else []
    cols: dict[str, int] = {}
    for k in a.keys() & b.keys():
        for c in a[k].keys() | b[k].keys():
            if a[k].get(c) != b[k].get(c):
                cols[c] = cols.get(c, 0) + 1
    return out + [f"{c} in {n} points" for c, n in sorted(cols.items())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", action="append", help="git revision, or . for this working tree (repeatable)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--samples", type=int, help="configurations drawn (the space file's: 40)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    _become_subreaper()
    trees = [source_tree(r) for r in (args.rev or ["."])]
    work = Path(tempfile.mkdtemp(prefix="npukit-explore-"))
    space = space_file(work, args.samples)
    dbs = [work / f"runs{i}.sqlite" for i in range(len(trees))]
    for (tree, _), db in zip(trees, dbs):
        run_sweep(tree, space, db, args.workers)          # warm-up: byte-code and numba caches
    best = [(float("inf"), float("inf"), 0, 0.0)] * len(trees)
    for _ in range(args.repeats):
        for i, ((tree, _), db) in enumerate(zip(trees, dbs)):
            wall, cpu, points, own = run_sweep(tree, space, db, args.workers)
            best[i] = (min(best[i][0], wall), min(best[i][1], cpu), points, max(best[i][3], own))
    stored, extra = compared([results(db) for db in dbs])
    diffs = [differences(a, b) for a, b in zip(stored, stored[1:])]
    same = not any(diffs) and all(len(v) == 1 for v in extra.values())
    base = best[0][2] / best[0][0]
    rows = [[label, points, wall, cpu, points / wall, ratio(points / wall, base), own, ratio(own, best[0][3])]
            for (_, label), (wall, cpu, points, own) in zip(trees, best)]
    print(machine_line())
    print(f"sweep: npukit explore --space examples/space.toml --db runs.sqlite --workers {args.workers}"
          + (f" with samples = {args.samples}" if args.samples else "") + f"; best of {args.repeats}")
    print(table(["revision", "points", "wall s", "CPU s", "points/s", "vs first", "explorer's points/s",
                 "vs first"], rows))
    if len(trees) > 1:
        print(f"stored results identical across revisions (rows without key, version, times): {'yes' if same else 'NO'}")
        for (_, a), (_, b), d in zip(trees, trees[1:], diffs):
            print(f"  {a} -> {b}: " + (", ".join(d) if d else "identical"))
        if extra:
            print("compiler options not in every revision (one value in all rows, compared without them): "
                  + ", ".join(f"{k} = {' | '.join(sorted(v))}" for k, v in sorted(extra.items())))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_line(), "identical": same, "rows": rows}, indent=1))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
