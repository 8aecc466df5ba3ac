"""Where design points run: in-process, a local process pool, or a Ray cluster.

Every executor takes the quantised graphs once (`start`) and then maps an evaluation
function over tasks, yielding outcomes as they finish (in any order; the store is keyed by
content, so the order never shows in the results). Workers keep the graphs in memory keyed by
model hash, so a graph crosses to a worker at most once.
"""
from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from ..errors import InputError
from ..progress import one_line_warnings, verbose
from .point import Outcome, Task

EvalFn = Callable[[Task, object], Outcome]
_GRAPHS: dict[str, object] = {}   # this process's quantised graphs, by model hash
LOST = "lost"   # outcome status of a point whose worker died on every attempt: not stored


class Executor(Protocol):
    name: str

    def start(self, graphs: dict[str, object]) -> None: ...
    def map(self, fn: EvalFn, tasks: Iterable[Task]) -> Iterator[Outcome]: ...
    def close(self) -> None: ...


def _init_worker(graphs: dict[str, object]) -> None:
    one_line_warnings()         # a worker's warnings read like the parent's
    _GRAPHS.clear()
    _GRAPHS.update(graphs)


def _run_local(fn: EvalFn, task: Task) -> Outcome:
    return fn(task, _GRAPHS[task.model_hash])


class InlineExecutor:
    """Runs every point in the calling process, one after another (workers = 1)."""
    name = "inline"

    def start(self, graphs: dict[str, object]) -> None:
        _init_worker(graphs)

    def map(self, fn: EvalFn, tasks: Iterable[Task]) -> Iterator[Outcome]:
        for task in tasks:
            yield _run_local(fn, task)

    def close(self) -> None:
        _GRAPHS.clear()


class PoolExecutor:
    """A local process pool (spawned workers); at most `window` tasks in flight. If a worker
    dies (the pool breaks), the pool is restarted and its unfinished tasks are resubmitted,
    each at most `max_retries` times, as Ray does."""

    def __init__(self, workers: int, max_retries: int = 3):
        if workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        self.workers, self.max_retries = workers, max_retries
        self.name = f"pool:{workers}"
        self.pool: ProcessPoolExecutor | None = None
        self.graphs: dict[str, object] = {}

    def start(self, graphs: dict[str, object]) -> None:
        self.graphs = graphs
        self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(graphs,))

    def map(self, fn: EvalFn, tasks: Iterable[Task]) -> Iterator[Outcome]:
        assert self.pool is not None, "start() first"
        pending: dict = {}          # future -> (task, attempt)
        retry: list = []
        todo = iter(tasks)
        window = 4 * self.workers
        while True:
            while len(pending) < window:
                item = retry.pop() if retry else next(((t, 0) for t in todo), None)
                if item is None:
                    break
                pending[self.pool.submit(_run_local, fn, item[0])] = item
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task, attempt = pending.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    broken = True
                    if attempt < self.max_retries:
                        retry.append((task, attempt + 1))
                    else:
                        yield Outcome(task.key, LOST, "a worker process died on every attempt")
            if broken:   # every other in-flight task died with the pool: run them again
                retry += [(t, a) for t, a in pending.values()]
                pending.clear()
                self.pool.shutdown(cancel_futures=True)
                self.start(self.graphs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


class RayExecutor:
    """Ray tasks. `address` None uses an already initialised Ray (or starts a local one);
    "auto" joins the cluster running on this machine, else starts a local one;
    "ray://HOST:PORT" connects as a Ray client. A task whose worker dies is retried up to
    `max_retries` times; errors a point raises are outcomes, not retries."""

    def __init__(self, address: str | None = None, max_retries: int = 3, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise InputError("--ray needs Ray: pip install 'npukit[ray]'") from None
        self.ray = ray
        self.address, self.max_retries, self.num_cpus = address, max_retries, num_cpus
        self.name = f"ray:{address or 'local'}"
        self.owns_ray = False
        self.refs: dict[str, object] = {}
        self.remote = None

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
                ref = self.remote.remote(fn, task, [self.refs[task.model_hash]])
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
                    yield Outcome(task.key, LOST, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")

    def close(self) -> None:
        if self.owns_ray:
            self.ray.shutdown()
            self.owns_ray = False


def _run_ray(fn: EvalFn, task: Task, graph_ref: list) -> Outcome:
    if task.model_hash not in _GRAPHS:
        import ray
        _GRAPHS[task.model_hash] = ray.get(graph_ref[0])
    return fn(task, _GRAPHS[task.model_hash])


def make_executor(workers: int | None, ray_address: str | None) -> Executor:
    if ray_address is not None:
        if workers is not None:
            raise InputError("give either --workers or --ray, not both")
        return RayExecutor(ray_address)
    n = workers if workers is not None else max(1, multiprocessing.cpu_count())
    return InlineExecutor() if n == 1 else PoolExecutor(n)
