"""Layout changes at the graph boundary run on the host with the (de)quantisation.

An ONNX model takes NCHW while the NPU computes NHWC, so the frontend puts a TRANSPOSE right
after each 4-D input (and before each 4-D output). The host that quantises a float input
element by element writes it in the order the NPU wants at no extra pass, as a device driver
would; so a graph input whose only consumer is a TRANSPOSE becomes an NPU input already in
the transposed layout, and the program's I/O table records the permutation. An input viewed
with unit dims added before its TRANSPOSE (an ONNX 1-D conv's [N, C, L] -> [N, C, 1, L] ->
NHWC) is the same transpose on the input's own rank, then a RESHAPE (free).
"""
from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, Op, ReshapeAttrs


def absorb_boundary_transposes(g: Graph) -> tuple[Graph, dict[str, tuple[str, tuple[int, ...]]]]:
    """(graph without boundary transposes, {user tensor: (NPU tensor, perm)}).

    For an input, NPU data = user data transposed by perm; for an output, user data = NPU
    data transposed by perm.
    """
    g = _transpose_before_unit_reshape(g)
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


def _transpose_before_unit_reshape(g: Graph) -> Graph:
    """input -> RESHAPE (only adding unit dims) -> TRANSPOSE  =>  input -> TRANSPOSE -> RESHAPE."""
    for node in g.nodes:
        if node.op is not Op.TRANSPOSE:
            continue
        view = next((n for n in g.nodes if node.inputs[0] in n.outputs), None)
        if view is None or view.op is not Op.RESHAPE or view.inputs[0] not in g.inputs:
            continue
        src, mid, dst = view.inputs[0], view.outputs[0], node.outputs[0]
        if len(g.consumers(src)) != 1 or len(g.consumers(mid)) != 1 or mid in g.outputs or dst in g.outputs:
            continue
        s_shape, r_shape = g.tensors[src].shape, g.tensors[mid].shape
        s_axes = [i for i, d in enumerate(s_shape) if d != 1]
        r_axes = [j for j, d in enumerate(r_shape) if d != 1]
        if [s_shape[i] for i in s_axes] != [r_shape[j] for j in r_axes]:
            continue
        to_src = dict(zip(r_axes, s_axes))
        perm = tuple([i for i, d in enumerate(s_shape) if d == 1]
                     + [to_src[p] for p in node.attrs.perm if p in to_src])
        moved_name = f"{src}_t"
        while moved_name in g.tensors:
            moved_name += "_"
        t = g.tensors[src]
        tensors = dict(g.tensors)
        tensors[moved_name] = replace(t, name=moved_name, shape=tuple(s_shape[p] for p in perm))
        first = node.with_(inputs=(src,), outputs=(moved_name,), attrs=replace(node.attrs, perm=perm))
        then = view.with_(inputs=(moved_name,), outputs=(dst,), attrs=ReshapeAttrs(g.tensors[dst].shape))
        nodes = []
        for n in g.nodes:
            if n is view:
                continue
            nodes += [first, then] if n is node else [n]
        return _transpose_before_unit_reshape(g.with_nodes(nodes, tensors))
    return g
