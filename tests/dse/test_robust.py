"""The explorer survives bad points and bad neighbours: a point that raises, hangs or runs out
of memory is stored as failed with its reason and the sweep goes on; a rerun skips it; killing
the explorer kills its workers; two explorers on one database share the points; a database
npukit cannot use is refused in one line and left as it was."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import pytest

import npukit

from dse_util import DIGITS, explorer_argv, stored
from npukit.dse import InlineExecutor, PointLimits, PoolExecutor, Store, explore, load_space
from npukit.dse.point import Outcome, evaluate
from npukit.errors import InputError
from npukit.limits import MIB
from npukit.testing.fixtures import run_cli

MODEL = f'[[models]]\npath = "{DIGITS}"\ninput_shapes = {{ x = [1, 1, 8, 8] }}\n'
SPACE = '[strategy]\nkind = "grid"\n[arch]\n"mxu.rows" = [4, 8, 16, 32, 64]\n"mxu.cols" = [8, 16]\n' + MODEL


def misbehaving(task, graph):
    """By mxu.rows: 4 raises, 8 hangs, 16 allocates 4 GiB, others are real points."""
    rows = json.loads(task.arch_json)["mxu"]["rows"]
    if rows == 4:
        return 1 // 0
    if rows == 8:
        time.sleep(600)
    if rows == 16:
        return bytearray(4 << 30)
    return evaluate(task, graph)


def _death_mark(task) -> Path:
    return Path(tempfile.gettempdir(), f"npukit-test-death-{task.key}")


def dying(task, graph):
    """By mxu.rows: 4 kills its worker every time, 8 on its first attempt only; others are real."""
    rows = json.loads(task.arch_json)["mxu"]["rows"]
    if rows == 4 or (rows == 8 and not _death_mark(task).exists()):
        _death_mark(task).touch()
        os._exit(3)
    return evaluate(task, graph)


def _space(tmp_path: Path, body: str = SPACE) -> Path:
    (tmp_path / "space.toml").write_text(body)
    return tmp_path / "space.toml"


def _by_rows(db: Path) -> dict[int, set[tuple[str, str]]]:
    out: dict[int, set] = {}
    for r in stored(db).values():
        out.setdefault(json.loads(r["arch_json"])["mxu"]["rows"], set()).add((r["status"], r["error"]))
    return out


def test_raising_hanging_and_memory_hungry_points_are_stored_failed(tmp_path):
    space, db = load_space(_space(tmp_path)), tmp_path / "runs.sqlite"
    t0 = time.monotonic()
    s = explore(space, db, PoolExecutor(2, limits=PointLimits(seconds=3, memory_bytes=1024 * MIB)),
                progress=False, evaluate_fn=misbehaving)
    assert time.monotonic() - t0 < 120
    assert (s.computed, s.failed, s.lost) == (10, 6, 0)
    rows = _by_rows(db)
    assert rows[4] == {("error", "ZeroDivisionError: integer division or modulo by zero")}
    assert rows[8] == {("error", "timed out after 3 s")}
    assert rows[16] == {("error", "MemoryError")}
    assert rows[32] == rows[64] == {("ok", "")}

    calls = []   # a rerun computes nothing: stored failures are skipped too
    again = explore(space, db, InlineExecutor(), progress=False, evaluate_fn=lambda t, g: calls.append(t))
    assert (again.computed, again.reused, calls) == (0, 10, [])


def test_a_point_whose_worker_dies_is_retried_then_lost_and_the_others_are_computed(tmp_path):
    space, db = load_space(_space(tmp_path)), tmp_path / "runs.sqlite"
    keys = list(stored(_inline(space, tmp_path)))
    marks = [Path(tempfile.gettempdir(), f"npukit-test-death-{k}") for k in keys]
    try:
        s = explore(space, db, PoolExecutor(2, max_retries=2), progress=False, evaluate_fn=dying)
    finally:
        for m in marks:
            m.unlink(missing_ok=True)
    assert (s.computed, s.failed, s.lost) == (8, 0, 2)     # rows 4 lost, rows 8 retried once
    rows = _by_rows(db)
    assert 4 not in rows and all(rows[r] == {("ok", "")} for r in (8, 16, 32, 64))


def test_a_decoy_npukit_in_the_working_folder_does_not_run_the_points(tmp_path):
    """Workers are forked from the explorer (on Linux), so they run its own npukit: a decoy
    package in the working folder, first on a fresh interpreter's sys.path, is never imported."""
    decoy, work = tmp_path / "decoy", tmp_path / "work"
    (decoy / "npukit").mkdir(parents=True)
    (decoy / "npukit" / "__init__.py").write_text("")
    work.mkdir()
    root = Path(npukit.__file__).parent.parent
    (work / "sweep.py").write_text(
        f"import sys\nsys.path.insert(0, {str(root)!r})\n"
        "from npukit.dse import PoolExecutor, explore, load_space\n"
        "if __name__ == '__main__':\n"
        "    pool = PoolExecutor(2)\n"
        f"    s = explore(load_space({str(_space(tmp_path))!r}), {str(tmp_path / 'r.sqlite')!r}, pool, progress=False)\n"
        "    print(pool.ctx.get_start_method(), s.computed, s.failed)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([sys.executable, str(work / "sweep.py")], cwd=decoy, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["fork" if sys.platform.startswith("linux") else "spawn", "10", "0"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="workers are forked on Linux only")
def test_the_pool_spawns_its_workers_when_a_fork_would_start_over_half_their_memory_limit():
    """A forked worker starts with the explorer's address space (VmSize, read here from
    /proc/self/status): within half the limit it is forked, beyond it spawned."""
    vm = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
    tight, roomy = (PoolExecutor(1, limits=PointLimits(memory_bytes=m)) for m in (vm * 3 // 2, vm * 3))
    for pool in (tight, roomy):
        pool.start({})
    assert (tight.ctx.get_start_method(), roomy.ctx.get_start_method()) == ("spawn", "fork")


def _inline(space, tmp_path: Path) -> Path:
    """The sweep's points, computed in-process (for their keys)."""
    db = tmp_path / "inline.sqlite"
    explore(space, db, InlineExecutor(), progress=False, evaluate_fn=lambda t, g: Outcome(t.key, "ok"))
    return db


def test_inline_points_that_raise_are_stored_failed(tmp_path):
    def raising(task, graph):
        raise RuntimeError("first line\nsecond line")
    s = explore(load_space(_space(tmp_path)), tmp_path / "r.sqlite", InlineExecutor(), progress=False,
                evaluate_fn=raising)
    assert (s.computed, s.failed) == (10, 10)
    assert {r["error"] for r in stored(tmp_path / "r.sqlite").values()} == {"RuntimeError: first line"}


def test_a_model_whose_preparation_raises_is_stored_failed(tmp_path, monkeypatch):
    def broken(spec, quant=()):
        raise ValueError("buffer size must be a multiple of element size")
    monkeypatch.setattr("npukit.dse.prepare.quantise", broken)
    s = explore(load_space(_space(tmp_path)), tmp_path / "r.sqlite", InlineExecutor(), progress=False)
    assert (s.computed, s.failed) == (10, 10)
    assert {r["error"] for r in stored(tmp_path / "r.sqlite").values()} == {
        "ValueError: buffer size must be a multiple of element size"}


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`."""
    parent = {}
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
        except (OSError, ValueError):
            continue
        if d.name.isdigit():
            parent[int(d.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    out, todo = set(), [pid]
    while todo:
        top = todo.pop()
        below = {p for p, pp in parent.items() if pp == top}
        out |= below
        todo += below
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killing_the_explorer_kills_its_workers(tmp_path, sig):
    marks = tmp_path / "marks"
    marks.mkdir()
    db = tmp_path / "runs.sqlite"
    env = {**os.environ, "NPUKIT_TEST_MARKS": str(marks), "NPUKIT_TEST_SLEEP": "600"}
    proc = subprocess.Popen(explorer_argv(_space(tmp_path), db, 1), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(marks.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = _descendants(proc.pid)
    assert any(marks.iterdir()) and workers, proc.stderr.read() if proc.poll() else ""
    os.kill(proc.pid, sig)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_alive, workers))
    if sig == signal.SIGTERM:   # a clean stop: no claim left behind
        assert proc.returncode == 128 + signal.SIGTERM
        with sqlite3.connect(db) as c:
            assert c.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


def test_two_explorers_on_one_database_share_the_points(tmp_path):
    space = _space(tmp_path, SPACE.replace("[4, 8, 16, 32, 64]", "[8, 16, 32, 64]"))   # 8 points
    marks = tmp_path / "marks"
    marks.mkdir()
    db = tmp_path / "runs.sqlite"
    Store(db).close()   # both open an existing database
    env = {**os.environ, "NPUKIT_TEST_MARKS": str(marks), "NPUKIT_TEST_SLEEP": "0.7"}
    procs = [subprocess.Popen(explorer_argv(space, db, 0), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    computed = [int(o[0].split("computed=")[1].split()[0]) for o in outs]
    assert sum(computed) == 8 and min(computed) > 0, outs
    assert len(list(marks.iterdir())) == 8            # each point evaluated once
    assert len(stored(db)) == 8 and all(r["status"] == "ok" for r in stored(db).values())


def test_claims_of_a_dead_explorer_are_taken_over(tmp_path):
    space = load_space(_space(tmp_path))
    explore(space, tmp_path / "keys.sqlite", InlineExecutor(), progress=False)
    db = tmp_path / "runs.sqlite"
    Store(db).close()
    dead = subprocess.Popen(["true"])
    dead.wait()
    host, now = os.uname().nodename, time.time()
    with closing(sqlite3.connect(db)) as c:   # every point claimed by a process that is gone
        c.executemany("INSERT INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                      [(k, f"{host}:{dead.pid}:1", host, dead.pid, now, now) for k in stored(tmp_path / "keys.sqlite")])
        c.commit()
    t0 = time.monotonic()
    s = explore(space, db, InlineExecutor(), progress=False)
    assert s.computed == 10 and time.monotonic() - t0 < 30


def _not_sqlite(path: Path) -> None:
    path.write_text("rows,latency\n1,2\n")


def _other_schema(path: Path) -> None:
    with closing(sqlite3.connect(path)) as c:
        c.execute("CREATE TABLE points (key TEXT, value REAL)")
        c.commit()


def _newer_version(path: Path) -> None:
    Store(path).close()
    with closing(sqlite3.connect(path)) as c:
        c.execute("PRAGMA user_version = 7")


def _filled(path: Path) -> None:
    with Store(path) as s:
        for _ in range(40):
            s.begin_sweep("x" * 4000, "inline")


def _truncated(path: Path) -> None:
    _filled(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbled(path: Path) -> None:
    _filled(path)
    data = bytearray(path.read_bytes())
    data[4096:len(data)] = os.urandom(len(data) - 4096)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("make", [_not_sqlite, _other_schema, _newer_version, _truncated, _garbled])
def test_a_database_npukit_cannot_use_is_refused_and_left_alone(tmp_path, make):
    db = tmp_path / "bad.sqlite"
    make(db)
    before = db.read_bytes()
    with pytest.raises(InputError, match="bad.sqlite"):
        Store(db)
    r = run_cli("explore", "--space", _space(tmp_path), "--db", db, "--workers", "1", "--quiet")
    assert r.returncode == 2 and "bad.sqlite" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert db.read_bytes() == before


def test_pareto_refuses_a_database_npukit_cannot_use(tmp_path):
    db = tmp_path / "bad.sqlite"
    _not_sqlite(db)
    r = run_cli("pareto", "--db", db)
    assert r.returncode == 2 and r.stderr.strip() == f"error: {str(db)!r} is not an SQLite database: refusing " \
        "to use it as the results database", r.stderr
