"""The schedule: every choice the compiler makes between the quantised graph and the program.

`schedule_graph` (codegen/scheduler.py) decides it; codegen (`lower_program`) emits the program
from the graph and the schedule in one pass. A schedule names the graph and the arch it was
made for (fingerprints) and round-trips through JSON (`to_json` / `from_json`), so a compile
can be pinned to one: `npukit compile --schedule-out` / `--schedule-in`.
"""
from __future__ import annotations

import hashlib
import json
import typing
from dataclasses import MISSING, dataclass, fields, is_dataclass
from typing import Union

from ..errors import ScheduleError, first_line
from .fused import FusedTiling
from .tiling import ConvTiling

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MatmulTiling:
    """MATMUL tiles: `mt` rows of A x `nt` columns of B, reducing over chunks of `kt`."""
    mt: int
    kt: int
    nt: int


Tiling = Union[ConvTiling, FusedTiling, MatmulTiling]
TILING_KINDS: dict[str, type] = {"conv": ConvTiling, "fused": FusedTiling, "matmul": MatmulTiling}


@dataclass(frozen=True)
class Placement:
    node: str
    target: str                 # npu | host
    reason: str = ""            # why the host ("" on the NPU)


@dataclass(frozen=True)
class FusionGroup:
    kind: str                   # pair: (depthwise, 1x1) | expansion: (1x1, depthwise, 1x1)
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class TensorPlace:
    """An activation tensor's bytes: `space` is "abuf" (resident between layers) or the
    off-chip region's name; live from layer `first` (-1: before the program) to `last`."""
    tensor: str
    space: str
    offset: int
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class ArenaPlan:
    region: str                 # the off-chip region of the activation arena
    size: int                   # its bytes
    onchip_base: int            # ABUF's resident area: [onchip_base, onchip_base + onchip_bytes)
    onchip_bytes: int
    tensors: tuple[TensorPlace, ...]
    aliases: tuple[tuple[str, str], ...] = ()    # (tensor, the tensor whose bytes it shares)


@dataclass(frozen=True)
class Bound:
    """A layer's lower bound: peak-rate compute cycles and minimal off-chip transfer cycles."""
    compute_cycles: int
    memory_cycles: int

    @property
    def cycles(self) -> int:
        return max(self.compute_cycles, self.memory_cycles)


@dataclass(frozen=True)
class LayerSchedule:
    name: str
    op: str
    target: str                 # npu | host | fused (run inside its group's first layer)
    tiling: Tiling | None       # None: a layer whose tiles follow from the arch alone (VPU, data)
    buffers: int                # 2: double buffering, 1: single
    slots_from_top: bool        # its SRAM slots are taken from the top (alternates layer by layer)
    est_cycles: int             # the closed-form estimate of its tiling (0: none)
    bound: Bound


@dataclass(frozen=True)
class Schedule:
    arch: str
    arch_fingerprint: str
    graph_fingerprint: str
    compress_weights: bool
    placements: tuple[Placement, ...]
    fusion: tuple[FusionGroup, ...]
    arena: ArenaPlan
    layers: tuple[LayerSchedule, ...]
    schema: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(_dump(self), indent=1)

    @staticmethod
    def from_json(text: str | bytes) -> "Schedule":
        """The schedule `to_json` wrote; anything malformed is a one-line ScheduleError."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as e:
            raise ScheduleError(f"schedule is not JSON: {first_line(e)}") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
            got = data.get("schema") if isinstance(data, dict) else None
            raise ScheduleError(f"schedule schema {got!r} is not {SCHEMA_VERSION}")
        return _load(Schedule, data, "schedule")


def tiling_dict(t: Tiling | None) -> dict:
    """The tiling as JSON data with its kind (the profile's per-layer `tiling`)."""
    return {} if t is None else _dump(t)


def graph_fingerprint(g) -> str:
    """sha256 over every node's name, operator and its tensors' shapes and types."""
    h = hashlib.sha256()
    for node in g.nodes:
        h.update(f"{node.name}|{node.op.value}".encode())
        for t in (*node.inputs, "->", *node.outputs):
            x = g.tensors.get(t)
            h.update(f"|{t}:{x.dtype.value}{tuple(x.shape)}".encode() if x is not None else b"|->")
    h.update(f"in {tuple(g.inputs)} out {tuple(g.outputs)}".encode())
    return h.hexdigest()


def _dump(x):
    if is_dataclass(x):
        out = {f.name: _dump(getattr(x, f.name)) for f in fields(x)}
        if isinstance(x, (ConvTiling, FusedTiling)):
            out["dataflow"] = ("ws", "os")[x.dataflow]
        kind = next((k for k, cls in TILING_KINDS.items() if isinstance(x, cls)), None)
        return out if kind is None else {"kind": kind, **out}
    if isinstance(x, (tuple, list)):
        return [_dump(v) for v in x]
    return x


_HINTS: dict[type, dict] = {}


def _load(cls, data, where: str):
    if not isinstance(data, dict):
        raise ScheduleError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _HINTS.setdefault(cls, typing.get_type_hints(cls))
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ScheduleError(f"{where}: unknown field {unknown[0]!r}")
    kw = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is not MISSING or f.default_factory is not MISSING:
                continue
            raise ScheduleError(f"{where}: missing field {f.name!r}")
        value = data[f.name]
        if f.name == "dataflow" and cls in (ConvTiling, FusedTiling):
            if value not in ("ws", "os"):
                raise ScheduleError(f"{where}.dataflow: {value!r} is not ws or os")
            kw[f.name] = ("ws", "os").index(value)
            continue
        kw[f.name] = _value(hints[f.name], value, f"{where}.{f.name}")
    return cls(**kw)


def _value(hint, value, where: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Tiling or (origin is Union and ConvTiling in args):
        if value is None:
            if type(None) in args:
                return None
            raise ScheduleError(f"{where}: missing")
        kind = value.get("kind") if isinstance(value, dict) else None
        if kind not in TILING_KINDS:
            raise ScheduleError(f"{where}: tiling kind {kind!r} is not one of {', '.join(TILING_KINDS)}")
        return _load(TILING_KINDS[kind], {k: v for k, v in value.items() if k != "kind"}, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise ScheduleError(f"{where}: expected a list, got {type(value).__name__}")
        item = args[0]
        if len(args) == 2 and args[1] is not Ellipsis:     # a pair (aliases)
            if len(value) != 2:
                raise ScheduleError(f"{where}: expected a pair")
            return tuple(_value(a, v, where) for a, v in zip(args, value))
        return tuple(_value(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if is_dataclass(hint):
        return _load(hint, value, where)
    ok = {int: isinstance(value, int) and not isinstance(value, bool), bool: isinstance(value, bool),
          str: isinstance(value, str)}.get(hint)
    if not ok:
        raise ScheduleError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {type(value).__name__}")
    if hint is int and not -(1 << 62) <= value < 1 << 62:
        raise ScheduleError(f"{where}: {value} is out of range")
    return value
