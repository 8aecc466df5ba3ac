"""A program bound for execution: every instruction's steps, micro-ops and Python actions.

The micro-ops of the whole program form one table. Run in program order, each maximal run of
consecutive micro-ops (across instructions) is one compiled call; run in another order, or one
instruction at a time, each instruction's own micro-ops are. A ValueError raised inside a
micro-op (a requantisation shift outside [-31, 31]) becomes a BinaryError naming the instruction.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..errors import BinaryError
from . import microops
from .microops import MicroOp

Action = Callable[[], None]
Step = MicroOp | Action


class Plan:
    def __init__(self, steps: list[list[Step]], names: list[str]):
        from .interpreter import entry      # numba loads when a program is first bound
        ops = [(i, s) for i, st in enumerate(steps) for s in st if isinstance(s, MicroOp)]
        self.table = microops.table([s for _, s in ops])
        self._keep = [s.keep for _, s in ops]
        self._owner = [i for i, _ in ops]           # the instruction of each row
        self._names = names
        self._at = np.zeros(1, np.int64)
        self._run = entry()
        self._segments: set[int] = set()            # ids of the calls that run rows
        row = 0
        self.instructions: list[list[Action]] = []
        for st in steps:
            self.instructions.append(self._calls(st, row))
            row += sum(isinstance(s, MicroOp) for s in st)
        self.program = self._calls([s for st in steps for s in st], 0)

    def _calls(self, steps: list[Step], row: int) -> list[Action]:
        """The steps as calls, each run of consecutive micro-ops (from table row `row` on) as one."""
        calls, start = [], row
        for s in steps:
            if isinstance(s, MicroOp):
                row += 1
                continue
            if row > start:
                calls.append(self._segment(start, row))
            calls.append(s)
            start = row
        if row > start:
            calls.append(self._segment(start, row))
        return calls

    def _segment(self, start: int, stop: int) -> Action:
        call = partial(self._run, self.table, start, stop, self._at)
        self._segments.add(id(call))
        return call

    def run(self, calls: list[Action]) -> None:
        call = None
        try:
            for call in calls:
                call()
        except ValueError as e:
            if id(call) not in self._segments:
                raise
            raise BinaryError(f"{self._names[self._owner[int(self._at[0])]]}: {e}") from None
