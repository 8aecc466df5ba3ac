"""Search strategies: which candidates to evaluate, in synchronous batches.

A strategy is asked for a batch, every point of the batch is evaluated (or found in the
store), and the results are told back in the batch's own order before the next ask. Grid and
random give one batch holding every candidate; Optuna gives `batch` trials per model per ask.
Nothing depends on which worker finished first, so the stored points are the same for any
number of workers and any executor.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Protocol

import numpy as np

from ..errors import InputError
from .point import Candidate
from .space import Choices, Param, Space


class Strategy(Protocol):
    total: int   # candidates this strategy will propose in all

    def ask(self) -> list[Candidate]: ...           # empty when done
    def tell(self, results: list[dict | None]) -> None: ...   # stored row (or None) per candidate


class GridStrategy:
    def __init__(self, space: Space):
        axes = [[(p.name, v) for v in _values(p)] for p in space.params]
        configs = [tuple(c) for c in itertools.product(*axes)]
        self.batch = [Candidate(m, c) for m in range(len(space.models)) for c in configs]
        self.total = len(self.batch)

    def ask(self) -> list[Candidate]:
        out, self.batch = self.batch, []
        return out

    def tell(self, results: list[dict | None]) -> None:
        pass


class RandomStrategy(GridStrategy):
    """`samples` distinct configurations drawn with a seeded generator (fewer if the space
    is smaller), each evaluated on every model."""

    def __init__(self, space: Space):
        rng = np.random.default_rng(space.strategy.seed)
        want = min(space.strategy.samples, math.prod(_size(p) for p in space.params))
        seen: dict[tuple, None] = {}
        for _ in range(50 * int(want)):
            if len(seen) == want:
                break
            seen.setdefault(tuple((p.name, _draw(p, rng)) for p in space.params))
        self.batch = [Candidate(m, c) for m in range(len(space.models)) for c in seen]
        self.total = len(self.batch)


def _size(p: Param) -> float:
    """How many distinct values a dimension can take (inf for a continuous range)."""
    d = p.domain
    if isinstance(d, Choices):
        return len(d.values)
    return d.points if d.step is not None else d.high - d.low + 1 if d.is_int else math.inf


def _values(p: Param) -> tuple:
    return p.domain.values if isinstance(p.domain, Choices) else p.domain.grid()


def _draw(p: Param, rng: np.random.Generator) -> Any:
    d = p.domain
    if isinstance(d, Choices):
        return d.values[int(rng.integers(len(d.values)))]
    if d.step is not None:
        return d.at(int(rng.integers(int(d.points))))
    if d.log:
        x = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
        return min(max(int(round(x)), d.low), d.high) if d.is_int else x
    return int(rng.integers(int(d.low), int(d.high) + 1)) if d.is_int else float(rng.uniform(d.low, d.high))


class OptunaStrategy:
    """One seeded multi-objective TPE study per model; `batch` trials asked per model, all
    told before the next ask. A failed point is told as a failed trial."""

    def __init__(self, space: Space):
        from .pareto import parse_objectives
        try:
            import optuna
        except ImportError:
            raise InputError("strategy 'optuna' needs Optuna: pip install 'npukit[dse]'") from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        self.params = space.params
        self.objectives = parse_objectives(",".join(space.strategy.objectives))
        s = space.strategy
        self.studies = [optuna.create_study(
            directions=["maximize" if o.maximise else "minimize" for o in self.objectives],
            sampler=optuna.samplers.TPESampler(seed=s.seed + i)) for i in range(len(space.models))]
        self.left = [s.samples] * len(space.models)
        self.batch_size = s.batch
        self.total = s.samples * len(space.models)
        self.asked: list[tuple[int, Any]] = []

    def ask(self) -> list[Candidate]:
        self.asked, out = [], []
        for m, study in enumerate(self.studies):
            for _ in range(min(self.batch_size, self.left[m])):
                trial = study.ask({p.name: self._distribution(p) for p in self.params})
                self.asked.append((m, trial))
                out.append(Candidate(m, tuple((p.name, trial.params[p.name]) for p in self.params)))
            self.left[m] -= min(self.batch_size, self.left[m])
        return out

    def tell(self, results: list[dict | None]) -> None:
        for (m, trial), row in zip(self.asked, results):
            if row is None or row["status"] != "ok":
                self.studies[m].tell(trial, state=self.optuna.trial.TrialState.FAIL)
            else:
                self.studies[m].tell(trial, [float(row[o.column]) for o in self.objectives])

    def _distribution(self, p: Param):
        d, dist = p.domain, self.optuna.distributions
        if isinstance(d, Choices):
            return dist.CategoricalDistribution(list(d.values))
        if d.is_int:
            return dist.IntDistribution(int(d.low), int(d.high), log=d.log, step=int(d.step or 1))
        return dist.FloatDistribution(float(d.low), float(d.high), log=d.log, step=d.step)


def make_strategy(space: Space) -> Strategy:
    kind = space.strategy.kind
    kinds: dict[str, Callable[[Space], Strategy]] = {"grid": GridStrategy, "random": RandomStrategy, "optuna": OptunaStrategy}
    return kinds[kind](space)
