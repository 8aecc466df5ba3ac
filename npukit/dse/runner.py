"""The sweep driver: prepare models once, ask the strategy, skip stored points, claim and
evaluate the rest on the executor, store each as it finishes, wait for points other explorers
on the same database hold, tell the strategy, repeat. SIGTERM (like Ctrl-C) stops the sweep
with its workers killed, its claims released and every finished point kept.

    explore(load_space("space.toml"), "runs.sqlite", make_executor(workers=2, ray_address=None))
"""
from __future__ import annotations

import hashlib
import itertools
import json
import signal
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

from ..codegen.context import CompileOptions
from ..codegen.options import QUANT_OPTIONS
from ..errors import ArchError, InputError
from ..progress import counted, status
from .check import references
from .claims import Heartbeat, Owner
from .executors import LOST, EvalFn, Executor
from .point import Candidate, Outcome, Task, evaluate, point_key
from .prepare import PreparedModel, prepare_model
from .space import Choices, Space, model_names
from .store import PointInfo, Store
from .strategies import make_strategy


@dataclass(frozen=True)
class SweepSummary:
    candidates: int   # what the strategy proposed (points with equal keys count once below)
    computed: int     # stored by this run (failures included)
    reused: int       # found in the store (an earlier run, a resumed one, another explorer)
    failed: int       # stored by this run with an error
    lost: int         # workers died on every attempt: not stored, a rerun retries them
    duplicates: int   # candidates whose key another candidate of the sweep already had
    seconds: float

    @property
    def points_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Plan:
    info: PointInfo
    task: Task | None
    error: str          # known before evaluation (invalid arch, model that does not compile)


class _Rate(ProgressColumn):
    def render(self, task) -> Text:
        return Text(f"{task.speed:.1f} pt/s" if task.speed else "- pt/s", style="progress.data.speed")


def explore(space: Space, db: str | Path, executor: Executor, progress: bool = True,
            evaluate_fn: EvalFn = evaluate) -> SweepSummary:
    if not space.models:
        raise InputError("no models to explore: give --model PATH or [[models]] in the space file")
    t0 = time.perf_counter()
    counts = dict(computed=0, reused=0, failed=0, lost=0, duplicates=0)
    owner = Owner.me()
    with Store(db) as store, _sigterm_exits():   # a database npukit cannot use is refused first
        executor.warm_up()
        with status("preparing the models", enabled=None if progress else False):
            prepared = {(i, q): prepare_model(m, q) for i, m in counted("parse and quantise", list(enumerate(space.models)))
                        for q in quant_settings(space)}     # once per sweep and quantisation setting
        if space.check_inputs:
            _references(prepared.values(), space.check_inputs)
        names = model_names(space.models)
        strategy = make_strategy(space)
        store.begin_sweep(space.source_text, executor.name)
        heartbeat = Heartbeat(store.path, owner)
        try:
            with status(f"starting {executor.name}", enabled=None if progress else False):
                executor.start({p.model_hash: p.graph for p in prepared.values() if p.graph is not None})
            bar = _progress() if progress else None
            with bar or nullcontext():
                task_id = bar.add_task("exploring", total=strategy.total) if bar else None

                def advance() -> None:
                    if bar is not None and task_id is not None:
                        bar.advance(task_id)

                while batch := strategy.ask():
                    plans = [_plan(space, prepared, names, c) for c in batch]
                    strategy.tell(_run_batch(plans, _Run(store, owner, executor, evaluate_fn, counts, advance)))
        finally:
            executor.close()
            heartbeat.close()
            store.release(owner.id)
    return SweepSummary(strategy.total, counts["computed"], counts["reused"], counts["failed"],
                        counts["lost"], counts["duplicates"], time.perf_counter() - t0)


class _sigterm_exits:
    """In the main thread, SIGTERM raises SystemExit so that the sweep's cleanup runs."""

    def __enter__(self) -> None:
        main = threading.current_thread() is threading.main_thread()
        self.old = signal.signal(signal.SIGTERM, _exit_on_signal) if main else None

    def __exit__(self, *exc) -> None:
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


@dataclass(frozen=True)
class _Run:
    store: Store
    owner: Owner
    executor: Executor
    evaluate_fn: EvalFn
    counts: dict
    advance: Callable[[], None]


def _run_batch(plans: list[_Plan], run: _Run) -> list[dict | None]:
    """Evaluate the plans not already stored; returns the stored row of each plan, in order."""
    store, counts = run.store, run.counts
    rows: dict[str, dict] = {}
    todo: dict[str, _Plan] = {}
    held: dict[str, _Plan] = {}   # claimed by another live explorer
    for plan in plans:
        key = plan.info.key
        if key in rows or key in todo:
            counts["duplicates"] += 1
            run.advance()
            continue
        row = store.get(key)
        if row is None and plan.error:
            new = store.put(plan.info, Outcome(key, "error", plan.error))
            counts["computed" if new else "reused"] += 1
            counts["failed"] += new
            row = store.get(key)
        elif row is not None:
            counts["reused"] += 1
        if row is not None:
            rows[key] = row
            run.advance()
        else:
            todo[key] = plan
    while todo or held:
        _compute(todo, held, rows, run)
        if held:
            time.sleep(0.5)
            for key in list(held):
                if (row := store.get(key)) is not None:
                    del held[key]
                    rows[key] = row
                    counts["reused"] += 1
                    run.advance()
                elif not ((claim := store.claim_row(key)) and run.owner.is_live(claim)):
                    todo[key] = held.pop(key)   # its owner died or let it go: take it over
    return [rows.get(p.info.key) for p in plans]


def _compute(todo: dict[str, _Plan], held: dict[str, _Plan], rows: dict[str, dict], run: _Run) -> None:
    """Claim each point as a worker frees up and evaluate it; points another explorer holds
    move to `held`, points it stored meanwhile to `rows`. Empties `todo`."""
    store, counts, owner = run.store, run.counts, run.owner

    def claimed():
        for key in list(todo):
            state = store.claim(key, owner.id, owner.host, owner.pid, owner.is_live)
            if state == "mine":
                yield todo[key].task
            elif state == "held":
                held[key] = todo.pop(key)
            else:
                del todo[key]
                rows[key] = store.get(key)
                counts["reused"] += 1
                run.advance()

    for outcome in run.executor.map(run.evaluate_fn, claimed()):
        run.advance()
        plan = todo.pop(outcome.key)
        if outcome.status == LOST:
            counts["lost"] += 1
            store.release(owner.id, outcome.key)
            continue
        new = store.put(plan.info, outcome)
        counts["computed" if new else "reused"] += 1
        counts["failed"] += new and outcome.status != "ok"
        rows[outcome.key] = store.get(outcome.key)


def _references(prepared: Iterable[PreparedModel], n: int) -> None:
    """Each model's check inputs and reference outputs, computed once here: a worker forked from
    this process holds them (one that raises leaves it to the points, which store the failure)."""
    for p in prepared:
        if p.graph is not None:
            try:
                references(p.model_hash, p.graph, n)
            except Exception:   # noqa: BLE001 - the points report it
                pass


def _quant_key(options: dict) -> tuple[tuple[str, str], ...]:
    """The quantisation options of a point that differ from the defaults."""
    default = CompileOptions().__dict__
    return tuple((k, options[k]) for k in QUANT_OPTIONS if k in options and options[k] != default[k])


def quant_settings(space: Space) -> list[tuple[tuple[str, str], ...]]:
    """Every combination of the swept quantisation options' values (as `_quant_key`)."""
    swept = []
    for p in space.params:
        if p.target == "options" and p.key in QUANT_OPTIONS:
            assert isinstance(p.domain, Choices), f"{p.name}: a quantisation option takes choices"
            swept.append([(p.key, v) for v in p.domain.values])
    return sorted({_quant_key(dict(combo)) for combo in itertools.product(*swept)})


def _plan(space: Space, prepared: dict[tuple[int, tuple], PreparedModel], names: list[str], c: Candidate) -> _Plan:
    arch_over = c.overrides("arch")
    options = {**CompileOptions().__dict__, **c.overrides("options")}
    pm = prepared[(c.model, _quant_key(options))]
    error = ""
    try:
        arch = space.base.replace(arch_over)
        arch_id, arch_name, arch_json = arch.fingerprint, arch.name, json.dumps(arch.to_dict(), sort_keys=True)
    except ArchError as exc:   # an impossible arch is a stored, failed point
        blob = json.dumps([space.base.fingerprint, sorted(arch_over.items())], default=str)
        arch_id, arch_name = hashlib.sha256(blob.encode()).hexdigest(), space.base.name
        arch_json = json.dumps({"base": space.base.to_dict(), "overrides": arch_over}, sort_keys=True)
        error = f"ArchError: {exc}"
    error = error or pm.error
    key = point_key(arch_id, pm.model_hash, pm.calibration_hash, options, space.check_inputs)
    info = PointInfo(key, names[c.model], str(pm.spec.path), pm.model_hash, pm.calibration_hash, arch_name,
                     arch_id, arch_json, json.dumps(dict(c.values), sort_keys=True),
                     json.dumps(options, sort_keys=True), space.check_inputs)
    task = None if error else Task(key, pm.model_hash, arch_json, tuple(sorted(options.items())),
                                   space.check_inputs)
    return _Plan(info, task, error)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), _Rate(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=Console(stderr=True))
