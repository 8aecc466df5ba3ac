"""The verifier run after every pass: structure, order, shapes and quantisation invariants."""
from __future__ import annotations

from ..errors import ModelError
from .graph import DType, Graph, Op
from .shapes import infer

_WEIGHTED = (Op.CONV2D, Op.FULLY_CONNECTED)


def verify(g: Graph, stage: str = "") -> Graph:
    """Raise ModelError naming the first broken invariant; return the graph unchanged."""
    where = f" after {stage}" if stage else ""
    defined = set(g.inputs) | set(g.variables) | {n for n, t in g.tensors.items() if t.is_const}
    for name in g.variables:
        if name not in g.tensors:
            raise ModelError(f"variable {name!r} has no tensor{where}")
    assigned: set[str] = set()
    for name in g.inputs:
        if name not in g.tensors:
            raise ModelError(f"graph input {name!r} has no tensor{where}")
    names = set()
    quantised = g.is_quantised      # once: it looks at every tensor
    for node in g.nodes:
        if node.name in names:
            raise ModelError(f"duplicate node name {node.name!r}{where}")
        names.add(node.name)
        for t in node.inputs:
            if t not in defined:
                raise ModelError(f"{node.name}: input {t!r} is used before it is defined{where}")
        for t in node.outputs:
            if t in g.variables and t not in assigned:
                assigned.add(t)     # the end-of-run copy into a variable
                continue
            if t in defined:
                raise ModelError(f"{node.name}: output {t!r} is defined twice{where}")
            if t not in g.tensors:
                raise ModelError(f"{node.name}: output {t!r} has no tensor{where}")
            defined.add(t)
        want = infer(node, [g.tensors[t].shape for t in node.inputs])
        got = [g.tensors[t].shape for t in node.outputs]
        if [tuple(s) for s in want] != got:
            raise ModelError(f"{node.name} ({node.op.value}): output shape {got} != inferred {want}{where}")
        if node.op in _WEIGHTED and node.params is None and quantised:
            raise ModelError(f"{node.name}: quantised graph node without integer params{where}")
        if node.op in _WEIGHTED and not g.tensors[node.inputs[1]].is_const:
            raise ModelError(f"{node.name}: weights must be constant{where}")
    for t in g.outputs:
        if t not in defined:
            raise ModelError(f"graph output {t!r} is never produced{where}")
    for tensor in g.tensors.values():
        if tensor.quant is not None and tensor.dtype is DType.F32:
            raise ModelError(f"tensor {tensor.name!r} is float but carries quantisation{where}")
    return g
