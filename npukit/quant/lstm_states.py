"""An LSTM's hidden and cell states kept in their own quantisation groups.

TFLite's integer LSTM needs its hidden state (in and out, with the output sequence) in one
int8 quantisation and its cell state (in and out) int16 at a power-of-two scale. When the
graph ties the two together (silero's `state` tensor: both are slices of it, and both go back
into one concat), the shared-scale groups would merge them; then the states are read and
written through QUANTIZE copies (int8 -> int8 / int16 and back), and every other op keeps
the original tensors. Copies have their originals' float values and calibrated ranges.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, Node, Op, QuantizeAttrs
from .groups import shared_groups


def isolate_lstm_states(g: Graph) -> tuple[Graph, dict[str, str]]:
    """The graph with QUANTIZE copies around each LSTM whose hidden and cell groups would
    merge, and {copy: original}."""
    groups = shared_groups(g)
    tied = {n.name for n in g.nodes if n.op is Op.LSTM and len(n.outputs) == 3
            and groups.find(n.outputs[0]) == groups.find(n.outputs[2])}
    if not tied:
        return g, {}
    tensors, nodes, copies = dict(g.tensors), [], {}
    renamed: dict[str, str] = {}          # an LSTM output -> the copy its other consumers read

    def copy(src: str, dst: str, dtype: str, name: str, source) -> Node:
        tensors[dst] = replace(tensors[src], name=dst)
        copies[dst] = src
        return Node(Op.QUANTIZE, name, (src,), (dst,), QuantizeAttrs(dtype), source=source)

    for node in g.nodes:
        if node.op is not Op.LSTM or node.name not in tied:
            nodes.append(node.with_(inputs=tuple(renamed.get(t, t) for t in node.inputs)))
            continue
        ins = list(node.inputs)
        for k, dtype in ((4, "int8"), (5, "int16")):
            if not g.tensors[ins[k]].is_const:
                src = renamed.get(ins[k], ins[k])
                nodes.append(copy(src, f"{src}/{node.name}_state", dtype, f"{node.name}/state_in{k}", node.source))
                ins[k] = f"{src}/{node.name}_state"
        nodes.append(node.with_(inputs=tuple(ins)))
        for k, out in enumerate(node.outputs[1:], 1):
            renamed[out] = f"{out}/out"
            nodes.append(copy(out, f"{out}/out", "int8", f"{node.name}/state_out{k}", node.source))
    return g.with_nodes(nodes, tensors), copies
