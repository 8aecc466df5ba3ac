"""Where int8 loses too much: per-layer quantisation noise, and the tensors to widen to int16.

`layer_noise` measures each layer alone: its float inputs are quantised at their own
scales, the integer kernel runs, and the result is compared with the layer's float output
(so an early bad layer does not make every later one look bad, as in the cumulative
report). `choose_int16` widens the residual sums feeding a LAYER_NORM whose noise is
below the threshold (transformer residual streams carry a few large channels that leave
the rest of an int8 scale with too few steps), and the outputs of other noisy layers
whose consumers have an int16 input path (TFLite's 16x8 semantics; a 16x8 VPU op reading
int16 writes int16, so its output widens too). `magnitude_int16`
widens an STFT front (audio -> pad -> basis conv or fully connected -> magnitude) whatever
the noise: int8 audio loses about 25 dB there. `widen_mxu_boundaries` gives a conv, depthwise or fully
connected layer that touches a wide tensor the 16x8 form (int16 in and out) with a
requantising QUANTIZE at each int8 / int16 boundary.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir.graph import DType, Graph, Node, Op, QuantizeAttrs
from ..kernels import kernels_vpu as kv
from ..kernels.kernels_vpu_unary import INT16_FUNCTIONS


def layer_noise(qg: Graph, float_values: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Node name -> SQNR (dB) of that layer alone, over the given float activations."""
    from ..kernels.qexec import run_qnode   # (the integer reference executor: only for the int16 choice)
    sig: dict[str, float] = {}
    noise: dict[str, float] = {}
    for fv in float_values:
        for node in qg.nodes:
            ins = []
            for name in node.inputs:
                t = qg.tensors[name]
                if t.data is not None:
                    ins.append(t.data)
                elif t.quant is None:
                    ins.append(np.asarray(fv[name]).astype(t.dtype.np))
                else:
                    ins.append(kv.quantize(fv[name], t.quant.s, t.quant.zp, t.dtype.np))
            out = qg.tensors[node.outputs[0]]
            got = run_qnode(node, ins, [qg.tensors[n].quant for n in node.inputs])
            f = np.asarray(fv[node.outputs[0]], np.float64)
            d = (got.astype(np.float64) - out.quant.zp) * out.quant.s if out.quant else got
            sig[node.name] = sig.get(node.name, 0.0) + float(np.sum(f * f))
            noise[node.name] = noise.get(node.name, 0.0) + float(np.sum((f - d) ** 2))
    return {n: float("inf") if noise[n] == 0 else 10 * np.log10(max(sig[n], 1e-30) / noise[n]) for n in sig}


# layers with an int16 output path, and layers that read an int16 input (16x8 semantics)
WIDE_PRODUCERS = {Op.FULLY_CONNECTED, Op.CONV2D, Op.ADD, Op.SUB, Op.MUL, Op.LAYER_NORM, Op.GELU}
# TFLite's 16x8 VPU ops read int16 only to write int16 (LOGISTIC / TANH / SOFTMAX at scale 1/32768;
# HARD_SWISH by its int16 table; CLAMP, 16x8 RELU / RELU6, by requantise-and-clamp; LEAKY_RELU as a PRELU)
THROUGH_16 = {Op.MUL, Op.PRELU, Op.CLAMP, Op.LEAKY_RELU, Op.SIGMOID, Op.TANH, Op.HARD_SWISH, Op.SOFTMAX, Op.MEAN,
              Op.MAX_POOL, Op.AVG_POOL, Op.RESIZE}
WIDE_CONSUMERS = {Op.FULLY_CONNECTED, Op.CONV2D, Op.ADD, Op.SUB, Op.LAYER_NORM, Op.GELU} | THROUGH_16


def _through16(node: Node) -> bool:
    """A 16x8 op that reads int16 to write int16 (UNARY: EXP / LOG tables, ABS)."""
    return node.op in THROUGH_16 or node.op is Op.UNARY and node.attrs.fn in INT16_FUNCTIONS


def _widened(qg: Graph, name: str) -> set[str] | None:
    """`name` and the outputs of the 16x8 ops it feeds, followed on (those write int16 too);
    None if a tensor of them is a graph output or has a consumer that cannot read int16."""
    out, todo = set(), [name]
    while todo:
        t = todo.pop()
        users = qg.consumers(t)
        if t in out:
            continue
        if t in qg.outputs or not users or any(u.op not in WIDE_CONSUMERS and not _through16(u) for u in users):
            return None
        out.add(t)
        todo += [u.outputs[0] for u in users if _through16(u)]
    return out


def choose_int16(qg: Graph, noise_db: dict[str, float], threshold_db: float) -> frozenset[str]:
    """Tensors to widen to int16: residual sums (ADD/SUB of int8 operands) feeding a
    LAYER_NORM noisier than `threshold_db`, and the output of any layer noisier than that
    whose consumers all read int16 (fully connected, conv, GELU, ADD/SUB, layer norm, and the 16x8
    ops MUL, PRELU, the ReLU forms, LEAKY_RELU, LOGISTIC, TANH, HARD_SWISH, SOFTMAX, MEAN, pooling,
    resize, the EXP / LOG tables and ABS, whose outputs widen with it)."""
    wide: set[str] = set()
    for node in qg.nodes:
        if noise_db.get(node.name, np.inf) >= threshold_db:
            continue
        if node.op is Op.LAYER_NORM:
            src = qg.producer(node.inputs[0])
            if src is not None and src.op in (Op.ADD, Op.SUB) and \
                    all(qg.tensors[t].dtype is DType.I8 for t in src.inputs if not qg.tensors[t].is_const):
                wide.add(node.inputs[0])
        if node.op in WIDE_PRODUCERS or _through16(node) and node.inputs[0] in wide:
            wide |= _widened(qg, node.outputs[0]) or set()
    return frozenset(wide)


MOVES = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD}


def _back(g: Graph, name: str) -> tuple[list[str], str]:
    """Tensors from `name` back through data movement ops, and the first tensor that is not
    produced by one (the last of the list)."""
    out = [name]
    node = g.producer(name)
    while node is not None and node.op in MOVES:
        name = node.inputs[0]
        out.append(name)
        node = g.producer(name)
    return out, name


def magnitude_int16(g: Graph) -> frozenset[str]:
    """The int16 tensors of each STFT front: MAGNITUDE's input back (through reshape, transpose,
    slice, pad) to a basis CONV2D or FULLY_CONNECTED, and, when the front starts at a graph
    input, that layer's input back to it (16x8: int16 in and out); else the basis layer reads
    its int8 input through a widening QUANTIZE (widen_mxu_boundaries)."""
    wide: set[str] = set()
    for node in g.nodes:
        if node.op is not Op.MAGNITUDE:
            continue
        mid, src = _back(g, node.inputs[0])
        basis = g.producer(src)
        if basis is None or not (basis.op is Op.FULLY_CONNECTED or (
                basis.op is Op.CONV2D and not basis.attrs.depthwise and basis.attrs.groups == 1)):
            continue
        front, start = _back(g, basis.inputs[0])
        wide |= set(mid) | (set(front) if start in g.inputs else set())
    return frozenset(wide)


MXU_16X8 = {Op.CONV2D, Op.FULLY_CONNECTED}


def widen_mxu_boundaries(g: Graph, wide: frozenset[str]) -> tuple[Graph, frozenset[str], dict[str, str]]:
    """The float graph in which every conv / depthwise / fully connected layer whose input or
    output is in `wide` reads and writes int16 (TFLite's 16x8 form): an int8 input is widened
    by a QUANTIZE into an int16 copy, an int8 output is written as an int16 copy that a
    QUANTIZE narrows. Returns the graph, the wide set with the copies, and {copy: original}
    (a copy's float values and calibrated range are its original's)."""
    nodes: list[Node] = []
    tensors, out_wide, copies = dict(g.tensors), set(wide), {}
    widened: dict[str, str] = {}
    for node in g.nodes:
        x, out = node.inputs[0], node.outputs[0]
        if node.op not in MXU_16X8 or (x not in wide and out not in wide):
            nodes.append(node)
            continue
        if x not in wide:
            if x not in widened:
                widened[x] = copy = f"{x}/int16"
                tensors[copy], copies[copy] = replace(tensors[x], name=copy), x
                nodes.append(Node(Op.QUANTIZE, f"{node.name}/widen", (x,), (copy,), QuantizeAttrs("int16"),
                                  source=node.source))
            node = node.with_(inputs=(widened[x], *node.inputs[1:]))
        if out in wide:
            nodes.append(node)
        else:
            widened[out] = copy = f"{out}/int16"      # a later 16x8 reader takes this copy
            tensors[copy], copies[copy] = replace(tensors[out], name=copy), out
            nodes += [node.with_(outputs=(copy,)),
                      Node(Op.QUANTIZE, f"{node.name}/narrow", (copy,), (out,), QuantizeAttrs("int8"),
                           source=node.source)]
    out_wide |= set(copies)
    return g.with_nodes(nodes, tensors), frozenset(out_wide), copies
