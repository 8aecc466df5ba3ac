"""Picking among a layer's cheapest tilings by timing each with the event model.

The closed forms of the tiling search ignore the stalls between tiles (an engine waiting
on a transfer or a free buffer); the event model sees them. Each candidate is lowered into
a scratch emitter and constant image, the layer alone is timed, and the fastest wins.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TypeVar

from ..arch.tech import energy_table
from ..cost.timing import simulate
from .context import Ctx
from .emitter import Emitter

Candidate = TypeVar("Candidate")


@dataclass(frozen=True)
class _Replay:
    """The part of a Program the timing model reads."""
    instructions: list
    regions: tuple = ()
    layers: tuple = ()
    host_segments: tuple = field(default=())


def replay(ctx: Ctx, emit, ratio: float = 1.0) -> tuple[int, float]:
    """(cycles, dynamic energy in pJ) of the instructions `emit(scratch_ctx)` produces, timed on
    their own; compressed weight blocks are sized by the layer's measured `ratio` (encoding
    every candidate's blocks would cost more than the lowering)."""
    consts = ctx.consts.fresh(estimate=ratio)
    e = Emitter(layer=ctx.emitter.layer, readonly=dict(ctx.emitter.readonly), packed=consts.packed,
                packed_space=consts.space)
    scratch = dataclasses.replace(ctx, consts=consts, emitter=e)
    emit(scratch)
    return timed(e.program, ctx.arch)


def timed(instructions: list, arch) -> tuple[int, float]:
    """(cycles, dynamic energy in pJ) of instructions timed on their own."""
    return cycles_and_energy(_Replay(instructions), arch)


def cycles_and_energy(program, arch) -> tuple[int, float]:
    """(cycles, dynamic energy in pJ) of a program by the event model and the technology table."""
    t = simulate(program, arch)
    return t.total_cycles, sum(_layer_energy(t, arch))


def _layer_energy(t, arch) -> list[float]:
    et = energy_table(arch)
    return [float(sum(c.energy_pj(et, arch.host.pj_per_cycle))) for c in t.counts]


def pick(timed: list[tuple[int, float]], tie: float) -> int:
    """The index of the fastest (cycles, energy); among those within `tie` of its cycles (a
    fraction), the least energy; the first on a tie."""
    fast = min(cycles for cycles, _ in timed)
    if tie <= 0:
        return next(i for i, (cycles, _) in enumerate(timed) if cycles == fast)
    near = [i for i, (cycles, _) in enumerate(timed) if cycles <= fast * (1 + tie)]
    return min(near, key=lambda i: (timed[i][1], i))


def fastest(ctx: Ctx, candidates: list[Candidate], emit, key, ratio: float = 1.0) -> Candidate:
    """The candidate whose lowering `emit(ctx, candidate)` the event model times fastest;
    among those within `energy_tie` of the fastest (a fraction of its cycles), the one with
    the least dynamic energy, and the first (cheapest by the closed forms) on a tie.
    Remembered in the compile's memo under `key`. `ratio`: the compression ratio of the
    layer's weights."""
    if len(candidates) <= 1:
        return candidates[0]
    tie = ctx.options.energy_tie
    memo = ctx.memo
    return candidates[memo.get(memo.chosen, (key, tie), lambda: pick(
        [replay(ctx, lambda c, t=t: emit(c, t), ratio) for t in candidates], tie))]
