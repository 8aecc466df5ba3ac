"""Tensors that must share one int8 quantisation, and fixed-range outputs kept out of them.

TFLite's int8 kernels of data-movement ops (concat, pooling, reshape, ...) need their output
quantised as their input (every input, for concat): such tensors form a group with one
scale, from the union of the members' calibrated ranges. SIGMOID, SOFTMAX and TANH write a
fixed quantisation instead ([0, 1) and [-1, 1), as LiteRT's kernels demand). A group that
holds such an output and a member outside that fixed range (a Concat of box regressions and
sigmoid scores) must not take the fixed range, which would clip the other members: the
fixed-range output is requantised into the group by an int8 -> int8 QUANTIZE, and the group's
scale comes from its members' calibrated ranges, as for any other group.
The graph's ties (ir.ties: an unrolled loop's per-iteration copies of one value) join the
groups too, so that every iteration takes one scale (and one width).
"""
from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, Node, Op, QParams, QuantizeAttrs
from .calibrate import Range

# ops whose output must carry its (first) input's quantisation, as TFLite's int8 kernels demand
SAME_AS_INPUT = {Op.MAX_POOL, Op.AVG_POOL, Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD, Op.CONCAT,
                 Op.RESIZE, Op.MAXIMUM, Op.MINIMUM, Op.REDUCE_MAX, Op.REDUCE_MIN}
GROUPED = SAME_AS_INPUT | {Op.WHERE}    # WHERE: both value operands and the output share one scale
# ops whose int8 output quantisation is fixed: (scale, zero point)
FIXED_OUTPUT = {Op.SIGMOID: (1 / 256, -128), Op.SOFTMAX: (1 / 256, -128), Op.TANH: (1 / 128, 0)}


class Groups:
    """Union-find over tensor names that must share quantisation."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        while self.parent.get(a, a) != a:
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def grouped_inputs(node: Node) -> tuple[str, ...]:
    """The inputs of a GROUPED node that share its output's quantisation."""
    # MAXIMUM / MINIMUM compare codes: both operands at the output's quantisation, as LiteRT's
    # int8 kernels demand
    return {Op.CONCAT: node.inputs, Op.MAXIMUM: node.inputs, Op.MINIMUM: node.inputs,
            Op.WHERE: node.inputs[1:]}.get(node.op, node.inputs[:1])


def shared_groups(g: Graph) -> Groups:
    groups = Groups()
    for node in g.nodes:
        if node.op in GROUPED:
            for t in grouped_inputs(node) + node.outputs:
                if not g.tensors[t].is_const:
                    groups.union(t, node.outputs[0])
        if node.op is Op.LSTM:      # hidden state in, output, hidden state out: one scale; cell states one
            for members in ((node.inputs[4], *node.outputs[:2]), (node.inputs[5], *node.outputs[2:])):
                for t in members:
                    if not g.tensors[t].is_const:
                        groups.union(t, members[1] if len(members) > 1 else t)
        if node.op is Op.GRU:       # hidden state in, output sequence, hidden state out: one scale
            for t in (node.inputs[5], *node.outputs[1:]):
                if not g.tensors[t].is_const:
                    groups.union(t, node.outputs[0])
    for tie in g.ties.groups:
        present = sorted(t for t in tie if t in g.tensors and not g.tensors[t].is_const)
        for t in present[1:]:
            groups.union(t, present[0])
    return groups


def fixed_outputs(g: Graph) -> dict[str, QParams]:
    return {n.outputs[0]: QParams.per_tensor(*FIXED_OUTPUT[n.op]) for n in g.nodes if n.op in FIXED_OUTPUT}


def _nominal(q: QParams) -> Range:
    """The real range an int8 quantisation stands for ([0, 1] for 1/256 at zero point -128)."""
    return Range((-128 - q.zp) * q.s, (128 - q.zp) * q.s)


def _holds(q: QParams, r: Range) -> bool:
    """Whether `q`'s range holds `r`, to half a step."""
    n = _nominal(q)
    return r.lo >= n.lo - q.s / 2 and r.hi <= n.hi + q.s / 2


def _reads(g: Graph, fixed: dict[str, QParams]) -> tuple[Groups, dict[str, set[str]]]:
    """The groups without the fixed-range outputs, and per group (root) the fixed-range
    outputs its ops read."""
    groups = Groups()
    for node in g.nodes:
        if node.op in GROUPED:
            for t in grouped_inputs(node):
                if t not in fixed and not g.tensors[t].is_const:
                    groups.union(t, node.outputs[0])
    reads: dict[str, set[str]] = {}
    for node in g.nodes:
        if node.op in GROUPED:
            for t in grouped_inputs(node):
                if t in fixed:
                    reads.setdefault(groups.find(node.outputs[0]), set()).add(t)
    return groups, reads


def _requantised_reads(g: Graph, ranges: dict[str, Range]) -> tuple[Groups, set[tuple[str, str]]]:
    """(fixed-range output, group root) pairs where the group must read a requantised copy.
    A group that one of the fixed ranges it reads holds (with its members' calibrated ranges)
    takes that range, as TFLite does (sigmoid -> pool, a concat of sigmoids); the fixed outputs
    with other params reach it requantised. Otherwise every fixed output it reads does."""
    fixed = fixed_outputs(g)
    groups, reads = _reads(g, fixed)
    members: dict[str, list[Range]] = {}
    for name, r in ranges.items():
        if name not in fixed:
            members.setdefault(groups.find(name), []).append(r)
    out: set[tuple[str, str]] = set()
    for root, fx in reads.items():
        need = members.get(root, []) + [_nominal(fixed[f]) for f in fx]
        keep = next((fixed[f] for f in sorted(fx) if all(_holds(fixed[f], r) for r in need)), None)
        out |= {(f, root) for f in fx if fixed[f] != keep}
    return groups, out


def requantise_fixed_outputs(g: Graph, ranges: dict[str, Range]) -> tuple[Graph, dict[str, str]]:
    """The float graph with a QUANTIZE after a fixed-range output for each group it would
    clip (see `_requantised_reads`): that group's ops read the requantised copy, every other
    consumer (a graph output, a group it fits) the fixed-range tensor. Also returns
    {copy: original}: a copy's float values and calibrated range are its original's."""
    groups, pairs = _requantised_reads(g, ranges)
    suffixes: dict[tuple[str, str], str] = {}
    for f, root in sorted(pairs):
        n = sum(1 for k in suffixes if k[0] == f)
        suffixes[(f, root)] = f"_{n + 1}" if n else ""
    copies = {(f, root): f"{f}/requantised{sfx}" for (f, root), sfx in suffixes.items()}
    tensors = dict(g.tensors)
    nodes: list[Node] = []
    for node in g.nodes:
        if node.op in GROUPED:
            root, grouped = groups.find(node.outputs[0]), set(grouped_inputs(node))
            node = node.with_(inputs=tuple(copies.get((t, root), t) if t in grouped else t for t in node.inputs))
        nodes.append(node)
        for (f, root), sfx in suffixes.items():
            if f == node.outputs[0]:
                copy = copies[(f, root)]
                tensors[copy] = replace(tensors[f], name=copy)
                nodes.append(Node(Op.QUANTIZE, f"{node.name}/requantise{sfx}", (f,), (copy,), QuantizeAttrs(),
                                  source=node.source))
    return g.with_nodes(nodes, tensors), {copy: f for (f, _), copy in copies.items()}
