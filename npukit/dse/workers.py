"""The local process pool: each point under a time and memory limit.

On Linux the workers are forked from the explorer itself once its models are prepared: a
worker starts in milliseconds holding what evaluating a point needs (the quantised graphs, the
check's reference outputs, the back end imported beforehand, dse/preload.py), and so does the
replacement of a killed one. The functional check's compiled simulator is loaded only by a
worker whose checks need it (dse/check.py). A forked worker's address space starts as the
explorer's (about 0.2 GiB on the README's sweep), so where that is over half the memory limit
(Ray started in the same process reserves 8 GiB), and elsewhere than Linux, the pool spawns
fresh processes instead.
Workers start when the first point is to be computed (none when every point is stored).

Each worker is fed through its own pipe, AHEAD points at a time (it starts the next as it
sends a result, so it never waits for the explorer), and the pool knows which point a worker
is running: a point past its deadline (counted from its start) is stored as failed ("timed
out after N s") and only its worker is killed and replaced; a worker that dies charges only
the point it was running, which is retried up to `max_retries` times, then reported lost (not
stored; a rerun retries it); the points it had not started go back to the queue. Memory is
bounded by RLIMIT_AS in the worker, so a point that allocates beyond it gets a MemoryError,
stored as its failure. Workers die with the explorer, however it dies: each watches a pipe
only the explorer holds open (a forked worker first closes the copies of the explorer's pipe
ends it inherited).
"""
from __future__ import annotations

import importlib
import itertools
import mmap
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait

from ..errors import InputError
from ..limits import MIB, POINT_MEMORY, POINT_SECONDS
from .point import Outcome, Task, run_point

LOST = "lost"   # outcome status of a point whose worker died on every attempt: not stored
GRAPHS: dict[str, object] = {}   # this process's quantised graphs, by model hash
_READY = "ready"
_PRELOAD = "npukit.dse.preload"
_EXPLORER_ENDS: list = []   # the explorer's ends of its workers' pipes: a forked worker closes its copies
AHEAD = 2              # points sent to a worker at once: it starts the next as it sends a result
_HEADROOM = 64 * MIB    # address space a worker must still have under its limit to start


@dataclass(frozen=True)
class PointLimits:
    seconds: float = POINT_SECONDS.value        # wall time of one point, 0 = none
    memory_bytes: int = int(POINT_MEMORY.value)      # address space of a worker, 0 = none

    def __post_init__(self):
        if self.seconds < 0 or self.memory_bytes < 0:
            raise InputError(f"point limits must not be negative, got {self.seconds} s, "
                             f"{self.memory_bytes // MIB} MiB")


def init_worker(graphs: dict[str, object]) -> None:
    from ..progress import one_line_warnings
    one_line_warnings()         # a worker's warnings read like the parent's
    GRAPHS.clear()
    GRAPHS.update(graphs)


def run_local(fn, task: Task) -> Outcome:
    return run_point(fn, task, GRAPHS[task.model_hash])


def die_with_explorer(alive) -> None:
    """Exit as soon as the explorer is gone, whatever the point running meanwhile: `alive` is
    the read end of a pipe only the explorer writes to, so it ends when the explorer does,
    however it died (SIGKILL included)."""
    def watch() -> None:
        try:
            alive.recv()
        except (EOFError, OSError):
            pass
        os._exit(1)
    threading.Thread(target=watch, name="npukit-explorer-watch", daemon=True).start()


def _worker_main(conn, alive, graphs: dict[str, object], memory: int, forked: bool) -> None:
    if forked:
        for end in _EXPLORER_ENDS:      # held here, they would keep the workers' pipes open
            end.close()
        _EXPLORER_ENDS.clear()
        # fresh stdio: another thread of the explorer (its progress bar) may have held the
        # locks of the inherited ones at the fork
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    die_with_explorer(alive)
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the explorer's to handle
    if memory:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (memory if hard < 0 else min(memory, hard), hard))
        try:
            mmap.mmap(-1, _HEADROOM).close()
        except OSError:     # a limit below what the worker has loaded: it cannot start (the pool says so)
            os._exit(1)
    init_worker(graphs)
    conn.send(_READY)
    while True:
        try:
            fn, task = conn.recv()
        except EOFError:
            return
        conn.send(run_local(fn, task))


class _Worker:
    def __init__(self, ctx, graphs: dict[str, object], memory: int):
        self.conn, child = ctx.Pipe()
        alive, self.alive = ctx.Pipe(duplex=False)     # the worker's watch on the explorer
        _EXPLORER_ENDS.extend((self.conn, self.alive))
        forked = ctx.get_start_method() == "fork"
        self.proc = ctx.Process(target=_worker_main, args=(child, alive, graphs, memory, forked), daemon=True)
        self.proc.start()
        child.close()
        alive.close()
        self.ready = False
        self.jobs: list[tuple[Task, int]] = []   # (task, attempt) sent, in order; the first is running
        self.deadline = float("inf")              # of the first

    def kill(self) -> None:
        _EXPLORER_ENDS[:] = [e for e in _EXPLORER_ENDS if e is not self.conn and e is not self.alive]
        self.proc.kill()
        self.proc.join()
        self.conn.close()
        self.alive.close()


def _address_space() -> int:
    """This process's address space in bytes (what a worker forked from it starts with)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


class PoolExecutor:
    """A local pool of `workers` processes under `limits`."""

    def __init__(self, workers: int, max_retries: int = 3, limits: PointLimits = PointLimits()):
        if workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        self.workers, self.max_retries, self.limits = workers, max_retries, limits
        self.name = f"pool:{workers}"
        fork = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
        self.ctx = multiprocessing.get_context("fork" if fork else "spawn")
        self.graphs: dict[str, object] = {}
        self.pool: list[_Worker] = []

    def warm_up(self) -> None:
        pass

    def start(self, graphs: dict[str, object]) -> None:
        """Take the graphs; the workers start with the first point to compute."""
        self.graphs = graphs
        memory = self.limits.memory_bytes
        if self.ctx.get_start_method() == "fork" and memory and 2 * _address_space() > memory:
            self.ctx = multiprocessing.get_context("spawn")    # a fork would start with most of its limit used
        if self.ctx.get_start_method() == "fork":
            importlib.import_module(_PRELOAD)     # once here, not in each worker

    def _spawn(self) -> _Worker:
        return _Worker(self.ctx, self.graphs, self.limits.memory_bytes)

    def map(self, fn, tasks: Iterable[Task]) -> Iterator[Outcome]:
        todo = iter(tasks)
        first = next(todo, None)
        if first is None:
            return
        if not self.pool:
            self.pool = [self._spawn() for _ in range(self.workers)]
        todo = itertools.chain([first], todo)
        retry: list[tuple[Task, int]] = []
        exhausted = False

        def take() -> tuple[Task, int] | None:
            nonlocal exhausted
            if retry:
                return retry.pop()
            item = None if exhausted else next(((t, 0) for t in todo), None)
            exhausted = item is None
            return item

        while True:
            for w in self.pool:     # each worker gets its next point before it finishes this one
                while w.ready and len(w.jobs) < AHEAD and (item := take()) is not None:
                    if not w.jobs:
                        w.deadline = self._deadline()
                    w.jobs.append(item)
                    try:
                        w.conn.send((fn, item[0]))
                    except OSError:   # it died: found below
                        break
            if exhausted and not retry and not any(w.jobs for w in self.pool):
                return
            soonest = min((w.deadline for w in self.pool if w.jobs), default=float("inf"))
            wait([c for w in self.pool for c in (w.conn, w.proc.sentinel)],
                 None if soonest == float("inf") else max(0.0, soonest - time.monotonic()))
            for i, w in enumerate(self.pool):
                outcome, gone = self._poll(w)
                if outcome is not None:
                    yield outcome
                if gone:
                    w.kill()
                    self.pool[i] = self._spawn()
                    if w.jobs and outcome is None:   # died mid-point: that point is charged
                        task, attempt = w.jobs.pop(0)
                        if attempt < self.max_retries:
                            retry.append((task, attempt + 1))
                        else:
                            yield Outcome(task.key, LOST, "a worker process died on every attempt "
                                          f"(exit code {w.proc.exitcode})")
                    retry += w.jobs     # sent but not started: not charged

    def _deadline(self) -> float:
        return time.monotonic() + self.limits.seconds if self.limits.seconds else float("inf")

    def _poll(self, w: _Worker) -> tuple[Outcome | None, bool]:
        """(a finished point's outcome, whether the worker must be replaced)."""
        try:
            if w.conn.poll():
                msg = w.conn.recv()
                if msg == _READY:
                    w.ready = True
                    return None, False
                w.jobs.pop(0)
                w.deadline = self._deadline()     # the next one started as this one ended
                return msg, False
        except (EOFError, OSError):
            pass
        if not w.proc.is_alive():
            if not w.ready:
                raise InputError(f"a worker process could not start (exit code {w.proc.exitcode}); is the point "
                                 f"memory limit ({self.limits.memory_bytes // MIB} MiB) too small?")
            return None, True
        if w.jobs and time.monotonic() >= w.deadline:
            task = w.jobs.pop(0)[0]
            return Outcome(task.key, "error", f"timed out after {self.limits.seconds:g} s",
                           eval_seconds=self.limits.seconds), True
        return None, False

    def close(self) -> None:
        for w in self.pool:
            w.kill()
        self.pool = []
