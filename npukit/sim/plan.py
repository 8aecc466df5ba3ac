"""A program bound for execution: every instruction's steps, micro-ops and Python actions.

Run in program order, each maximal run of consecutive micro-ops (across instructions) is one
compiled call over a table of the program's rows; the program-order steps may differ from the
instructions' own (sim/batching.py groups products). Run in another order, or one instruction
at a time, each instruction's own micro-ops are one call. An error a corrupt instruction
provokes while it runs (a requantisation shift outside [-31, 31], a geometry its kernel
rejects) becomes a BinaryError naming the instruction.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..errors import BinaryError, IndexRangeError, InputError, ModelError
from . import microops
from .microops import MicroOp

Action = Callable[[], None]
Step = MicroOp | Action


class _Table:
    """Micro-ops as rows, each with the instruction it belongs to."""

    def __init__(self, owned: list[tuple[int, Step]]):
        ops = [(i, s) for i, s in owned if isinstance(s, MicroOp)]
        self.rows = microops.table([s for _, s in ops])
        self.owner = [i for i, _ in ops]
        self.keep = [s.keep for _, s in ops]


class Plan:
    def __init__(self, steps: list[list[Step]], names: list[str], program: list[tuple[int, Step]] | None = None):
        """`steps`: each instruction's own; `program`: (instruction, step) in program order, by
        default the instructions' steps one after another."""
        self._names = names
        self._at = np.zeros(1, np.int64)
        self._tables: dict[int, _Table] = {}        # id of each call that runs rows -> its table
        own = [(i, s) for i, st in enumerate(steps) for s in st]
        self._owner = {id(s): i for i, s in (program or []) + own if not isinstance(s, MicroOp)}
        per = _Table(own)
        row, self.instructions = 0, []
        for st in steps:
            self.instructions.append(self._calls(st, per, row))
            row += sum(isinstance(s, MicroOp) for s in st)
        if program is None:
            self.program = self._calls([s for _, s in own], per, 0)
        else:
            self.program = self._calls([s for _, s in program], _Table(program), 0)

    def _calls(self, steps: list[Step], table: _Table, row: int) -> list[Action]:
        """The steps as calls, each run of consecutive micro-ops (from `table` row `row` on) as one."""
        calls, start = [], row
        for s in steps:
            if isinstance(s, MicroOp):
                row += 1
                continue
            if row > start:
                calls.append(self._segment(table, start, row))
            calls.append(s)
            start = row
        if row > start:
            calls.append(self._segment(table, start, row))
        return calls

    def _segment(self, table: _Table, start: int, stop: int) -> Action:
        from .interpreter import entry      # numba loads when a program with micro-ops is first bound
        call = partial(entry(), table.rows, start, stop, self._at)
        self._tables[id(call)] = table
        return call

    def run(self, calls: list[Action]) -> None:
        """Make the calls; an error a corrupt instruction provokes in a kernel (a bad shift, a
        geometry its kernel rejects) becomes a BinaryError naming the instruction."""
        call = None
        try:
            for call in calls:
                call()
        except IndexRangeError:     # the data's fault (an id out of range), not the binary's
            raise
        except (ValueError, ArithmeticError, InputError, ModelError) as e:
            table = self._tables.get(id(call))
            i = table.owner[int(self._at[0])] if table is not None else self._owner.get(id(call))
            if i is None:
                raise
            raise BinaryError(f"{self._names[i]}: {e}") from None
