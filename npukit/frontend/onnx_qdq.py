"""Pre-quantised ONNX models: QDQ (QuantizeLinear / DequantizeLinear pairs) and QOperator
(QLinearConv, QLinearMatMul, ...) formats, imported with their own scales and zero points.

The quantisation is read off the ONNX graph here; the model is then rewritten as the float
model it annotates (every Q -> DQ pair removed, every DequantizeLinear of a constant turned
into a float constant), imported by the ordinary float frontend, and the recorded parameters
are attached to the IR graph (onnx_qdq_ir). QOperator nodes are first expanded into their
DQ -> float op -> Q equivalent (onnx_qdq_ops), so both formats take the same path.

uint8 activations become int8 with the zero point moved by -128: the same real values on
the same grid, so nothing about the model's quantisation changes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import QParams
from .onnx_const import attributes, constant_value
from .onnx_qdq_ops import QOPERATORS, expand_qoperator

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"} | set(QOPERATORS)
_ACT_TYPES = (np.dtype(np.int8), np.dtype(np.uint8))
# ops that only move or select values: on integer tensors (QOperator format) they keep the
# quantisation of their first input
TRANSPARENT = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "MaxPool", "Identity", "Slice",
               "Split", "Gather", "Concat", "Pad", "Resize", "DepthToSpace", "SpaceToDepth", "Tile"}


@dataclass(frozen=True)
class ConstQ:
    """An integer constant behind a DequantizeLinear: values, per-axis scale and zero point."""
    values: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None


@dataclass(frozen=True)
class QdqInfo:
    activations: dict[str, QParams]     # float tensor of the stripped model -> int8 quantisation
    constants: dict[str, ConstQ]        # float constant of the stripped model -> its integer source


def is_quantised_onnx(model: onnx.ModelProto) -> bool:
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def _act_qparams(scale: np.ndarray, zp: np.ndarray, where: str) -> QParams:
    if scale.size != 1:
        raise UnsupportedOpError(f"{where}: per-axis quantisation of an activation is not supported")
    if zp.dtype not in _ACT_TYPES:
        raise UnsupportedOpError(f"{where}: {zp.dtype} activations are not supported (int8 or uint8 only)")
    shift = 128 if zp.dtype == np.uint8 else 0
    return QParams.per_tensor(float(np.float32(scale.ravel()[0])), int(zp.ravel()[0]) - shift)


def check_qparams(scale: np.ndarray, zp: np.ndarray, where: str) -> None:
    """Scales finite, positive and normal float32 numbers; an integer zero point per scale."""
    if scale.size == 0 or not np.all(np.isfinite(scale)) or not np.all(scale >= np.finfo(np.float32).tiny):
        bad = scale.ravel()[~(np.isfinite(scale.ravel()) & (scale.ravel() >= np.finfo(np.float32).tiny))]
        raise ModelError(f"{where}: quantisation scales must be finite positive normal numbers, got "
                         f"{float(bad[0]) if bad.size else 'none'}")
    if zp.dtype.kind not in "iu":
        raise ModelError(f"{where}: the zero point must be an integer tensor, not {zp.dtype}")
    if zp.size != scale.size:
        raise ModelError(f"{where}: {zp.size} zero points for {scale.size} scales")


class _Stripper:
    def __init__(self, model: onnx.ModelProto, clip: bool = False):
        self.model, self.clip = model, clip
        g = model.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.int_consts: dict[str, ConstQ] = {}           # Q of a constant: its integer result
        self.int_acts: dict[str, tuple[str, QParams]] = {}  # integer tensor -> (float tensor, params)
        self.alias: dict[str, str] = {}                   # DQ output -> float tensor it stands for
        self.activations: dict[str, QParams] = {}
        self.constants: dict[str, ConstQ] = {}
        self.new_inits: list[onnx.TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []

    def where(self, node) -> str:
        return f"ONNX node {node.name or node.output[0]!r} ({node.op_type})"

    def value(self, node, i: int, default=None) -> np.ndarray | None:
        name = node.input[i] if len(node.input) > i else ""
        if not name:
            return default
        if name not in self.consts:
            raise UnsupportedOpError(f"{self.where(node)}: input {name!r} must be a constant")
        return self.consts[name]

    def _params(self, node) -> tuple[np.ndarray, np.ndarray, int | None]:
        at = attributes(node)
        if at.get("block_size", 0):
            raise UnsupportedOpError(f"{self.where(node)}: blocked quantisation is not supported")
        scale = np.asarray(self.value(node, 1), np.float32)
        zp = self.value(node, 2)
        if zp is None:
            zp = np.zeros(scale.shape, np.dtype(helper.tensor_dtype_to_np_dtype(at["output_dtype"]))
                          if "output_dtype" in at else np.uint8)
        zp = np.asarray(zp)
        check_qparams(scale, zp, self.where(node))
        axis = int(at.get("axis", 1)) if scale.size > 1 else None
        x = self.consts.get(node.input[0])
        if axis is not None and x is not None:
            if not -x.ndim <= axis < x.ndim or x.shape[axis] != scale.size:
                raise ModelError(f"{self.where(node)}: {scale.size} scales along axis {axis} do not fit a "
                                 f"tensor of shape {list(x.shape)}")
            axis %= x.ndim
        return scale, zp, axis

    def quantize(self, node) -> None:
        x, out = node.input[0], node.output[0]
        scale, zp, axis = self._params(node)
        if x in self.consts:                       # Q of a float constant: quantise it now
            data = np.asarray(self.consts[x], np.float32)
            s, z = _broadcast(scale, data, axis), _broadcast(zp.astype(np.float64), data, axis)
            info = np.iinfo(zp.dtype)
            q = np.clip(np.rint(data / s) + z, info.min, info.max).astype(zp.dtype)
            self.int_consts[out] = ConstQ(q, scale, zp, axis)
            return
        x = self.alias.get(x, x)
        qp = _act_qparams(scale, zp, self.where(node))
        if self.clip:       # the range the codes stand for (a zero point at the bottom is a ReLU)
            info = np.iinfo(zp.dtype)
            bounds = [(float(v) - float(zp.ravel()[0])) * float(scale.ravel()[0]) for v in (info.min, info.max)]
            lo, hi, y = f"{out}/lowest", f"{out}/highest", f"{out}/range"
            self.new_inits += [numpy_helper.from_array(np.array(v, np.float32), n) for v, n in zip(bounds, (lo, hi))]
            self.nodes.append(helper.make_node("Clip", [x, lo, hi], [y], name=y))
            x = y
        if self.activations.setdefault(x, qp) != qp:
            # a second quantisation of the same values (DQ -> Q): a requantisation, kept as an
            # unbounded Clip, which npukit computes as exactly that (requantise, full range)
            y = f"{out}/requantised"
            self.nodes.append(helper.make_node("Clip", [x], [y], name=y))
            self.activations[y], x = qp, y
        self.int_acts[out] = (x, qp)

    def dequantize(self, node) -> None:
        x, out = node.input[0], node.output[0]
        if x in self.int_acts:
            self.alias[out] = self.int_acts[x][0]
            return
        if x in self.int_consts:
            cq = self.int_consts[x]
        elif x in self.consts:
            scale, zp, axis = self._params(node)
            cq = ConstQ(np.asarray(self.consts[x]), scale, zp, axis)
        else:
            raise UnsupportedOpError(f"{self.where(node)}: DequantizeLinear of {x!r}, which is neither a "
                                     f"constant nor the output of a QuantizeLinear")
        s, z = _broadcast(cq.scale, cq.values, cq.axis), _broadcast(cq.zero_point, cq.values, cq.axis)
        real = ((cq.values.astype(np.float32) - z.astype(np.float32)) * s).astype(np.float32)
        self.consts[out] = real
        self.constants[out] = cq
        self.new_inits.append(numpy_helper.from_array(real, out))

    def other(self, node) -> None:
        ins = [self.alias.get(i, i) for i in node.input]
        int_ins = [i for i in ins if i in self.int_acts]
        if node.op_type == "Identity" and ins[0] in self.activations:
            self.alias[node.output[0]] = ins[0]
            return
        if not int_ins:
            new = onnx.NodeProto()
            new.CopyFrom(node)
            del new.input[:]
            new.input.extend(ins)
            self.nodes.append(new)
            return
        if node.op_type not in TRANSPARENT:
            raise UnsupportedOpError(f"{self.where(node)}: operator on integer tensors is not supported "
                                     f"(only data movement and the QLinear* operators)")
        qp = self.int_acts[int_ins[0]][1]
        outs = [o + "/dequantized" for o in node.output]
        for o, f in zip(node.output, outs):
            self.int_acts[o] = (f, qp)
            self.activations[f] = qp
        self.nodes.append(helper.make_node(node.op_type, [self.int_acts[i][0] if i in self.int_acts else i
                                                          for i in ins], outs, name=node.name,
                                           domain=node.domain, **attributes(node)))

    def run(self) -> tuple[onnx.ModelProto, QdqInfo]:
        g = self.model.graph
        for node in g.node:
            if node.op_type == "Constant" and not node.input:
                self.consts[node.output[0]] = constant_value(node)
        for node in expand_qoperator(list(g.node), self.consts):
            if node.op_type == "QuantizeLinear":
                self.quantize(node)
            elif node.op_type == "DequantizeLinear":
                self.dequantize(node)
            else:
                self.other(node)
        self._name_outputs()
        return self._model(), QdqInfo(dict(self.activations), dict(self.constants))

    def _name_outputs(self) -> None:
        """A graph output produced by a DequantizeLinear names the float tensor it stands for."""
        inputs = {i.name for i in self.model.graph.input}
        outputs = [o.name for o in self.model.graph.output]
        for o in outputs:
            if o in self.int_acts:
                raise UnsupportedOpError(f"graph output {o!r} is an integer tensor; npukit imports quantised "
                                         f"ONNX models with float outputs (end them with DequantizeLinear)")
            src = self.alias.get(o)
            if src is None:
                continue
            if src in inputs or src in outputs or src in self.consts:
                self.nodes.append(helper.make_node("Identity", [src], [o], name=o + "/output"))
            else:
                for n in self.nodes:
                    for k, name in enumerate(n.output):
                        if name == src:
                            n.output[k] = o
                    for k, name in enumerate(n.input):
                        if name == src:
                            n.input[k] = o
                for a, v in list(self.alias.items()):
                    if v == src:
                        self.alias[a] = o
            if src in self.activations:
                self.activations[o] = self.activations[src]

    def _model(self) -> onnx.ModelProto:
        out = onnx.ModelProto()
        out.CopyFrom(self.model)
        g = out.graph
        del g.node[:]
        g.node.extend(self.nodes)
        g.initializer.extend(self.new_inits)
        del g.value_info[:]
        for o in g.output:           # outputs are float now
            o.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        return out


def _broadcast(values: np.ndarray, like: np.ndarray, axis: int | None) -> np.ndarray:
    values = np.asarray(values)
    if values.size == 1 or axis is None:
        return values.reshape(())
    shape = [1] * like.ndim
    shape[axis] = -1
    return values.reshape(shape)


def strip_qdq(model: onnx.ModelProto, clip: bool = False) -> tuple[onnx.ModelProto, QdqInfo]:
    """(the float model the quantised one annotates, the quantisation read off it). `clip`:
    each quantised activation is clipped to the range its codes stand for (the float model
    of a partly quantised one, whose Q -> DQ pairs may be its only ReLU)."""
    return _Stripper(model, clip).run()


def load_quantised_onnx(model: onnx.ModelProto, input_shapes=None, input_values=None):
    """Import a QDQ / QOperator ONNX model as a pre-quantised IR graph (float I/O)."""
    from .onnx import load_onnx
    from .onnx_qdq_ir import attach_qdq
    float_model, info = strip_qdq(model)
    g = attach_qdq(load_onnx(float_model.SerializeToString(), input_shapes, input_values), info)
    if g is None:       # partly quantised: the float model, each quantised activation's range kept
        g = load_onnx(strip_qdq(model, clip=True)[0].SerializeToString(), input_shapes, input_values)
    return g
