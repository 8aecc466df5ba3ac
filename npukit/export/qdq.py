"""npukit's quantised graph as a QDQ ONNX model that onnxruntime (or any QDQ runtime) runs.

Every int8 activation appears as QuantizeLinear -> int8 tensor -> DequantizeLinear with
npukit's scale and zero point; weights are int8 initializers behind a per-channel
DequantizeLinear, biases int32 initializers at input scale x weight scale. Operators compute
in float between the pairs, as the QDQ format defines; a runtime fuses them into its int8
kernels. Its requantisation rounds its own way, so outputs are close to npukit's, not equal.

Layout: the IR computes NHWC, ONNX operators want NCHW. Each exported activation carries a
permutation (ONNX value = IR value transposed by it); convolutions, pools and resizes take
NCHW (perm (0, 3, 1, 2)), IR transposes only change the permutation, and a Transpose of the
int8 tensor is inserted where a consumer needs another order. Graph inputs and outputs keep
the IR's (the source model's) layout, so an ONNX model's NCHW boundary stays NCHW.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import InputError, UnsupportedOpError
from ..ir.graph import DType, Graph, QParams

OPSET = 21          # int16 QuantizeLinear and ReduceMean's axes input need 21 / 18
_ONNX_TYPES = {DType.I8: TensorProto.INT8, DType.U8: TensorProto.UINT8, DType.I16: TensorProto.INT16,
               DType.I32: TensorProto.INT32, DType.F32: TensorProto.FLOAT, DType.I64: TensorProto.INT64}


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def relative_perm(have: tuple[int, ...], want: tuple[int, ...]) -> tuple[int, ...]:
    """The Transpose perm that turns a value in layout `have` into layout `want`."""
    return tuple(have.index(w) for w in want)


@dataclass(frozen=True)
class Value:
    """One exported activation in one layout: its int8 tensor and its dequantised float tensor."""
    q: str
    f: str
    perm: tuple[int, ...]


class QdqWriter:
    """Builds the ONNX graph; the per-operator emitters in qdq_ops call back in here."""

    def __init__(self, g: Graph):
        self.g = g
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.values: dict[str, list[Value]] = {}
        self._names: set[str] = set()

    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self._names:
            name, k = f"{base}_{k}", k + 1
        self._names.add(name)
        return name

    def node(self, op: str, inputs: list[str], out: str | None = None, base: str = "", **attrs) -> str:
        out = out or self.fresh(f"{base or op}/{op.lower()}")
        self.nodes.append(helper.make_node(op, inputs, [out], name=self.fresh(f"{base or out}/{op}"), **attrs))
        return out

    def init(self, array: np.ndarray | np.generic, base: str) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def ints(self, values, base: str) -> str:
        return self.init(np.asarray(values, np.int64), base)

    # ---- quantisation pairs ---------------------------------------------------------------

    def qparams_inits(self, q: QParams, dtype: DType, base: str, per_axis: bool = False) -> tuple[str, str]:
        scale = np.asarray(q.scale, np.float32)
        zp = np.asarray(q.zero_point, dtype.np)
        if not per_axis:
            scale, zp = scale.reshape(()), zp[:1].reshape(())
        return self.init(scale, base + "/scale"), self.init(zp, base + "/zero_point")

    def quantize(self, float_name: str, tensor: str, perm: tuple[int, ...]) -> Value:
        """Q -> DQ of a float result holding IR tensor `tensor` in layout `perm`."""
        t = self.g.tensors[tensor]
        if t.quant is None:
            raise UnsupportedOpError(f"tensor {tensor!r} has no quantisation to export")
        s, z = self.qparams_inits(t.qp, t.dtype, tensor)
        q = self.node("QuantizeLinear", [float_name, s, z], self.fresh(f"{tensor}/q"), tensor)
        f = self.node("DequantizeLinear", [q, s, z], self.fresh(f"{tensor}/dq"), tensor)
        return self.record(tensor, Value(q, f, perm))

    def record(self, tensor: str, v: Value) -> Value:
        self.values.setdefault(tensor, []).append(v)
        return v

    def value(self, tensor: str, perm: tuple[int, ...] | None = None) -> Value:
        """IR activation `tensor` in layout `perm` (any layout when None); transposes its int8
        tensor when it exists only in another layout."""
        if tensor not in self.values:
            return self.constant(tensor, perm)
        have = self.values[tensor]
        if perm is None:
            return have[0]
        for v in have:
            if v.perm == perm:
                return v
        src = have[0]
        t = self.g.tensors[tensor]
        rel = relative_perm(src.perm, perm)
        q = self.node("Transpose", [src.q], self.fresh(f"{tensor}/q_t"), tensor, perm=list(rel))
        s, z = self.qparams_inits(t.qp, t.dtype, tensor)
        f = self.node("DequantizeLinear", [q, s, z], self.fresh(f"{tensor}/dq_t"), tensor)
        return self.record(tensor, Value(q, f, perm))

    def constant(self, tensor: str, perm: tuple[int, ...] | None) -> Value:
        """An integer constant (per tensor or per axis) behind a DequantizeLinear."""
        t = self.g.tensors[tensor]
        if not t.is_const:
            raise UnsupportedOpError(f"tensor {tensor!r} is used before it is produced")
        perm = perm or identity(len(t.shape))
        data = np.ascontiguousarray(np.asarray(t.data).transpose(perm))
        q = self.init(data, tensor)
        if t.quant is None:
            return Value(q, q, perm)
        per_axis = len(t.quant.scale) > 1
        s, z = self.qparams_inits(t.qp, t.dtype, tensor, per_axis)
        attrs = {"axis": perm.index(t.quant.axis or 0)} if per_axis else {}
        f = self.node("DequantizeLinear", [q, s, z], self.fresh(f"{tensor}/dq"), tensor, **attrs)
        return Value(q, f, perm)

    # ---- the walk -------------------------------------------------------------------------

    def run(self, float_io: frozenset[str]) -> onnx.ModelProto:
        from .qdq_ops import EMITTERS
        g = self.g
        inputs, outputs = [], []
        for name in g.inputs:
            t = g.tensors[name]
            rank = identity(len(t.shape))
            self._names.add(name)
            if name in float_io:
                inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(t.shape)))
                self.quantize(name, name, rank)
            else:
                inputs.append(helper.make_tensor_value_info(name, _ONNX_TYPES[t.dtype], list(t.shape)))
                s, z = self.qparams_inits(t.qp, t.dtype, name)
                self.record(name, Value(name, self.node("DequantizeLinear", [name, s, z], base=name), rank))
        self._names.update(g.outputs)
        for node in g.nodes:
            emit = EMITTERS.get(node.op)
            if emit is None:
                raise UnsupportedOpError(f"{node.name}: exporting {node.op.value} to QDQ ONNX is not supported")
            emit(self, node)
        for name in g.outputs:
            t = g.tensors[name]
            v = self.value(name, identity(len(t.shape)))
            if name in float_io:
                s, z = self.qparams_inits(t.qp, t.dtype, name)
                self.node("DequantizeLinear", [v.q, s, z], name, name + "/output")
                outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(t.shape)))
            else:
                self.node("Identity", [v.q], name, name + "/output")
                outputs.append(helper.make_tensor_value_info(name, _ONNX_TYPES[t.dtype], list(t.shape)))
        graph = helper.make_graph(self.nodes, g.name or "npukit", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="npukit")
        model.ir_version = 10
        onnx.checker.check_model(model)
        return model


def _float_io(model) -> tuple[Graph, frozenset[str]]:
    """(quantised graph, the graph I/O names that are float at the model's boundary)."""
    if isinstance(model, Graph):
        return model, model.float_io or frozenset(model.inputs) | frozenset(model.outputs)
    g: Graph | None = getattr(model, "qgraph", None)
    if g is None:
        raise InputError("export needs the quantised graph: compile the model in this process "
                         "(a program loaded from an .npub does not carry it)")
    prog = model.program
    io = {t.name for t in list(prog.inputs) + list(prog.outputs) if t.is_float}
    # boundary transposes absorbed into the program's I/O renamed nothing: names match the graph
    return g, frozenset(n for n in list(g.inputs) + list(g.outputs) if n in io or n in g.float_io)


def to_qdq_onnx(model) -> onnx.ModelProto:
    """The QDQ ONNX model of a CompiledModel (or of a quantised IR Graph)."""
    g, float_io = _float_io(model)
    if not g.is_quantised:
        raise InputError("export needs a quantised graph")
    return QdqWriter(g).run(float_io)


def export_qdq(model, path: str | Path) -> Path:
    """Write the QDQ ONNX model of a CompiledModel (or quantised Graph) to `path`."""
    path = Path(path)
    onnx.save(to_qdq_onnx(model), str(path))
    return path
