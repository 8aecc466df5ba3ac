"""Tensors the quantiser gives one quantisation although no kernel demands it.

An unrolled loop (frontend/onnx_loop) makes one copy of each body value per iteration; each
copy calibrated alone would get its own range, from the values that one iteration saw (an
iteration whose values are small gets a narrow range, an iteration that reaches further a
wide one, and the program's arithmetic then differs from iteration to iteration). A tie
groups the copies of one body value: calibration observes the group as one tensor and the
quantiser gives every member the group's range (quant.groups.shared_groups).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ties:
    """Groups of tensor names, each of two or more members, disjoint."""
    groups: tuple[frozenset[str], ...] = ()

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for g in self.groups:
            if len(g) < 2 or seen & g:
                raise ValueError(f"a tie group needs two or more members in no other group: {sorted(g)}")
            seen |= g

    @staticmethod
    def of(groups) -> "Ties":
        """Ties from overlapping groups of names (joined where they share a member)."""
        parent: dict[str, str] = {}

        def find(a: str) -> str:
            while parent.get(a, a) != a:
                a = parent[a]
            return a
        for group in groups:
            members = list(group)
            for m in members[1:]:
                ra, rb = find(m), find(members[0])
                if ra != rb:
                    parent[ra] = rb
        joined: dict[str, set[str]] = {}
        for group in groups:
            for m in group:
                joined.setdefault(find(m), set()).add(m)
        return Ties(tuple(sorted((frozenset(s) for s in joined.values() if len(s) > 1), key=sorted)))

    def member_of(self) -> dict[str, frozenset[str]]:
        """Each tied tensor's group."""
        return {name: g for g in self.groups for name in g}

    def renamed(self, old: str, new: str) -> "Ties":
        """The ties with tensor `old` called `new` (a pass that gave its producer another name)."""
        if not any(old in g for g in self.groups):
            return self
        return Ties.of([{new if t == old else t for t in g} for g in self.groups])

    def __bool__(self) -> bool:
        return bool(self.groups)
