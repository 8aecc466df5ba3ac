"""Explorers sharing one database share its points: each claims a point before computing it.

A claim (key, owner, host, pid, heartbeat) is written in a BEGIN IMMEDIATE transaction
(`Store.claim`), so two explorers never both claim a point. A point claimed by a live other
explorer is skipped, then waited for at the end of the batch; a claim whose owner is dead (its
pid gone on this host, or no heartbeat for CLAIM_STALE_SECONDS) is taken over. The owner id is
host:pid:process start time, so a reused pid is not mistaken for the owner.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CLAIM_STALE_SECONDS = 60.0     # a claim without a heartbeat for this long is free
HEARTBEAT_SECONDS = 5.0


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot ("" if there is no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2:].split()[19]


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    id: str

    @staticmethod
    def me() -> "Owner":
        host, pid = socket.gethostname(), os.getpid()
        return Owner(host, pid, f"{host}:{pid}:{_started(pid)}")

    def is_live(self, claim: dict) -> bool:
        """Whether another owner's claim still holds."""
        if time.time() - claim["heartbeat"] > CLAIM_STALE_SECONDS:
            return False
        if claim["host"] != self.host or not Path("/proc/self/stat").exists():
            return True
        return claim["owner"] == f"{claim['host']}:{claim['pid']}:{_started(claim['pid'])}"


class Heartbeat:
    """Refreshes the owner's claims every HEARTBEAT_SECONDS from a thread (own connection)."""

    def __init__(self, db: Path, owner: Owner):
        self.db, self.owner = db, owner
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="npukit-claims-heartbeat", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self.db, isolation_level=None, timeout=HEARTBEAT_SECONDS)
        while not self.stop.wait(HEARTBEAT_SECONDS):
            try:
                db.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), self.owner.id))
            except sqlite3.Error:   # busy: the next beat tries again
                pass
        db.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
