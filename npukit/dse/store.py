"""The SQLite store of design points: one row per content key, written once.

WAL journal, one transaction per finished point, `INSERT OR IGNORE` on the key: a process
killed at any instant leaves every committed point intact and none half-written, and a
restarted sweep neither loses nor duplicates a point. Only explorers' own processes write;
explorers sharing a database claim points before computing them (`claims`, see claims.py).
A file that is not such a database is refused before anything is written to it, and every
SQLite error (locked, disk I/O, malformed) is one line naming the file.
"""
from __future__ import annotations

import functools
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
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    heartbeat REAL NOT NULL
);
"""
SCHEMA_VERSION = 1   # PRAGMA user_version of a database this npukit writes (0: made before it was set)
_HEADER = b"SQLite format 3\x00"
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


def _columns(db: sqlite3.Connection | sqlite3.Cursor) -> dict[str, list[str]]:
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n: [r[1] for r in db.execute(f"PRAGMA table_info({n!r})")] for n in names if n != "sqlite_sequence"}


_EXPECTED = _columns(sqlite3.connect(":memory:").executescript(SCHEMA))


def _check_file(path: Path) -> None:
    """Refuse a file that is no SQLite database, or a truncated one, before opening it."""
    if path.is_dir():
        raise InputError(f"results database {str(path)!r} is a folder")
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(_HEADER):
        raise InputError(f"{str(path)!r} is not an SQLite database: refusing to use it as the results database")
    page = int.from_bytes(head[16:18], "big")
    need = (65536 if page == 1 else page) * int.from_bytes(head[28:32], "big")
    wal = path.with_name(path.name + "-wal")   # a WAL may hold pages the file has not got yet
    if head[24:28] == head[92:96] and path.stat().st_size < need and not (wal.exists() and wal.stat().st_size):
        raise InputError(f"results database {str(path)!r} is truncated: {path.stat().st_size:,} of {need:,} bytes")


def _sql(method):
    """SQLite errors inside a store method become one-line InputErrors naming the file."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise InputError(f"results database {str(self.path)!r}: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())}") from None
    return guarded


class Store:
    @_sql
    def __init__(self, path: str | Path):
        self.path = Path(path)
        _check_file(self.path)
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        tables = _columns(self.db)
        if not tables:
            self.db.executescript(SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        else:
            self._check_schema(tables)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")   # WAL+NORMAL: durable across process kills

    def _check_schema(self, tables: dict[str, list[str]]) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        where = f"{str(self.path)!r} is not an npukit results database"
        if version not in (0, SCHEMA_VERSION):
            raise InputError(f"{where} of this version (schema version {version}, this npukit writes {SCHEMA_VERSION})")
        odd = [t for t, cols in tables.items() if _EXPECTED.get(t) != cols]
        if odd or "points" not in tables:
            raise InputError(f"{where} (its table {(odd or ['points'])[0]!r} is {'different' if odd else 'missing'})")
        if self.db.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok":
            raise InputError(f"results database {str(self.path)!r} is corrupted (PRAGMA quick_check failed)")
        self.db.executescript(SCHEMA)   # tables a database from an older npukit lacks (claims)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @_sql
    def begin_sweep(self, space_toml: str, executor: str) -> int:
        cur = self.db.execute("INSERT INTO sweeps (started_at, space_toml, executor, npukit_version) "
                              "VALUES (?, ?, ?, ?)", (time.time(), space_toml, executor, build_id()))
        assert cur.lastrowid is not None     # set by the INSERT
        return int(cur.lastrowid)

    @_sql
    def get(self, key: str) -> dict | None:
        row = self.db.execute("SELECT * FROM points WHERE key = ?", (key,)).fetchone()
        return dict(row) if row else None

    @_sql
    def put(self, info: PointInfo, outcome: Outcome) -> bool:
        """Store one finished point and drop its claim, in one transaction; False if the key
        was already there."""
        row = {**info.__dict__, "status": outcome.status, "error": outcome.error,
               **{m: outcome.metrics.get(m) for m in METRICS}, "check_result": outcome.check,
               "detail_json": json.dumps(outcome.detail, sort_keys=True), "npukit_version": build_id(),
               "eval_seconds": outcome.eval_seconds, "created_at": time.time()}
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._transaction():
            cur = self.db.execute(f"INSERT OR IGNORE INTO points ({cols}) VALUES ({marks})", tuple(row.values()))
            self.db.execute("DELETE FROM claims WHERE key = ?", (info.key,))
        return cur.rowcount == 1

    @_sql
    def claim(self, key: str, owner: str, host: str, pid: int, is_live) -> str:
        """"stored", "held" (by a live other owner, per `is_live(claim row)`) or "mine" (claimed
        now, in a BEGIN IMMEDIATE transaction: no two explorers get the same point)."""
        with self._transaction():
            if self.db.execute("SELECT 1 FROM points WHERE key = ?", (key,)).fetchone():
                return "stored"
            row = self.db.execute("SELECT * FROM claims WHERE key = ?", (key,)).fetchone()
            if row is not None and row["owner"] != owner and is_live(dict(row)):
                return "held"
            now = time.time()
            self.db.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?)", (key, owner, host, pid, now, now))
            return "mine"

    @_sql
    def claim_row(self, key: str) -> dict | None:
        row = self.db.execute("SELECT * FROM claims WHERE key = ?", (key,)).fetchone()
        return dict(row) if row else None

    @_sql
    def release(self, owner: str, key: str | None = None) -> None:
        """Drop the owner's claims (on one key, or all)."""
        sql = "DELETE FROM claims WHERE owner = ?" + (" AND key = ?" if key else "")
        self.db.execute(sql, (owner, key) if key else (owner,))

    def _transaction(self):
        return _Immediate(self.db)

    @_sql
    def rows(self, model: str | None = None, status: str | None = None) -> list[dict]:
        sql, args = "SELECT * FROM points", []
        where = [(c, v) for c, v in (("model", model), ("status", status)) if v is not None]
        if where:
            sql += " WHERE " + " AND ".join(f"{c} = ?" for c, _ in where)
            args = [v for _, v in where]
        return [dict(r) for r in self.db.execute(sql + " ORDER BY key", args)]

    @_sql
    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM points").fetchone()[0])


def open_existing(path: str | Path) -> Store:
    if not Path(path).is_file():
        raise InputError(f"no results database at {str(path)!r} (run `npukit explore` first)")
    return Store(path)


class _Immediate:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on an exception): the write lock from the start."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, *_) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
