"""An LSTM's hidden and cell states kept in their own quantisation groups.

TFLite's integer LSTM needs its hidden state (in and out, with the output sequence) in one
int8 quantisation and its cell state (in and out) int16 at a power-of-two scale. When the
graph ties the two together (silero's `state` tensor: both are slices of it, and both go back
into one concat), the shared-scale groups would merge them; then the states are read and
written through QUANTIZE copies (int8 -> int8 / int16 and back), and every other op keeps
the original tensors. Copies have their originals' float values and calibrated ranges.

The tensors that tied the states (the state input, its slices, the concat and the state
output) hold cell values, so one int8 scale over them would leave the hidden state a few
codes (silero's cell state reaches 30x the hidden state's range): they are int16 when only
data movement and the copies touch them (`isolate_lstm_states`'s third result), as the cell
state inside the LSTM is.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, Node, Op, QuantizeAttrs
from .groups import shared_groups

# ops that carry an int16 tensor unchanged on the NPU (data movement) or requantise it
STATE_MOVES = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.CONCAT, Op.QUANTIZE}
FANOUT_MOVES = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE}


def isolate_lstm_states(g: Graph) -> tuple[Graph, dict[str, str], frozenset[str]]:
    """The graph with QUANTIZE copies around each LSTM whose hidden and cell groups would
    merge, {copy: original}, and the tensors that tied them, to be int16. Only the readers
    of a state output that lead to the tie read its copy (silero's decoder reads the hidden
    state at the LSTM's own scale, its concat into `stateN` the copy)."""
    groups = shared_groups(g)
    tied = [n for n in g.nodes if n.op is Op.LSTM and len(n.outputs) == 3
            and groups.find(n.outputs[0]) == groups.find(n.outputs[2])]
    if not tied:
        return g, {}, frozenset()
    copies: dict[str, str] = {}
    for lstm in tied:
        g = _split_fanout(g, lstm, copies)
    tensors, nodes = dict(g.tensors), []
    ends: list[str] = []                  # the tensors the copies read from or write to
    ties = {n.name: _tying_ends(g, n) for n in tied}
    reads: dict[tuple[str, str], str] = {}        # (reader, LSTM state output) -> the copy it reads

    def copy(src: str, dst: str, dtype: str, name: str, source) -> Node:
        tensors[dst] = replace(tensors[src], name=dst)
        copies[dst] = src
        return Node(Op.QUANTIZE, name, (src,), (dst,), QuantizeAttrs(dtype), source=source)

    for node in g.nodes:
        ins = [reads.get((node.name, t), t) for t in node.inputs]
        if node.name not in ties:
            nodes.append(node.with_(inputs=tuple(ins)))
            continue
        tie = ties[node.name]
        for k, dtype in ((4, "int8"), (5, "int16")):
            if ins[k] in tie:
                ends.append(ins[k])
                nodes.append(copy(ins[k], f"{ins[k]}/{node.name}_state", dtype, f"{node.name}/state_in{k}",
                                  node.source))
                ins[k] = f"{ins[k]}/{node.name}_state"
        nodes.append(node.with_(inputs=tuple(ins)))
        for k, out in enumerate(node.outputs[1:], 1):
            users = [u.name for u in g.consumers(out) if (u.name, out) in tie]
            if users:
                ends.append(f"{out}/out")
                nodes.append(copy(out, f"{out}/out", "int8", f"{node.name}/state_out{k}", node.source))
                reads |= {(u, out): f"{out}/out" for u in users}
    wide = _state_tensors(g.with_nodes(nodes, tensors), ends)
    nodes = [n.with_(attrs=QuantizeAttrs("int16")) if n.op is Op.QUANTIZE and n.outputs[0] in wide else n
             for n in nodes]
    return g.with_nodes(nodes, tensors), copies, wide


def _split_fanout(g: Graph, lstm: Node, copies: dict[str, str]) -> Graph:
    """`g` with each reshape / transpose / slice of `lstm`'s state outputs (and of those, on)
    that has several readers repeated once per reader, so each reader of a state output leads
    to one place (silero's Y_h goes both into the state concat and on to the decoder). Adds
    {repeat's output: original} to `copies`."""
    nodes, tensors = list(g.nodes), dict(g.tensors)
    reach, i = set(lstm.outputs[1:]), 0
    while i < len(nodes):
        node = nodes[i]
        out = node.outputs[0] if node.outputs else ""
        if node.op not in FANOUT_MOVES or node.inputs[0] not in reach:
            i += 1
            continue
        users = [j for j in range(i + 1, len(nodes)) if out in nodes[j].inputs]
        if len(users) < 2 or out in g.outputs:
            reach.add(out)
            i += 1
            continue
        clones = []
        for k, j in enumerate(users):
            name = f"{out}/{k}"
            tensors[name] = replace(tensors[out], name=name)
            copies[name] = out
            clones.append(node.with_(name=f"{node.name}/{k}", outputs=(name,)))
            nodes[j] = nodes[j].with_(inputs=tuple(name if t == out else t for t in nodes[j].inputs))
        nodes[i:i + 1] = clones
    return g.with_nodes(nodes, tensors)


def _tying_ends(g: Graph, lstm: Node) -> set:
    """The state inputs of `lstm` (tensor names) and the readers of its state outputs
    ((reader, output) pairs) that share a quantisation group with both its hidden and its
    cell state when the LSTM itself ties nothing (each reader of an output reads its own
    tensor): the ones to route through copies."""
    tensors, nodes = dict(g.tensors), []
    side: dict[str, tuple[int, object]] = {}      # trial tensor -> (state: 0 hidden, 1 cell; its end)
    for k in (4, 5):
        if not g.tensors[lstm.inputs[k]].is_const:
            side[lstm.inputs[k]] = (k - 4, lstm.inputs[k])
    for node in g.nodes:
        if node.name == lstm.name:
            continue
        ins = list(node.inputs)
        for i, t in enumerate(ins):
            if t in lstm.outputs[1:]:
                ins[i] = f"{t}/read_by/{node.name}"
                tensors[ins[i]] = replace(g.tensors[t], name=ins[i])
                side[ins[i]] = (lstm.outputs.index(t) - 1, (node.name, t))
        nodes.append(node.with_(inputs=tuple(ins)))
    groups = shared_groups(g.with_nodes(nodes, tensors))
    roots = [{groups.find(t) for t, (s, _) in side.items() if s == state} for state in (0, 1)]
    return {end for t, (_, end) in side.items() if groups.find(t) in roots[0] & roots[1]}


def _state_tensors(g: Graph, ends: list[str]) -> frozenset[str]:
    """The members of the groups of `ends` whose every producer and consumer moves data or
    requantises (what runs on int16 tensors as on int8 ones)."""
    groups = shared_groups(g)
    roots = {groups.find(t) for t in ends}
    wide: set[str] = set()
    for root in roots:
        members = {n for n, t in g.tensors.items() if not t.is_const and groups.find(n) == root}
        touching = [n for m in members for n in (*g.consumers(m), *filter(None, [g.producer(m)]))]
        if all(n.op in STATE_MOVES for n in touching):
            wide |= members
    return frozenset(wide)
