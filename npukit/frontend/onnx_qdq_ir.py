"""The quantisation read off a QDQ / QOperator ONNX model, attached to the IR graph the float
frontend built from the stripped model.

- Activations take the scale and zero point of the QuantizeLinear on their ONNX tensor; the
  layout copies the frontend adds (NHWC transposes, reshapes) take those of their source.
- A conv / fully-connected output the model leaves unquantised and feeds only to Relu / Clip
  (quantize_static's fused pattern) takes the clamp as its fused activation.
- Weights are the model's own int8 values (recovered exactly from the dequantised constant
  in IR layout: OHWI, depthwise [1, kh, kw, C], FC [out, in]) with its per-channel scales;
  the bias is the model's int32 when its scale is input scale x weight scale, else it is
  requantised to that scale, as npukit's integer kernels take it.
- Operators whose int8 kernels need the output quantisation of their input (pools, concat,
  data movement) get a requantising QUANTIZE in front of an input quantised differently.
- A model that leaves some activations in float (quantize_static with only some operator
  types) is imported as the float model it annotates, with a PartlyQuantisedWarning: each
  quantised activation clipped to the range its codes stand for (a zero point at the
  bottom of the range is the only ReLU quantize_static leaves), then calibrated and
  quantised by npukit as any float model.
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, Graph, Node, Op, QParams, QuantizeAttrs, Tensor
from ..opt.passes import clean_layout, eliminate_dead_nodes, fold_pads, fold_transpose_into_fc
from ..opt.patterns import fuse_hard_swish
from ..opt.rewrite import Index, const
from ..quant.groups import FIXED_OUTPUT, SAME_AS_INPUT
from .onnx_qdq import ConstQ, QdqInfo

class PartlyQuantisedWarning(UserWarning):
    """A QDQ model with float activations left between its quantised ones."""


_MOVES = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD}
_FUSES_ACT = (Op.CONV2D, Op.FULLY_CONNECTED, Op.ADD, Op.SUB, Op.MUL, Op.MAX_POOL, Op.AVG_POOL)


def _layout_passes(g: Graph) -> Graph:
    """Layout clean-up, pads into convs, flatten transposes into FC weights (all exact), and
    x * HardSigmoid(x) into HARD_SWISH (one table instead of two int8 steps)."""
    for run in (clean_layout, fold_pads, fuse_hard_swish, fold_transpose_into_fc, clean_layout,
                eliminate_dead_nodes):
        g = run(g)
    return g


def _fuse_unquantised_clamps(g: Graph, quant: dict[str, QParams]) -> Graph:
    idx = Index.of(g)
    drop, nodes = set(), []
    for node in g.nodes:
        if node.name in drop:
            continue
        out = node.outputs[0]
        users = idx.consumers.get(out, [])
        if (node.op in _FUSES_ACT and out not in quant and out not in g.outputs and len(users) == 1
                and users[0].op is Op.CLAMP and users[0].inputs[0] == out and node.attrs.act is None):
            clamp = users[0]
            node = node.with_(outputs=clamp.outputs, attrs=replace(node.attrs, act=clamp.attrs),
                              source=node.source + clamp.source)
            drop.add(clamp.name)
        nodes.append(node)
    return g.with_nodes(nodes)


def _propagate(g: Graph, quant: dict[str, QParams]) -> None:
    """Layout copies take their source's quantisation (and a source its only copy's)."""
    changed = True
    while changed:
        changed = False
        for node in g.nodes:
            if node.op not in _MOVES:
                continue
            x, y = node.inputs[0], node.outputs[0]
            if x in quant and y not in quant:
                quant[y], changed = quant[x], True
            elif y in quant and x not in quant and not g.tensors[x].is_const and len(g.consumers(x)) == 1:
                quant[x], changed = quant[y], True


def _derive(g: Graph, quant: dict[str, QParams]) -> None:
    """Quantisation for the inner tensors of operators the frontend decomposes (HardSigmoid:
    MUL, ADD, CLAMP): a multiply by a positive scalar rescales exactly; a tensor read only by
    an element-wise op takes that op's output quantisation."""
    idx = Index.of(g)
    for node in g.nodes:
        out = node.outputs[0]
        c = const(g, node.inputs[1]) if node.op is Op.MUL and len(node.inputs) == 2 else None
        x = quant.get(node.inputs[0])
        if out not in quant and c is not None and c.size == 1 and float(c.ravel()[0]) > 0 and x is not None:
            quant[out] = QParams.per_tensor(float(np.float32(x.s * float(c.ravel()[0]))), x.zp)
    for node in reversed(g.nodes):
        out = node.outputs[0]
        users = idx.consumers.get(out, [])
        if (out not in quant and not g.tensors[out].is_const and out not in g.outputs and len(users) == 1
                and users[0].op in (Op.CLAMP, Op.ADD, Op.SUB) and users[0].outputs[0] in quant):
            quant[out] = quant[users[0].outputs[0]]


def _find(constants: dict[str, ConstQ], ir_name: str) -> ConstQ | None:
    """The integer source of an IR constant (the frontend may suffix the ONNX name)."""
    hits = [k for k in constants if ir_name == k or ir_name.startswith(k + "_")]
    return constants[max(hits, key=len)] if hits else None


def _weights(g: Graph, node: Node, info: QdqInfo, quant: dict[str, QParams], tensors: dict) -> None:
    w = g.tensors[node.inputs[1]]
    cq = _find(info.constants, w.name)
    if cq is None:
        return                 # float weights: npukit quantises them (and the bias) itself
    axis = 3 if (node.op is Op.CONV2D and node.attrs.depthwise) else 0
    k = w.shape[axis]
    scales = np.asarray(cq.scale, np.float64).ravel()
    if scales.size not in (1, k):
        raise UnsupportedOpError(f"{node.name}: weight {w.name!r} has {scales.size} scales for {k} output channels")
    scales = np.broadcast_to(scales, (k,)).astype(np.float32).astype(np.float64)
    shape = [1] * w.const_data.ndim
    shape[axis] = k
    exact = w.const_data.astype(np.float64) / scales.reshape(shape)
    q = np.rint(exact)
    if np.max(np.abs(q - exact), initial=0.0) > 1e-3:
        raise UnsupportedOpError(f"{node.name}: weight {w.name!r} is not quantised per output channel")
    if q.min(initial=0) < -128 or q.max(initial=0) > 127:
        raise UnsupportedOpError(f"{node.name}: weight {w.name!r} does not fit int8 with zero point 0 "
                                 f"(asymmetric weights are not supported)")
    wq = QParams(tuple(map(float, scales)), (0,) * k, axis)
    tensors[w.name] = Tensor(w.name, w.shape, DType.I8, q.astype(np.int8), wq)
    x = quant[node.inputs[0]]
    bscale = np.float64(np.float32(x.s)) * scales
    if len(node.inputs) > 2:
        b = g.tensors[node.inputs[2]]
        bq = _find(info.constants, b.name)
        if bq is not None and bq.values.shape == (k,) and np.allclose(
                np.broadcast_to(np.asarray(bq.scale, np.float64).ravel(), (k,)), bscale, rtol=1e-6, atol=0):
            ints = bq.values.astype(np.int64) - np.asarray(bq.zero_point, np.int64)
        else:
            ints = np.rint(b.const_data.astype(np.float64) / bscale)
        ints = np.clip(ints, -(2 ** 31), 2 ** 31 - 1).astype(np.int32)
        tensors[b.name] = Tensor(b.name, (k,), DType.I32, ints, QParams(tuple(map(float, bscale)), (0,) * k, 0))


def _requantise_inputs(g: Graph) -> Graph:
    """A QUANTIZE in front of each input of a same-quantisation operator that differs."""
    nodes, tensors = [], dict(g.tensors)
    for node in g.nodes:
        if node.op in SAME_AS_INPUT:
            out_q = tensors[node.outputs[0]].quant
            ins = list(node.inputs)
            for i, name in enumerate(ins if node.op is Op.CONCAT else ins[:1]):
                t = tensors[name]
                if t.is_const or t.quant == out_q:
                    continue
                new = f"{name}/requantised_{node.name}"
                tensors[new] = Tensor(new, t.shape, DType.I8, None, out_q)
                nodes.append(Node(Op.QUANTIZE, f"{node.name}/requantise{i}", (name,), (new,), QuantizeAttrs(),
                                  source=node.source))
                ins[i] = new
            node = node.with_(inputs=tuple(ins))
        nodes.append(node)
    return g.with_nodes(nodes, tensors)


def _fixed_softmax_output(g: Graph) -> Graph:
    """npukit's int8 SOFTMAX writes scale 1/256, zero point -128; another output quantisation
    (onnxruntime picks 1/255) is reached by a requantising QUANTIZE after it."""
    fixed = QParams.per_tensor(*FIXED_OUTPUT[Op.SOFTMAX])
    nodes, tensors = [], dict(g.tensors)
    for node in g.nodes:
        out = tensors[node.outputs[0]]
        if node.op is Op.SOFTMAX and out.quant != fixed:
            mid = f"{out.name}/softmax"
            tensors[mid] = Tensor(mid, out.shape, DType.I8, None, fixed)
            nodes += [node.with_(outputs=(mid,)),
                      Node(Op.QUANTIZE, f"{node.name}/requantise", (mid,), (out.name,), QuantizeAttrs(),
                           source=node.source)]
        else:
            nodes.append(node)
    return g.with_nodes(nodes, tensors)


def attach_qdq(g: Graph, info: QdqInfo) -> Graph | None:
    """The pre-quantised IR graph (int8 activations, float I/O) of a stripped ONNX model; None
    (with a PartlyQuantisedWarning) when it leaves activations in float."""
    if not info.activations:          # weights-only quantisation: a float model
        return g
    g = _layout_passes(g)
    quant = {n: q for n, q in info.activations.items() if n in g.tensors}
    g = _fuse_unquantised_clamps(g, quant)
    _propagate(g, quant)
    _derive(g, quant)
    tensors = dict(g.tensors)
    left = [n for n, t in g.tensors.items() if not t.is_const and t.dtype is DType.F32 and n not in quant]
    if left:            # partly quantised (e.g. only its convs): the float model it annotates
        prod = g.producer(left[0])
        what = f"output of {', '.join(prod.source) or prod.name}" if prod else "graph input"
        warnings.warn(f"this quantised ONNX model leaves {len(left)} activation(s) in float (first: "
                      f"{left[0]!r}, {what}): it is compiled as the float model it annotates, calibrated by "
                      f"npukit (pass --calib), its ranges kept as clips, not its scales", PartlyQuantisedWarning,
                      stacklevel=2)
        return None
    for name, t in g.tensors.items():
        if not t.is_const and t.dtype is DType.F32:
            tensors[name] = replace(t, dtype=DType.I8, quant=quant[name])
    for node in g.nodes:
        if node.op in (Op.CONV2D, Op.FULLY_CONNECTED):
            _weights(g, node, info, quant, tensors)
    float_io = frozenset(n for n in g.inputs + g.outputs if g.tensors[n].dtype is DType.F32)
    g = replace(g.with_nodes(g.nodes, tensors), float_io=float_io)
    return _fixed_softmax_output(_requantise_inputs(g))
