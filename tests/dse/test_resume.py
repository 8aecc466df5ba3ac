"""Kill the explorer with SIGKILL mid-sweep, start it again: no finished point is lost or
duplicated, none is recomputed, and the final database equals an uninterrupted run's."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

from dse_util import stored, write_space
from npukit.dse import InlineExecutor, explore, load_space

SPACE = """
[strategy]
kind = "grid"
[arch]
"mxu.rows" = [8, 16, 32]
"mxu.cols" = [8, 32]
"vpu.lanes" = [8, 16]
"regions.dram.bandwidth_gbps" = [2.0, 32.0]
[options]
double_buffer = [true, false]
[check]
inputs = 1
"""
TOTAL = 2 * 3 * 2 * 2 * 2 * 2


def _explore(space, db):
    return subprocess.Popen([sys.executable, "-m", "npukit.cli", "explore", "--space", str(space), "--db", str(db),
                             "--workers", "2", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _count(db) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:   # not created yet
        return 0


def test_sigkill_mid_sweep_then_resume(tmp_path, ds_cnn_path):
    space = write_space(tmp_path, SPACE, ds_cnn_path)
    db = tmp_path / "runs.sqlite"
    proc = _explore(space, db)
    deadline = time.monotonic() + 120
    while _count(db) < 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)          # the explorer and its workers, at once
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    before = {k: r for k, r in _all_rows(db).items()}
    assert 20 <= len(before) < TOTAL, "the kill must land mid-sweep"

    resumed = _explore(space, db)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"{len(before)} already stored" in out and f"{TOTAL - len(before)} computed" in out
    after = _all_rows(db)
    assert all(after[k] == r for k, r in before.items())    # untouched, timestamps included
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM points").fetchone() == (TOTAL, TOTAL)

    explore(load_space(space), tmp_path / "whole.sqlite", InlineExecutor(), progress=False)
    assert stored(db) == stored(tmp_path / "whole.sqlite")


def _all_rows(db) -> dict[str, tuple]:
    with sqlite3.connect(db) as c:
        return {r[0]: r for r in c.execute("SELECT * FROM points")}
