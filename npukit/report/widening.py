"""The cycle cost of widening activations to int16 (precision auto / int16), from the timing model."""
from __future__ import annotations

from ..cost.timing import layer_cycles, simulate
from ..ir.graph import Graph
from ..isa.program import Program


def widening_cycles(qg: Graph, program: Program, int8: Program | None, arch, wide) -> dict:
    """The cycle cost of widening, from the timing model: the whole program's cycles int8 and
    mixed, and per layer reading or writing a `wide` tensor both."""
    if int8 is None:
        return {"layers": [], "int8_cycles": None, "cycles": None}
    t8, t = simulate(int8, arch), simulate(program, arch)
    base = dict(zip((la.name for la in int8.layers), map(int, layer_cycles(int8, t8))))
    nodes = {n.name: n for n in qg.nodes}
    rows = []
    for la, c in zip(program.layers, map(int, layer_cycles(program, t))):
        node = nodes.get(la.name)
        sides = [side for side, ts in (("in", node.inputs), ("out", node.outputs))
                 if any(x in wide for x in ts)] if node else []
        if sides:
            rows.append({"layer": la.name, "op": la.op, "int16": "+".join(sides),
                         "int8_cycles": base.get(la.name, 0), "cycles": c, "extra_cycles": c - base.get(la.name, 0)})
    return {"layers": rows, "int8_cycles": int(t8.total_cycles), "cycles": int(t.total_cycles)}
