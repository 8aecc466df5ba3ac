"""The SQLite store of design points: one row per content key, written once.

WAL journal, one transaction per finished point, `INSERT OR IGNORE` on the key: a process
killed at any instant leaves every committed point intact and none half-written, and a
restarted sweep neither loses nor duplicates a point. Only the explorer's own process writes.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..version import build_id
from ..errors import InputError
from .point import METRICS, Outcome

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    model_path TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    calibration_hash TEXT NOT NULL,
    arch_name TEXT NOT NULL,
    arch_id TEXT NOT NULL,
    arch_json TEXT NOT NULL,
    params_json TEXT NOT NULL,
    options_json TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL,
    {", ".join(f"{m} {'REAL' if m in ('latency_ms', 'energy_uj', 'area_mm2', 'utilisation') else 'INTEGER'}"
               for m in METRICS)},
    check_inputs INTEGER NOT NULL,
    check_result TEXT NOT NULL,
    detail_json TEXT NOT NULL,
    npukit_version TEXT NOT NULL,
    eval_seconds REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at REAL NOT NULL,
    space_toml TEXT NOT NULL,
    executor TEXT NOT NULL,
    npukit_version TEXT NOT NULL
);
"""
# Columns that describe how a run went rather than what the point is.
RUN_COLUMNS = ("eval_seconds", "created_at")


@dataclass(frozen=True)
class PointInfo:
    """The stored description of a point, known before it is evaluated."""
    key: str
    model: str
    model_path: str
    model_hash: str
    calibration_hash: str
    arch_name: str
    arch_id: str
    arch_json: str
    params_json: str
    options_json: str
    check_inputs: int


class Store:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")   # WAL+NORMAL: durable across process kills
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"cannot open results database {str(self.path)!r}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def begin_sweep(self, space_toml: str, executor: str) -> int:
        cur = self.db.execute("INSERT INTO sweeps (started_at, space_toml, executor, npukit_version) "
                              "VALUES (?, ?, ?, ?)", (time.time(), space_toml, executor, build_id()))
        return int(cur.lastrowid)

    def has(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM points WHERE key = ?", (key,)).fetchone() is not None

    def get(self, key: str) -> dict | None:
        row = self.db.execute("SELECT * FROM points WHERE key = ?", (key,)).fetchone()
        return dict(row) if row else None

    def put(self, info: PointInfo, outcome: Outcome) -> bool:
        """Store one finished point in its own transaction; False if the key was already there."""
        row = {**info.__dict__, "status": outcome.status, "error": outcome.error,
               **{m: outcome.metrics.get(m) for m in METRICS}, "check_result": outcome.check,
               "detail_json": json.dumps(outcome.detail, sort_keys=True), "npukit_version": build_id(),
               "eval_seconds": outcome.eval_seconds, "created_at": time.time()}
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        cur = self.db.execute(f"INSERT OR IGNORE INTO points ({cols}) VALUES ({marks})", tuple(row.values()))
        return cur.rowcount == 1

    def rows(self, model: str | None = None, status: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM points", []
        where = [(c, v) for c, v in (("model", model), ("status", status)) if v is not None]
        if where:
            sql += " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where)
            args = [v for _, v in where]
        return [dict(r) for r in self.db.execute(sql + " ORDER BY key", args)]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM points").fetchone()[0])


def open_existing(path: str | Path) -> Store:
    if not Path(path).is_file():
        raise InputError(f"no results database at {str(path)!r} (run `npukit explore` first)")
    return Store(path)
