"""`schedule_graph`: every choice between the quantised graph and the program, made once.

Partition (NPU or host, with the reason), fusion groups, the activation arena, and each
layer's tiling. Tilings are costed with the closed forms; the event model times the
cheapest few of a layer (`replay.fastest`). Fusion forms are compared by replaying on the
event model only the units two choices change (their groups, and the layers whose tensors
their arenas place differently), each with its neighbours: windows, never whole programs.
"""
from __future__ import annotations

import gc
from dataclasses import replace

from ..ir.graph import Graph, Node, Op
from ..isa import instructions as I
from ..schedule.memo import Memo
from ..schedule.plan import FusionGroup, LayerSchedule, Placement, Schedule, Tiling, graph_fingerprint
from .boundary import absorb_boundary_transposes
from .context import CompileOptions, Ctx
from .emitter import Recorder, flipped, moved, replayed_deps
from .conv import choose_conv, lower_conv
from .fused import choose_fused, fusable_expansions, fusable_pairs, lower_fused, plan_fused
from .gather import gather_reduced_axes_graph
from .layer import lower_layer
from .matmul import matmul_tiling
from .memory import ArenaPlan as Arena, ConstImage, plan_arena
from .partition import npu_support, onchip_bytes
from .replay import pick, timed
from .reuse import Reuse
from .schedule_record import arena_record, layer_bound


Groups = dict[str, tuple[Node, Node | None]]     # depthwise name -> (its 1x1, the expansion before it or None)
FUSION_SWEEPS = 2      # passes over the groups in graph order (the second sees the first's choices)


def prepare(g: Graph) -> tuple[Graph, dict]:
    """The graph the schedule and the lowering see (reduced axes gathered, boundary
    transposes moved to the host side) and the moved I/O tensors."""
    return absorb_boundary_transposes(gather_reduced_axes_graph(g))


def schedule_graph(g: Graph, arch, options: CompileOptions = CompileOptions()) -> Schedule:
    """The schedule of the quantised graph `g` on `arch`."""
    return schedule_prepared(prepare(g)[0], arch, options)


def compress_weights(arch, options: CompileOptions) -> bool:
    """Whether weight blocks are stored compressed: `auto` does where the decoder keeps up with
    the weights' region (then a compressed load is never slower, only shorter)."""
    if options.compress_weights == "never":
        return False
    return arch.dma.decode_bytes_per_cycle >= arch.region_bytes_per_cycle(arch.placement.weights)


class _Scheduler:
    def __init__(self, g: Graph, arch, options: CompileOptions, reuse: Reuse | None = None):
        self.g, self.arch, self.options, self.reuse = g, arch, options, reuse
        names = [r.name for r in arch.regions]
        self.act_space = I.REGION0 + names.index(arch.placement.activations)
        self.w_space = I.REGION0 + names.index(arch.placement.weights)
        self.onchip = onchip_bytes(arch, options)
        self.reasons = {nd.name: npu_support(g, nd, arch.abuf_bytes - self.onchip, arch, options) for nd in g.nodes}
        self.host = {n for nd in g.nodes if self.reasons[nd.name] for n in (*nd.inputs, *nd.outputs)}
        self.index = {nd.name: i for i, nd in enumerate(g.nodes)}
        self.compress = compress_weights(arch, options)
        self.ratios: dict = {}      # weight compression ratios, measured once for every context
        self.memo = Memo()          # searches and timings, remembered for this schedule only

    def arena(self, groups: Groups) -> Arena:
        fused = frozenset({self.index[d] for d in groups} | {self.index[d] - 1 for d, (_, ex) in groups.items() if ex})
        return self.memo.get(self.memo.arenas, fused, lambda: plan_arena(
            self.g, self.act_space, self.arch.abuf_bytes - self.onchip, self.onchip, pinned=self.host, fused=fused))

    def ctx(self, groups: Groups) -> Ctx:
        arena = self.arena(groups)
        consts = ConstImage(self.w_space, arena.size if self.w_space == self.act_space else 0, self.compress,
                            reuse=self.reuse)
        ctx = Ctx(self.arch, self.options, arena, consts, self.onchip, ratios=self.ratios, memo=self.memo)
        ctx.emitter.packed, ctx.emitter.packed_space = consts.packed, consts.space
        ctx.emitter.readonly[self.w_space] = (consts.base, 1 << 62)
        return ctx

    # -- fusion: each group's form by replays of the layers the form changes
    def fusion(self) -> Groups:
        g, o = self.g, self.options
        on_npu = lambda nd: not self.reasons[nd.name]  # noqa: E731
        pairs = fusable_pairs(g, on_npu) if o.fuse_depthwise != "never" else {}
        exps = fusable_expansions(g, on_npu, pairs) if o.fuse_expansion != "never" else {}
        if exps and o.fuse_expansion == "always":
            return {d: (pw, exps.get(d)) for d, pw in pairs.items()}
        forms = {d: [f for f in ("none", "pair", "triple") if self._allowed(f, d in exps)] for d in pairs}
        self.pairs, self.exps = pairs, exps
        self.units = self._units()
        nodes = self.g.nodes
        self.touched = [sorted({t for nd in nodes[lo:hi + 1] for t in (*nd.inputs, *nd.outputs)})
                        for lo, hi, _ in self.units]
        assign = self._descend({d: f[-1] for d, f in forms.items()}, forms)   # from the most fused
        # every group in one form at once (a gain no single change shows, e.g. an arena that
        # keeps more tensors on chip); single changes from such a winner are kept only if
        # they win together against it
        uniform = [u for f in ("none", "pair", "triple")
                   for u in [{d: f if f in forms[d] else a for d, a in assign.items()}] if u != assign]
        best = self._best([assign, *uniform]) if uniform else assign
        if best is not assign:
            refined = self._descend(best, forms)
            best = self._best([best, refined]) if refined != best else best
        return self._groups(best)

    def _descend(self, assign: dict[str, str], forms: dict[str, list[str]]) -> dict[str, str]:
        """Each group in graph order takes its fastest form, the others as they stand."""
        for _ in range(FUSION_SWEEPS):
            changed = False
            for d in self.pairs:
                if len(forms[d]) > 1:
                    best = self._best([assign | {d: f} for f in forms[d]])
                    changed |= best[d] != assign[d]
                    assign = best
            if not changed:
                break
        return assign

    def _groups(self, assign: dict[str, str]) -> Groups:
        return {d: (self.pairs[d], self.exps.get(d) if f == "triple" else None)
                for d, f in assign.items() if f != "none"}

    def _units(self) -> list[tuple[int, int, str | None]]:
        """The graph in emission units: (first layer, last layer, the group's depthwise or
        None); a group's unit spans its expansion whatever its form."""
        starts = {self.index[d] - (d in self.exps): d for d in self.pairs}
        units, j = [], 0
        while j < len(self.g.nodes):
            d = starts.get(j)
            last = self.index[d] + 1 if d else j
            units.append((j, last, d))
            j = last + 1
        return units

    def _best(self, assigns: list[dict[str, str]]) -> dict[str, str]:
        """The fastest of several assignments of forms to groups: each one's context (its
        arena) emits the units they differ in (their groups, and each layer reading or writing
        a tensor they place differently) with the unit before and after each, as separate
        windows; the event model times them and the sums decide (`pick`). An assignment
        whose fused form does not fit its arena is left out."""
        ctxs = [self.ctx(self._groups(a)) for a in assigns]
        differ = [d for d in self.pairs if len({a[d] for a in assigns}) > 1]
        windows = self._windows(differ, [c.arena for c in ctxs])
        ratio = self.ratios.get(self.pairs[differ[0]].inputs[1], 1.0) if differ else 1.0
        timed, kept = [], []
        for a, ctx in zip(assigns, ctxs):
            costs = [self._window_cost(ctx, a, lo, hi, ratio) for lo, hi in windows]
            if any(c is None for c in costs):
                continue
            timed.append((sum(c[0] for c in costs if c), sum(c[1] for c in costs if c)))
            kept.append(a)
        return kept[pick(timed, self.options.energy_tie)] if kept else assigns[0]

    def _window_cost(self, ctx: Ctx, assign: dict[str, str], lo: int, hi: int,
                     ratio: float) -> tuple[int, float] | None:
        """(cycles, energy) of units lo..hi by the event model, or None when a fused form does
        not fit. Remembered by what the timing depends on: the units' forms, the space of each
        tensor they touch and, for tensors sharing bytes, their relative offsets (addresses
        matter only through the hazards between accesses)."""
        _, spaces, shared = self._layout(ctx, sorted({t for k in range(lo, hi + 1) for t in self.touched[k]}))
        forms = tuple(assign[d] for _, _, d in self.units[lo:hi + 1] if d)
        key = (lo, hi, forms, ratio, spaces, shared)

        def cost() -> tuple[int, float] | None:
            entries = self._window(ctx, assign, lo, hi, ratio)
            return None if entries is None else _time(ctx, entries)
        return self.memo.get(self.memo.windows, key, cost)

    def _window(self, ctx: Ctx, assign: dict[str, str], lo: int, hi: int, ratio: float) -> list | None:
        """The recorded instructions of units lo..hi one after another (each step's SRAM slots
        from the other end than the step before), or None when a fused form does not fit."""
        out: list = []
        steps = 0
        for k in range(lo, hi + 1):
            rec = self._recorded(ctx, k, assign, ctx.flip ^ (steps % 2 == 1), ratio)
            if rec is None:
                return None
            out += rec[0]
            steps += rec[1]
        return out

    def _recorded(self, ctx: Ctx, k: int, assign: dict[str, str], flip: bool, ratio: float) -> tuple[list, int] | None:
        """Unit k's instructions in its form as (recorded emission, number of steps), or None:
        emitted once for each form, first slot side, weight ratio and layout of the tensors it
        touches (their spaces, and the relative offsets of those sharing bytes), then replayed
        from the record, its byte ranges moved with the tensors they lie in when the tensors
        sit elsewhere (an instruction's charge reads spaces and sizes, not addresses). A unit
        recorded from the other slot side is not emitted again: its record's SRAM slots are
        moved to where this side takes them (`flipped`)."""
        lo, hi, d = self.units[k]
        placed, spaces, shared = self._layout(ctx, self.touched[k])
        at = tuple((t, a) for t, _, a, _ in placed)
        form = assign[d] if d else None
        exact = (k, form, flip, ratio, ctx.consts.base, ctx.consts.compress, spaces, at)
        if exact in self.memo.units:
            return self.memo.units[exact]
        key = (k, form, flip, ratio, ctx.consts.base, ctx.consts.compress, spaces, shared)
        other = mirror = None
        if key not in self.memo.layouts:
            other = self.memo.layouts.get((*key[:2], not flip, *key[3:]))
            mirror = other and flipped(other[0], other[2])
        if key in self.memo.layouts:
            rec = self.memo.layouts[key]
            out = rec and (moved(rec[0], rec[3], placed), rec[1])
        elif other and mirror:      # the other slot side's record, its slots from this end
            rec = self.memo.layouts[key] = (mirror[0], other[1], mirror[1], other[3])
            out = (moved(rec[0], rec[3], placed), rec[1])
        else:
            made = self.emitted(ctx, k, assign, flip, ratio)
            if made is None:
                self.memo.units[exact] = self.memo.layouts[key] = None
                return None
            self.memo.layouts[key] = (*made, placed)
            out = made[:2]
        self.memo.units[exact] = out
        return out

    def emitted(self, ctx: Ctx, k: int, assign: dict[str, str], flip: bool,
                ratio: float) -> tuple[list, int, list] | None:
        """Unit k in its form emitted afresh into a recorder, its weight blocks sized by `ratio`,
        its first step's SRAM slots from side `flip`: (recorded entries, steps, the slots taken
        as `Ctx.slot_log` has them), or None when a fused form does not fit."""
        steps = self._unit(ctx, self.units[k], assign)
        if steps is None:
            return None
        consts = ctx.consts.fresh(estimate=ratio)
        e = Recorder(layer=ctx.emitter.layer, readonly=dict(ctx.emitter.readonly), packed=consts.packed,
                     packed_space=consts.space)
        cx = replace(ctx, consts=consts, emitter=e, flip=flip, slot_log=[])
        for j, step in enumerate(steps):
            if j:
                cx.flip = not cx.flip
            step(cx)
        assert cx.slot_log is not None
        return e.entries, len(steps), cx.slot_log

    def _layout(self, ctx: Ctx, tensors: list[str]) -> tuple[list, tuple, tuple]:
        """The placed tensors among `tensors` as (tensor, space, address, bytes), their spaces,
        and the relative offsets of those sharing bytes (addresses matter to the timing only
        through the hazards between accesses)."""
        where = ctx.arena.where
        placed = [(t, where[t].space, where[t].addr, self.g.tensors[t].nbytes) for t in tensors if t in where]
        shared = tuple((t1, t2, a2 - a1) for i, (t1, s1, a1, n1) in enumerate(placed)
                       for t2, s2, a2, n2 in placed[i + 1:] if s1 == s2 and a1 < a2 + max(n2, 1) and a2 < a1 + max(n1, 1))
        return placed, tuple((t, s) for t, s, _, _ in placed), shared

    def _windows(self, groups: list[str], arenas: list[Arena]) -> list[tuple[int, int]]:
        """Merged ranges of unit indices: the groups' and each unit touching a tensor the
        arenas place in different spaces, each with the unit before and after."""
        unit_of = {j: k for k, (lo, hi, _) in enumerate(self.units) for j in range(lo, hi + 1)}
        spaces = [{t: p.space for t, p in a.where.items()} for a in arenas]
        moved = {t for t in set().union(*spaces) if len({s.get(t) for s in spaces}) > 1}
        touched = {unit_of[self.index[d]] for d in groups} | {unit_of[j] for j, nd in enumerate(self.g.nodes)
                                                               if moved & {*nd.inputs, *nd.outputs}}
        windows: list[tuple[int, int]] = []
        for k in sorted(touched):
            lo, hi = max(k - 1, 0), min(k + 1, len(self.units) - 1)
            if windows and lo <= windows[-1][1] + 1:
                windows[-1] = (windows[-1][0], max(hi, windows[-1][1]))
            else:
                windows.append((lo, hi))
        return windows

    def _unit(self, ctx: Ctx, unit: tuple[int, int, str | None], assign: dict[str, str]) -> list | None:
        """The emitters of one unit in its form (None: a fused form that does not fit); []
        for the host."""
        j, _, d = unit
        if d is not None:
            return self._block(ctx, assign[d], self.g.nodes[self.index[d]], self.pairs[d], self.exps.get(d))
        node = self.g.nodes[j]
        if self.reasons[node.name]:
            return []
        if node.op in (Op.CONV2D, Op.FULLY_CONNECTED):
            return [self._conv(ctx, node, j)]
        tiling = matmul_tiling(ctx, self.g, node) if node.op is Op.MATMUL else None

        def emit(cx):
            cx.emitter.layer = j
            lower_layer(cx, self.g, node, tiling)
        return [emit]

    def _allowed(self, form: str, has_ex: bool) -> bool:
        o = self.options
        if form == "none":
            return o.fuse_depthwise == "auto"
        if form == "pair":
            return not has_ex or o.fuse_expansion == "auto"
        return has_ex

    def _block(self, ctx: Ctx, form: str, dw: Node, pw: Node, ex: Node | None):
        """The block's emitters in `form` (none: each layer alone; pair: the expansion alone
        then the fused pair; triple: all fused), or None when the fused form does not fit."""
        i = self.index[dw.name]
        steps = [self._conv(ctx, ex, i - 1)] if ex and form != "triple" else []
        if form == "none":
            return steps + [self._conv(ctx, dw, i), self._conv(ctx, pw, i + 1)]
        gx = ex if form == "triple" else None
        layers = (i - 1, i, i + 1) if gx else (i, i + 1)
        cands = plan_fused(ctx, self.g, dw, pw, gx)
        if not cands:
            return None
        ctx.emitter.layer = layers[0]
        t = choose_fused(ctx, self.g, dw, pw, cands, layers, gx)
        return steps + [lambda cx: lower_fused(cx, self.g, dw, pw, t, layers, gx)]

    def _conv(self, ctx: Ctx, node: Node, i: int):
        ctx.emitter.layer = i
        t = choose_conv(ctx, self.g, node)

        def emit(cx):
            cx.emitter.layer = i
            lower_conv(cx, self.g, node, t)
        return emit

    def fitting(self, groups: Groups) -> tuple[Groups, Ctx, dict]:
        """The groups whose fused tiles fit with the arena they leave (an expansion that does
        not fit leaves its pair to be tried alone), that context and each group's candidates."""
        while True:
            ctx = self.ctx(groups)
            cands = {d: plan_fused(ctx, self.g, self.g.nodes[self.index[d]], pw, ex) for d, (pw, ex) in groups.items()}
            failed = {d for d, c in cands.items() if not c}
            if not failed:
                return groups, ctx, cands
            groups = {d: (pw, None if d in failed else ex) for d, (pw, ex) in groups.items()
                      if d not in failed or ex}


def schedule_prepared(g: Graph, arch, options: CompileOptions, reuse: Reuse | None = None) -> Schedule:
    """`schedule_graph` on a graph `prepare` has seen; `reuse`: ratios shared with other compiles.
    The cycle collector is paused meanwhile: the searches allocate about a million short-lived
    records, which reference counting frees, and the collector's passes over the compile's
    memo cost about 7% of MobileNetV2-0.35's scheduling."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _schedule(g, arch, options, reuse)
    finally:
        if enabled:
            gc.enable()


def _schedule(g: Graph, arch, options: CompileOptions, reuse: Reuse | None) -> Schedule:
    s = _Scheduler(g, arch, options, reuse)
    groups, ctx, cands = s.fitting(s.fusion())
    first = {(ex or g.nodes[s.index[d]]).name: d for d, (pw, ex) in groups.items()}
    inner: dict[str, str] = {}
    for d, (pw, ex) in groups.items():
        inner |= {n: (ex or g.nodes[s.index[d]]).name for n in ([d] if ex else []) + [pw.name]}
    interior = {g.nodes[s.index[d]].outputs[0] for d in groups} | {ex.outputs[0] for _, ex in groups.values() if ex}
    layers: list[LayerSchedule] = []
    flip = False
    counted: set[str] = set()
    nbuf = 2 if options.double_buffer else 1
    for i, node in enumerate(g.nodes):
        ctx.emitter.layer, ctx.flip = i, flip
        reason, target = s.reasons[node.name], "npu"
        tiling: Tiling | None = None
        if reason:
            target = "host"
        elif node.name in inner:
            target = "fused"
        elif node.name in first:
            d = first[node.name]
            pw, ex = groups[d]
            idx = s.index[d]
            tiling = choose_fused(ctx, g, g.nodes[idx], pw, cands[d], (idx - 1, idx, idx + 1) if ex else (idx, idx + 1), ex)
        elif node.op in (Op.CONV2D, Op.FULLY_CONNECTED):
            tiling = choose_conv(ctx, g, node)
        elif node.op is Op.MATMUL:
            tiling = matmul_tiling(ctx, g, node)
        layers.append(LayerSchedule(node.name, node.op.value, target, tiling, nbuf, flip,
                                    getattr(tiling, "est_cycles", 0), layer_bound(g, node, arch, counted, interior)))
        if _emits(g, node, target):
            flip = not flip
    return Schedule(arch.name, arch.fingerprint, graph_fingerprint(g), s.compress,
                    tuple(Placement(nd.name, "host" if s.reasons[nd.name] else "npu", s.reasons[nd.name])
                          for nd in g.nodes),
                    tuple(FusionGroup("expansion" if ex else "pair", (*([ex.name] if ex else []), d, pw.name))
                          for d, (pw, ex) in groups.items()),
                    arena_record(g, arch, ctx.arena, arch.abuf_bytes - s.onchip, s.onchip), tuple(layers))


def _time(ctx: Ctx, entries: list) -> tuple[int, float]:
    """(cycles, energy) of recorded instructions emitted afresh (their dependencies are
    those of this sequence) and timed on their own."""
    deps = replayed_deps(entries, ctx.emitter.readonly)
    return timed([ins for ins, _, _ in entries], ctx.arch, ctx.memo.charges, deps)


def _emits(g: Graph, node: Node, target: str) -> bool:
    """Whether the layer writes instructions of its own (the next one's SRAM slots then come
    from the other end)."""
    if target == "fused" or (target == "npu" and node.op is Op.RESHAPE):
        return False
    return not (node.op is Op.SLICE and g.tensors[node.outputs[0]].size == 0)
