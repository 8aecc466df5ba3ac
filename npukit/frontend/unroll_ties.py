"""The ties of an unrolled loop (ir.ties): which IR tensors are one body value's copies.

An unroller (frontend/onnx_loop for an ONNX `Loop`; a TFLite `WHILE` one was tried,
BENCHMARKS.md, 2026-12-08) records each iteration as an `Iteration`; `iteration_ties` groups
the copies.
Copies are matched by the body value they hold (its name in the body) and, among the
iterations that emitted the same nodes (operator and output shapes, in order), node by node,
which reaches a converter's own tensors too (the first iteration of a recurrence, whose
state is a constant zero, folds some of its nodes away: it is matched by value alone).
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

from ..ir.graph import DType, Node, Tensor


@dataclass(frozen=True)
class Iteration:
    signature: tuple               # (operator, output shapes) of each node emitted, in order
    outputs: tuple[str, ...]       # their float activation outputs, in order
    named: dict[Hashable, str]     # body value -> the IR tensor holding it (float activations)


def iteration(nodes: Iterable[Node], tensors: Mapping[str, Tensor], named: Mapping[Hashable, str]) -> Iteration:
    """One iteration, from the nodes it emitted and the IR tensors of its body values."""
    def floating(name: str) -> bool:
        t = tensors.get(name)
        return t is not None and not t.is_const and t.dtype is DType.F32
    nodes = list(nodes)
    signature = tuple((n.op, tuple(tensors[o].shape for o in n.outputs if o in tensors)) for n in nodes)
    return Iteration(signature, tuple(o for n in nodes for o in n.outputs if floating(o)),
                     {k: v for k, v in named.items() if floating(v)})


def iteration_ties(copies: list[Iteration]) -> list[tuple[str, ...]]:
    """The groups of per-iteration copies (two or more distinct tensors each)."""
    if len(copies) < 2:
        return []
    groups = [tuple(c.named[k] for c in copies if k in c.named) for k in copies[0].named]
    alike: dict[tuple, list[tuple[str, ...]]] = {}
    for c in copies:
        alike.setdefault((c.signature, len(c.outputs)), []).append(c.outputs)
    for same in alike.values():
        groups += list(zip(*same)) if len(same) > 1 else []
    return [g for g in groups if len(set(g)) > 1]
