"""Tensors that must share one int8 quantisation, and fixed-range outputs kept out of them.

TFLite's int8 kernels of data-movement ops (concat, pooling, reshape, ...) need their output
quantised as their input (every input, for concat): such tensors form a group with one
scale, from the union of the members' calibrated ranges. SIGMOID, SOFTMAX and TANH write a
fixed quantisation instead ([0, 1) and [-1, 1), as LiteRT's kernels demand). A group that
holds such an output and a member outside that fixed range (a Concat of box regressions and
sigmoid scores) must not take the fixed range, which would clip the other members: the
fixed-range output is requantised into the group by an int8 -> int8 QUANTIZE, and the group's
scale comes from its members' calibrated ranges, as for any other group.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, Node, Op, QParams, QuantizeAttrs
from .calibrate import Range

# ops whose output must carry its (first) input's quantisation, as TFLite's int8 kernels demand
SAME_AS_INPUT = {Op.MAX_POOL, Op.AVG_POOL, Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD, Op.CONCAT,
                 Op.RESIZE, Op.MAXIMUM, Op.MINIMUM}
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
    """The inputs of a SAME_AS_INPUT node that share its output's quantisation."""
    return node.inputs if node.op is Op.CONCAT else node.inputs[:1]


def shared_groups(g: Graph) -> Groups:
    groups = Groups()
    for node in g.nodes:
        if node.op in SAME_AS_INPUT:
            for t in grouped_inputs(node) + node.outputs:
                if not g.tensors[t].is_const:
                    groups.union(t, node.outputs[0])
    return groups


def fixed_outputs(g: Graph) -> dict[str, QParams]:
    return {n.outputs[0]: QParams.per_tensor(*FIXED_OUTPUT[n.op]) for n in g.nodes if n.op in FIXED_OUTPUT}


def _holds(q: QParams, r: Range) -> bool:
    """Whether the int8 range of `q` holds `r` (to half a step)."""
    lo, hi = (-128 - q.zp) * q.s, (128 - q.zp) * q.s
    return r.lo >= lo - q.s / 2 and r.hi <= hi + q.s / 2


def _nominal(q: QParams) -> Range:
    return Range((-128 - q.zp) * q.s, (128 - q.zp) * q.s)


def fixed_outputs_to_requantise(g: Graph, ranges: dict[str, Range]) -> set[str]:
    """Fixed-range outputs whose group they would clip. A group whose members all fit one
    fixed member's range keeps it (sigmoid -> pool, a concat of sigmoids); the fixed members
    with other params are requantised into it. Otherwise every fixed member is."""
    groups, fixed = shared_groups(g), fixed_outputs(g)
    members: dict[str, list[str]] = {}
    for name in ranges:
        members.setdefault(groups.find(name), []).append(name)
    out: set[str] = set()
    for names in members.values():
        fx = [n for n in names if n in fixed]
        if not fx or len(names) == 1:
            continue
        need = [_nominal(fixed[n]) if n in fixed else ranges[n] for n in names]
        keep = next((fixed[n] for n in fx if all(_holds(fixed[n], r) for r in need)), None)
        out |= {n for n in fx if fixed[n] != keep}
    return out


def requantise_fixed_outputs(g: Graph, ranges: dict[str, Range]) -> tuple[Graph, dict[str, str]]:
    """The float graph with a QUANTIZE after each fixed-range output that would clip its group
    (see `fixed_outputs_to_requantise`); the group's ops read the requantised copy, other
    consumers (and graph outputs) the fixed-range tensor. Also returns {copy: original}: the
    copy's float values and calibrated range are the original's."""
    split = fixed_outputs_to_requantise(g, ranges)
    if not split:
        return g, {}
    copies = {name: f"{name}/requantised" for name in split}
    tensors = dict(g.tensors)
    nodes: list[Node] = []
    for node in g.nodes:
        if node.op in SAME_AS_INPUT:
            grouped = grouped_inputs(node)
            node = node.with_(inputs=tuple(copies.get(t, t) if i < len(grouped) else t
                                           for i, t in enumerate(node.inputs)))
        nodes.append(node)
        out = node.outputs[0]
        if out in copies:
            tensors[copies[out]] = replace(tensors[out], name=copies[out])
            nodes.append(Node(Op.QUANTIZE, f"{node.name}/requantise", (out,), (copies[out],), QuantizeAttrs(),
                              source=node.source))
    return g.with_nodes(nodes, tensors), {copy: name for name, copy in copies.items()}
