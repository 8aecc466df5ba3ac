"""Layout changes at the graph boundary run on the host with the (de)quantisation.

An ONNX model takes NCHW while the NPU computes NHWC, so the frontend puts a TRANSPOSE right
after each 4-D input (and before each 4-D output). The host that quantises a float input
element by element writes it in the order the NPU wants at no extra pass, as a device driver
would; so a graph input whose only consumer is a TRANSPOSE becomes an NPU input already in
the transposed layout, and the program's I/O table records the permutation.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, Op


def absorb_boundary_transposes(g: Graph) -> tuple[Graph, dict[str, tuple[str, tuple[int, ...]]]]:
    """(graph without boundary transposes, {user tensor: (NPU tensor, perm)}).

    For an input, NPU data = user data transposed by perm; for an output, user data = NPU
    data transposed by perm.
    """
    moved: dict[str, tuple[str, tuple[int, ...]]] = {}
    drop = set()
    inputs, outputs = list(g.inputs), list(g.outputs)
    for node in g.nodes:
        if node.op is not Op.TRANSPOSE:
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if src in g.inputs and len(g.consumers(src)) == 1 and dst not in g.outputs:
            moved[src] = (dst, node.attrs.perm)
            inputs[inputs.index(src)] = dst
            drop.add(node.name)
        elif (dst in g.outputs and src not in g.inputs and src not in g.outputs
              and len(g.consumers(src)) == 1 and g.outputs.count(dst) == 1):
            moved[dst] = (src, node.attrs.perm)
            outputs[outputs.index(dst)] = src
            drop.add(node.name)
    if not drop:
        return g, {}
    nodes = [n for n in g.nodes if n.name not in drop]
    return replace(g.with_nodes(nodes), inputs=tuple(inputs), outputs=tuple(outputs)), moved
