"""Picking among a layer's cheapest tilings by timing each with the event model.

The closed forms of the tiling search ignore the stalls between tiles (an engine waiting
on a transfer or a free buffer); the event model sees them. Each candidate is lowered into
a scratch emitter and constant image, the layer alone is timed, and the fastest wins.
Candidates that must time the same as an earlier one are not timed again (`_timings`): one
that differs from it only in the dataflow, where every GEMM of the earlier one's program takes
as many cycles in either dataflow (the event model reads the dataflow nowhere else), is not
even lowered; one whose lowered program equals an earlier one's is not simulated. A dataflow
twin whose GEMMs do time differently is not lowered either: the lowering reads a tiling's
dataflow only into its CONV instructions, so its program is the earlier one's with that field
set (tests/codegen/test_timed_twins.py checks it against its own lowering).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TypeVar

from ..arch.tech import energy_table
from ..cost import costs
from ..cost.timing import simulate
from ..isa import instructions as I
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


def lowered(ctx: Ctx, emit, ratio: float = 1.0) -> list:
    """The instructions `emit(scratch_ctx)` produces into a scratch emitter and constant image;
    compressed weight blocks are sized by the layer's measured `ratio` (encoding every
    candidate's blocks would cost more than the lowering)."""
    consts = ctx.consts.fresh(estimate=ratio)
    e = Emitter(layer=ctx.emitter.layer, readonly=dict(ctx.emitter.readonly), packed=consts.packed,
                packed_space=consts.space)
    scratch = dataclasses.replace(ctx, consts=consts, emitter=e, slot_log=None)
    emit(scratch)
    return e.program


def timed(instructions: list, arch, charges: dict | None = None, deps: list | None = None) -> tuple[int, float]:
    """(cycles, dynamic energy in pJ) of instructions timed on their own; `charges`: the event
    model's instruction charges kept by the compile for this arch; `deps`: their dependency
    tokens when given apart from them (`simulate`)."""
    return cycles_and_energy(_Replay(instructions), arch, charges, deps)


def cycles_and_energy(program, arch, charges: dict | None = None, deps: list | None = None) -> tuple[int, float]:
    """(cycles, dynamic energy in pJ) of a program by the event model and the technology table."""
    t = simulate(program, arch, charges, deps)
    return t.total_cycles, sum(_layer_energy(t, arch, {ins.layer for ins in program.instructions}))


def _layer_energy(t, arch, layers: set[int]) -> list[float]:
    """The energy of each layer with instructions (the others' counts are empty: 0 pJ)."""
    et = energy_table(arch)
    return [float(sum(c.energy_pj(et, arch.host.pj_per_cycle))) for i, c in enumerate(t.counts) if i in layers]


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
    return candidates[memo.get(memo.chosen, (key, tie), lambda: pick(_timings(ctx, candidates, emit, ratio), tie))]


def _timings(ctx: Ctx, candidates: list, emit, ratio: float) -> list[tuple[int, float]]:
    """Each candidate's (cycles, energy) by the event model; one that must time as an earlier
    one (see the module's note) is given that one's, so `pick` decides as if all were timed."""
    out: list[tuple[int, float]] = []
    progs: list[list] = []
    flow_free: list[bool] = []    # the program's GEMMs take as long in either dataflow
    for t in candidates:
        twin = next((j for j, u in enumerate(candidates[:len(out)]) if _same_but_flow(u, t)), None)
        if twin is not None and flow_free[twin]:
            out.append(out[twin])
            progs.append(progs[twin])
            flow_free.append(True)
            continue
        prog = lowered(ctx, lambda c, t=t: emit(c, t), ratio) if twin is None else \
            with_dataflow(progs[twin], getattr(t, "dataflow", None))
        same = next((j for j, p in enumerate(progs) if p == prog), None)
        out.append(out[same] if same is not None else timed(prog, ctx.arch, ctx.memo.charges))
        progs.append(prog)
        flow_free.append(_flow_free(prog, ctx.arch))
    return out


def with_dataflow(prog: list, dataflow: int | None) -> list:
    """`prog` with every CONV in `dataflow` (None: a tiling without one, `prog` as it is)."""
    if dataflow is None:
        return prog
    return [dataclasses.replace(ins, dataflow=dataflow) if isinstance(ins, I.Conv) else ins for ins in prog]


def _same_but_flow(a, b) -> bool:
    """Whether tilings `a` and `b` differ at most in their dataflow and closed-form estimate."""
    if type(a) is not type(b) or not dataclasses.is_dataclass(a):
        return False
    return all(getattr(a, f.name) == getattr(b, f.name) for f in dataclasses.fields(a)
               if f.name not in ("dataflow", "est_cycles"))


def _flow_free(prog: list, arch) -> bool:
    """Whether every GEMM of `prog` takes as many cycles weight as output stationary."""
    rows, cols, overlap = arch.mxu.rows, arch.mxu.cols, arch.mxu.fold_overlap
    for ins in prog:
        if isinstance(ins, I.Conv):
            e, win = ins.out_h * ins.out_w, ins.kernel[0] * ins.kernel[1] * ins.c_len
            if (costs.mxu_gemm_cycles(e, ins.k, win, rows, cols, costs.WS, overlap)
                    != costs.mxu_gemm_cycles(e, ins.k, win, rows, cols, costs.OS, overlap)):
                return False
    return True
