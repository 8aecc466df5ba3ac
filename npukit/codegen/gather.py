"""Reductions over non-adjacent axes become a TRANSPOSE (a DMA) that gathers the reduced axes
at the end, then the reduction over adjacent axes the VPU runs (and, with keepdims, a free
RESHAPE back to the output's shape). Exact: a transpose keeps every code."""
from __future__ import annotations

from ..ir.graph import Graph, MeanAttrs, Node, Op, ReshapeAttrs, Tensor, TransposeAttrs
from ..ir.shapes import REDUCTIONS, gather_reduced_axes


def gather_reduced_axes_graph(g: Graph) -> Graph:
    nodes: list[Node] = []
    tensors = dict(g.tensors)
    for node in g.nodes:
        x = g.tensors[node.inputs[0]]
        perm = gather_reduced_axes(len(x.shape), node.attrs.axes) if node.op in REDUCTIONS else None
        if perm is None:
            nodes.append(node)
            continue
        rank, k = len(x.shape), len(set(a % len(x.shape) for a in node.attrs.axes))
        gathered = Tensor(f"{node.name}/gathered", tuple(x.shape[p] for p in perm), x.dtype, None, x.quant)
        tensors[gathered.name] = gathered
        nodes.append(Node(Op.TRANSPOSE, f"{node.name}/gather", (x.name,), (gathered.name,), TransposeAttrs(perm),
                          source=node.source))
        axes = tuple(range(rank - k, rank))
        out = g.tensors[node.outputs[0]]
        if not node.attrs.keepdims:
            nodes.append(node.with_(inputs=(gathered.name,), attrs=MeanAttrs(axes, False)))
            continue
        kept = Tensor(f"{node.name}/kept", gathered.shape[:rank - k] + (1,) * k, out.dtype, None, out.quant)
        tensors[kept.name] = kept
        nodes.append(node.with_(inputs=(gathered.name,), outputs=(kept.name,), attrs=MeanAttrs(axes, True)))
        nodes.append(Node(Op.RESHAPE, f"{node.name}/shape", (kept.name,), (out.name,), ReshapeAttrs(out.shape),
                          source=node.source))
    return g.with_nodes(nodes, tensors) if len(nodes) != len(g.nodes) else g
