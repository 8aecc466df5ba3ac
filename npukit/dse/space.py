"""The design space a sweep explores, read from a TOML file.

    [base]      arch = "npu-m"                      # preset name or arch TOML path
    [strategy]  kind = "grid" | "random" | "optuna", seed, samples, batch, objectives
    [arch]      "mxu.rows" = [8, 16, 32]             # dotted arch keys: a list of choices ...
                "regions.dram.bandwidth_gbps" = { min = 4.0, max = 32.0, log = true }  # ... or a range
    [options]   double_buffer = [true, false]        # CompileOptions fields, same forms
    [check]     inputs = 2                           # functional check on N random inputs (0 = off)
    [[models]]  path = "m.onnx", input_shapes = { x = [1, 1, 8, 8] }, calibration = "c.npz", method = "minmax"

Relative paths are relative to the space file. Every problem is an InputError naming the key.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..arch import Arch, load_arch
from ..choices import METHODS, Method
from ..codegen.context import CompileOptions
from ..codegen.options import check_option
from ..errors import ArchError, InputError, did_you_mean
from ..limits import CHECK_INPUTS, SWEEP_POINTS, TENSOR_ELEMENTS, TENSOR_RANK

STRATEGIES = ("grid", "random", "optuna")
OPTION_FIELDS = {f.name: type(f.default) for f in dataclasses.fields(CompileOptions)}
Value = bool | int | float | str


@dataclass(frozen=True)
class Choices:
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Range:
    """Numeric range [low, high]. Integer when both bounds are ints; `step` makes it discrete
    (required by the grid strategy); `log` samples uniformly in log space."""
    low: float
    high: float
    step: float | None = None
    log: bool = False

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int) and \
            (self.step is None or isinstance(self.step, int))

    @property
    def points(self) -> float:
        """How many values `grid` has (inf without a step), counted without building them."""
        if self.step is None:
            return math.inf
        n = (self.high - self.low) / self.step
        return math.floor(n + 1e-9) + 1 if math.isfinite(n) else math.inf

    def at(self, i: int) -> Value:
        """The i-th grid value."""
        assert self.step is not None, "a grid value needs a step"
        v = self.low + i * self.step
        return int(v) if self.is_int else round(v, 12)

    def grid(self) -> tuple[Value, ...]:
        return tuple(self.at(i) for i in range(int(self.points)))


Domain = Choices | Range


@dataclass(frozen=True)
class Param:
    """One swept dimension: `target` is "arch" (dotted arch key) or "options" (CompileOptions field)."""
    target: str
    key: str
    domain: Domain

    @property
    def name(self) -> str:
        return f"{self.target}:{self.key}"


@dataclass(frozen=True)
class ModelSpec:
    path: Path
    input_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()
    calibration: Path | None = None
    method: Method = "auto"

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class StrategySpec:
    kind: str = "grid"
    seed: int = 0
    samples: int = 0           # random / optuna: configurations per model
    batch: int = 8             # optuna: trials asked (and told) together
    objectives: tuple[str, ...] = ("latency", "energy", "area")


@dataclass(frozen=True)
class Space:
    base: Arch
    base_ref: str
    params: tuple[Param, ...]
    strategy: StrategySpec
    models: tuple[ModelSpec, ...]
    check_inputs: int = 0
    source_text: str = ""

    def __post_init__(self) -> None:
        """The sweep's size, counted without expanding it, within max_sweep_points."""
        models = max(1, len(self.models))
        if self.strategy.kind == "grid":
            configs = math.prod(1 if isinstance(p.domain, Range) and p.domain.step is None else
                                len(p.domain.values) if isinstance(p.domain, Choices) else p.domain.points
                                for p in self.params)
            what = f"space: the grid ({_fmt_count(configs)} configurations x {models} model(s))"
            SWEEP_POINTS.check(configs * models, what, InputError)
        else:
            SWEEP_POINTS.check(self.strategy.samples * models,
                               f"space: the sweep ({self.strategy.samples} samples x {models} model(s))", InputError)

    def with_models(self, extra: list[Path]) -> "Space":
        """Add `--model PATH` models (no input shapes, random calibration)."""
        more = tuple(ModelSpec(Path(p).resolve()) for p in extra)
        return dataclasses.replace(self, models=self.models + more)


def _fmt_count(n: float) -> str:
    return f"{n:,}" if isinstance(n, int) and n.bit_length() <= 64 else f"{float(n):g}"


def model_names(models: tuple[ModelSpec, ...]) -> list[str]:
    """Each model's stored name: its file stem, or its file name when stems collide."""
    stems = [m.name for m in models]
    return [m.path.name if stems.count(m.name) > 1 else m.name for m in models]


def load_space(path: str | Path) -> Space:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise InputError(f"cannot read space file {str(path)!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"space file {str(path)!r}: invalid TOML: {exc}") from None
    return parse_space(data, path.resolve().parent, text)


def parse_space(data: Mapping[str, Any], root: Path, text: str = "") -> Space:
    _only(data, "", {"base", "strategy", "arch", "options", "check", "models"})
    base_tab = _table(data, "base")
    _only(base_tab, "base", {"arch"})
    ref = base_tab.get("arch", "npu-m")
    if not isinstance(ref, str):
        raise InputError("space: base.arch: expected a preset name or a TOML path")
    preset_or_path = ref if not (ref.endswith(".toml") or "/" in ref) else str(root / ref)
    base = load_arch(preset_or_path)
    params = [_param("arch", k, v, base) for k, v in _table(data, "arch").items()]
    params += [_param("options", k, v, base) for k, v in _table(data, "options").items()]
    check = _table(data, "check")
    _only(check, "check", {"inputs"})
    check_inputs = check.get("inputs", 0)
    if not isinstance(check_inputs, int) or isinstance(check_inputs, bool) or check_inputs < 0:
        raise InputError("space: check.inputs: expected an integer >= 0")
    CHECK_INPUTS.check(check_inputs, "space: check.inputs", InputError)
    models = data.get("models", [])
    if not isinstance(models, list):
        raise InputError("space: models: expected an array of tables ([[models]])")
    strategy = _strategy(_table(data, "strategy"), params)
    return Space(base, ref, tuple(params), strategy, tuple(_model(m, i, root) for i, m in enumerate(models)),
                 check_inputs, text)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise InputError(f"space: {key}: expected a table")
    return value


def _only(data: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InputError(f"space: {where + ': ' if where else ''}unknown key {unknown[0]!r}{did_you_mean(unknown[0], allowed)} "
                         f"(known: {', '.join(sorted(allowed))})")


def _strategy(tab: Mapping[str, Any], params: list[Param]) -> StrategySpec:
    _only(tab, "strategy", {"kind", "seed", "samples", "batch", "objectives"})
    kind = tab.get("kind", "grid")
    if kind not in STRATEGIES:
        raise InputError(f"space: strategy.kind: {kind!r} is not one of {', '.join(STRATEGIES)}")
    ints = {k: tab.get(k, d) for k, d in (("seed", 0), ("samples", 0), ("batch", 8))}
    for k, v in ints.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InputError(f"space: strategy.{k}: expected an integer >= 0, got {v!r}")
    if kind != "grid" and ints["samples"] < 1:
        raise InputError(f"space: strategy.samples: the {kind} strategy needs samples >= 1")
    if ints["batch"] < 1:
        raise InputError("space: strategy.batch: expected an integer >= 1")
    if ints["seed"] >= 1 << 31:
        raise InputError(f"space: strategy.seed: expected an integer below 2^31, got {ints['seed']!r}")
    SWEEP_POINTS.check(ints["samples"], "space: strategy.samples", InputError)
    SWEEP_POINTS.check(ints["batch"], "space: strategy.batch", InputError)
    objectives = tab.get("objectives", ["latency", "energy", "area"])
    if not isinstance(objectives, list) or not objectives or not all(isinstance(o, str) for o in objectives):
        raise InputError("space: strategy.objectives: expected a non-empty list of names")
    if kind == "grid":
        for p in params:
            if isinstance(p.domain, Range) and p.domain.step is None:
                raise InputError(f"space: {p.target}.{p.key}: the grid strategy needs a list or a range "
                                 f"with `step`")
    return StrategySpec(kind, ints["seed"], ints["samples"], ints["batch"], tuple(objectives))


def _param(target: str, key: str, raw: Any, base: Arch) -> Param:
    where = f"space: {target}.{key}"
    domain = _domain(where, raw)
    if isinstance(domain, Range) and domain.step is not None:
        SWEEP_POINTS.check(domain.points, f"{where}: the range's grid", InputError)
    values = domain.values if isinstance(domain, Choices) else \
        (domain.low, domain.high, *([domain.at(1)] if domain.step is not None and domain.points > 1 else []))
    if target == "options":
        if key not in OPTION_FIELDS:
            raise InputError(f"{where}: unknown compiler option{did_you_mean(key, OPTION_FIELDS)} "
                             f"(known: {', '.join(OPTION_FIELDS)})")
        for v in values:
            try:
                check_option(key, v, OPTION_FIELDS[key])
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None
    else:
        for v in values:  # each value within the key's type and limits (checks across keys: per point)
            try:
                base.check_value(key, v)
            except ArchError as exc:
                raise InputError(f"{where}: {str(exc).removeprefix('arch config: ')}") from None
    return Param(target, key, domain)


def _domain(where: str, raw: Any) -> Domain:
    if isinstance(raw, list):
        if not raw:
            raise InputError(f"{where}: empty list of choices")
        if not all(isinstance(v, (bool, int, float, str)) for v in raw):
            raise InputError(f"{where}: choices must be numbers, strings or booleans")
        if len(set(map(repr, raw))) != len(raw):
            raise InputError(f"{where}: repeated choice")
        return Choices(tuple(raw))
    if isinstance(raw, dict):
        _only(raw, where.removeprefix("space: "), {"min", "max", "step", "log"})
        low, high, step, log = raw.get("min"), raw.get("max"), raw.get("step"), raw.get("log", False)
        nums = [v for v in (low, high, step) if v is not None]
        if low is None or high is None or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in nums):
            raise InputError(f"{where}: a range needs numeric min and max")
        if not all(abs(v) < 2 ** 53 for v in nums):     # (False for NaN and infinity)
            raise InputError(f"{where}: a range needs finite min, max and step (below 2^53)")
        if not low <= high or (step is not None and not step > 0) or not isinstance(log, bool):
            raise InputError(f"{where}: expected min <= max, step > 0 and log a boolean")
        if log and (low <= 0 or step is not None):
            raise InputError(f"{where}: a log range needs min > 0 and no step")
        return Range(low, high, step, log)
    if isinstance(raw, (bool, int, float, str)):
        return Choices((raw,))
    raise InputError(f"{where}: expected a list of choices or a table {{min, max, step, log}}")


def _model(raw: Any, i: int, root: Path) -> ModelSpec:
    where = f"space: models[{i}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("path"), str):
        raise InputError(f"{where}: expected a table with a `path`")
    _only(raw, f"models[{i}]", {"path", "input_shapes", "calibration", "method"})
    shapes = raw.get("input_shapes", {})
    if not isinstance(shapes, dict) or not all(
            isinstance(s, list) and s and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in s)
            for s in shapes.values()):
        raise InputError(f"{where}.input_shapes: expected {{name = [d0, d1, ...]}} with positive integers")
    for name, s in shapes.items():
        TENSOR_RANK.check(len(s), f"{where}.input_shapes.{name}", InputError)
        TENSOR_ELEMENTS.check(math.prod(s), f"{where}.input_shapes.{name}", InputError)
    calib = raw.get("calibration")
    if calib is not None and not isinstance(calib, str):
        raise InputError(f"{where}.calibration: expected a .npz path")
    method = raw.get("method", "auto")
    if method not in METHODS:
        raise InputError(f"{where}.method: expected one of {' | '.join(METHODS)}, not {method!r}")
    return ModelSpec((root / raw["path"]).resolve(), tuple((k, tuple(v)) for k, v in shapes.items()),
                     (root / calib).resolve() if calib else None, method)
