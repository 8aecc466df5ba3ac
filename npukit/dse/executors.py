"""Where design points run: in-process, a local process pool, or a Ray cluster.

Every executor takes the quantised graphs once (`start`) and then maps an evaluation
function over tasks, yielding outcomes as they finish (in any order; the store is keyed by
content, so the order never shows in the results). Workers keep the graphs in memory keyed by
model hash, so a graph crosses to a worker at most once.
"""
from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from ..errors import InputError
from ..progress import verbose
from .point import Outcome, Task, failure_reason, run_point
from .workers import GRAPHS, LOST, PointLimits, PoolExecutor, init_worker, run_local

EvalFn = Callable[[Task, object], Outcome]


class Executor(Protocol):
    name: str

    def warm_up(self) -> None: ...      # begin what start needs but the graphs (overlaps preparing them)
    def start(self, graphs: dict[str, object]) -> None: ...
    def map(self, fn: EvalFn, tasks: Iterable[Task]) -> Iterator[Outcome]: ...
    def close(self) -> None: ...


class InlineExecutor:
    """Runs every point in the calling process, one after another: a point that raises is a
    stored failure, but there is no time or memory limit (use a pool of one for those)."""
    name = "inline"

    def warm_up(self) -> None:
        pass

    def start(self, graphs: dict[str, object]) -> None:
        init_worker(graphs)

    def map(self, fn: EvalFn, tasks: Iterable[Task]) -> Iterator[Outcome]:
        for task in tasks:
            yield run_local(fn, task)

    def close(self) -> None:
        GRAPHS.clear()


class RayExecutor:
    """Ray tasks. `address` None uses an already initialised Ray (or starts a local one);
    "auto" joins the cluster running on this machine, else starts a local one;
    "ray://HOST:PORT" connects as a Ray client. A task whose worker dies is retried up to
    `max_retries` times; errors a point raises are outcomes, not retries. A task running past
    `limits.seconds` (counted from about when it got a CPU) is cancelled and stored as timed
    out; the memory limit is not applied (Ray workers are shared; Ray has its own monitor)."""

    def __init__(self, address: str | None = None, max_retries: int = 3, num_cpus: int | None = None,
                 limits: PointLimits = PointLimits()):
        try:
            import ray
        except ImportError:
            raise InputError("--ray needs Ray: pip install 'npukit[ray]'") from None
        self.ray = ray
        self.address, self.max_retries, self.num_cpus, self.limits = address, max_retries, num_cpus, limits
        self.name = f"ray:{address or 'local'}"
        self.owns_ray = False
        self.refs: dict[str, object] = {}
        self.remote: Any = None      # the ray remote function (ray is untyped)

    def warm_up(self) -> None:
        pass

    def start(self, graphs: dict[str, object]) -> None:
        ray = self.ray
        if not ray.is_initialized():
            # Ray's own log lines (start-up, workers) only with --verbose
            quiet = {} if verbose() else dict(logging_level=logging.ERROR, configure_logging=True)
            kwargs = dict(include_dashboard=False, log_to_driver=False, num_cpus=self.num_cpus, **quiet)
            if self.address == "auto":
                try:
                    ray.init(address="auto", log_to_driver=False, **quiet)
                except ConnectionError:
                    ray.init(**kwargs)
            elif self.address:
                ray.init(address=self.address, log_to_driver=False, **quiet)
            else:
                ray.init(**kwargs)
            self.owns_ray = True
        self.refs = {h: ray.put(g) for h, g in graphs.items()}
        self.remote = ray.remote(max_retries=self.max_retries, retry_exceptions=False)(_run_ray)

    def map(self, fn: EvalFn, tasks: Iterable[Task]) -> Iterator[Outcome]:
        ray = self.ray
        window = 4 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        pending: list = []
        tasks_of: dict = {}
        todo = iter(tasks)
        while True:
            for task in todo:
                # the graph ref goes inside a list so Ray does not fetch it unless the worker needs it
                ref = self.remote.remote(fn, task, [self.refs[task.model_hash]], self.limits.seconds)
                tasks_of[ref] = task
                pending.append(ref)
                if len(pending) >= window:
                    break
            if not pending:
                return
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                task = tasks_of.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:   # worker died max_retries + 1 times
                    yield Outcome(task.key, LOST, failure_reason(exc))

    def close(self) -> None:
        if self.owns_ray:
            self.ray.shutdown()
            self.owns_ray = False


class _Late(BaseException):
    """Raised by the alarm in a Ray worker (a BaseException: no point's handler catches it)."""


def _late(signum, frame) -> None:
    raise _Late()


def _run_ray(fn: EvalFn, task: Task, graph_ref: list, seconds: float) -> Outcome:
    if task.model_hash not in GRAPHS:
        import ray
        GRAPHS[task.model_hash] = ray.get(graph_ref[0])
    if not seconds or threading.current_thread() is not threading.main_thread():
        return run_point(fn, task, GRAPHS[task.model_hash])
    old = signal.signal(signal.SIGALRM, _late)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return run_point(fn, task, GRAPHS[task.model_hash])
    except _Late:
        return Outcome(task.key, "error", f"timed out after {seconds:g} s", eval_seconds=seconds)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def make_executor(workers: int | None, ray_address: str | None, limits: PointLimits = PointLimits()) -> Executor:
    """Points run in worker processes (even with one worker) so that `limits` hold."""
    if ray_address is not None:
        if workers is not None:
            raise InputError("give either --workers or --ray, not both")
        return RayExecutor(ray_address, limits=limits)
    return PoolExecutor(workers if workers is not None else max(1, multiprocessing.cpu_count()), limits=limits)
