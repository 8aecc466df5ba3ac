"""The state of an ONNX import: ONNX values (constants or IR activations) and the IR being built.

Every 4-D activation lives in NHWC inside the IR; the ONNX-layout (NCHW) view of it is made on
demand with a TRANSPOSE (the optimiser removes the ones that cancel or only move size-1 dims).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import DType, Graph, Node, Op, ReshapeAttrs, Tensor, TransposeAttrs
from ..ir.ties import Ties
from ..ir.shapes import infer
from .onnx_check import check_shape

TO_NHWC = (0, 2, 3, 1)      # NCHW array .transpose(TO_NHWC) -> NHWC
TO_NCHW = (0, 3, 1, 2)
NHWC_AXIS = (0, 3, 1, 2)    # NHWC_AXIS[onnx_axis] = position of that axis in NHWC


_OUT_DTYPE = {Op.ARG_MAX: DType.I64, Op.COMPARE: DType.BOOL, Op.LOGICAL: DType.BOOL, Op.LOGICAL_NOT: DType.BOOL}


@dataclass(frozen=True)
class Act:
    """An ONNX activation value: the IR tensor holding it and its ONNX shape."""
    ir: str
    shape: tuple[int, ...]
    nhwc: bool                # ir holds the NHWC layout (only for 4-D values)

    @property
    def rank(self) -> int:
        return len(self.shape)


def onnx_axis_to_ir(axis: int, rank: int) -> int:
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank:
        raise ModelError(f"axis {axis} out of range for rank {rank}")
    return NHWC_AXIS[axis] if rank == 4 else axis


def to_ir_order(values, rank: int) -> tuple:
    """Per-axis values in ONNX order -> IR order (NHWC for rank 4)."""
    values = tuple(values)
    return tuple(values[i] for i in TO_NHWC) if rank == 4 else values


class Builder:
    def __init__(self, reserved: set[str], graph_outputs: tuple[str, ...], opset: int):
        self.values: dict[str, np.ndarray | Act] = {}
        self.nodes: list[Node] = []
        self.tensors: dict[str, Tensor] = {}
        self.reserved = reserved
        self.graph_outputs = set(graph_outputs)
        self.opset = opset
        self.source: tuple[str, ...] = ()
        self._nchw_view: dict[str, str] = {}
        self._node_names: set[str] = set()
        self.empty: set[str] = set()                # empty Slice results: constants only Concat (drops) may read
        self.host_typed: dict[str, str] = {}       # integer / boolean host results -> numpy dtype name
        self.onnx_types: dict[str, str] = {}       # ONNX element types the IR holds otherwise: integer
        # inputs read as int32, float64 / float16 host results held as float32
        self.ties: list[tuple[str, ...]] = []      # an unrolled Loop's copies of one body value (ir.ties)

    # ---- names ------------------------------------------------------------------------
    def fresh(self, base: str, own: str | None = None) -> str:
        """A tensor name not used so far; `base` itself when it is free (or our own ONNX name)."""
        name, i = base, 0
        while name in self.tensors or (name in self.reserved and name != own):
            i += 1
            name = f"{base}_{i}"
        return name

    def _node_name(self, base: str) -> str:
        name, i = base or "node", 0
        while name in self._node_names:
            i += 1
            name = f"{base}_{i}"
        self._node_names.add(name)
        return name

    # ---- values -----------------------------------------------------------------------
    def is_const(self, name: str) -> bool:
        return isinstance(self.values.get(name), np.ndarray)

    def const(self, name: str, what: str = "operand") -> np.ndarray:
        v = self.values.get(name)
        if not isinstance(v, np.ndarray):
            raise UnsupportedOpError(
                f"{what} {name!r} of ONNX node {self.source[-1]!r} must be a constant")
        return v

    def opt_const(self, node, index: int) -> np.ndarray | None:
        if len(node.input) <= index or not node.input[index]:
            return None
        return self.const(node.input[index])

    def act(self, name: str) -> Act:
        v = self.values.get(name)
        if v is None:
            raise ModelError(f"value {name!r} is used before it is defined")
        if not isinstance(v, Act):
            raise ModelError(f"value {name!r} is expected to be an activation, not a constant")
        return v

    def add_input(self, name: str, shape: tuple[int, ...], dtype: DType = DType.F32) -> None:
        self.tensors[name] = Tensor(name, shape, dtype)
        if len(shape) == 4:
            ir = self.emit(Op.TRANSPOSE, [name], TransposeAttrs(TO_NHWC), self.fresh(name + "_nhwc"))
            self._nchw_view[ir] = name
            self.values[name] = Act(ir, shape, True)
        else:
            self.values[name] = Act(name, shape, False)

    def onnx_dtype(self, name: str) -> np.dtype:
        """The ONNX element type of activation `name` (IR activations are float32 unless made
        on the host, read as integer inputs, or booleans / indices the NPU made)."""
        if name in self.host_typed or name in self.onnx_types:
            return np.dtype(self.host_typed.get(name) or self.onnx_types[name])
        a = self.values.get(name)
        t = self.tensors.get(a.ir) if isinstance(a, Act) else None
        return t.dtype.np if t is not None and t.dtype is not DType.F32 else np.dtype("float32")

    # ---- rollback ---------------------------------------------------------------------
    def mark(self) -> tuple[int, int, int, int, int]:
        return len(self.nodes), len(self.tensors), len(self._nchw_view), len(self.values), len(self.ties)

    def rollback(self, mark: tuple[int, int, int, int, int]) -> None:
        """Forget everything emitted since `mark` (a converter that refused half-way)."""
        n_nodes, n_tensors, n_views, values, n_ties = mark
        del self.ties[n_ties:]
        for node in self.nodes[n_nodes:]:
            self._node_names.discard(node.name)
        del self.nodes[n_nodes:]
        for name in list(self.tensors)[n_tensors:]:
            del self.tensors[name]
        for key in list(self._nchw_view)[n_views:]:
            del self._nchw_view[key]
        for name in list(self.values)[values:]:     # ONNX values are assigned once, in order
            del self.values[name]

    # ---- emitting ---------------------------------------------------------------------
    def add_const(self, array: np.ndarray, base: str) -> str:
        name = self.fresh(base, own=base)
        array = np.ascontiguousarray(array, dtype=np.float32)
        self.tensors[name] = Tensor(name, tuple(array.shape), DType.F32, array)
        return name

    def emit(self, op: Op, inputs: list[str], attrs, out: str) -> str:
        node = Node(op, self._node_name(self.source[-1] if self.source else out), tuple(inputs),
                    (out,), attrs, source=self.source)
        shape = infer(node, [self.tensors[t].shape for t in inputs])[0]
        what = f"value {out!r} of ONNX node {self.source[-1] if self.source else out!r}"
        if check_shape(shape, what) == 0:
            raise ModelError(f"{what} is empty (shape {list(shape)}): npukit compiles no empty activation")
        dtype = _OUT_DTYPE.get(op, DType.F32)
        if op in (Op.TRANSPOSE, Op.RESHAPE, Op.SLICE) and self.tensors[inputs[0]].dtype in (DType.BOOL, DType.I32, DType.I64):
            dtype = self.tensors[inputs[0]].dtype          # moving booleans / indices keeps their type
        self.tensors[out] = Tensor(out, tuple(int(d) for d in shape), dtype)
        self.nodes.append(node)
        return out

    def claim_name(self) -> str:
        """The IR node name for the current source node, taken now (before its operands)."""
        return self._node_name(self.source[-1])

    def emit_outputs(self, op: Op, inputs: list[str], attrs, outs: list[str], dtypes: list[DType],
                     node_name: str) -> None:
        """A node with several outputs (a host node), each of its own element type."""
        node = Node(op, node_name, tuple(inputs), tuple(outs), attrs, source=self.source)
        shapes = infer(node, [self.tensors[t].shape for t in inputs])
        for out, shape, dtype in zip(outs, shapes, dtypes):
            check_shape(shape, f"value {out!r} of ONNX node {node_name!r}")
            self.tensors[out] = Tensor(out, tuple(int(d) for d in shape), dtype)
        self.nodes.append(node)

    def out_name(self, onnx_name: str, nhwc: bool) -> str:
        """IR name for an ONNX value: a graph output's ONNX-layout tensor keeps the ONNX name."""
        if onnx_name in self.graph_outputs:
            return self.fresh(onnx_name + "_nhwc") if nhwc else self.fresh(onnx_name, own=onnx_name)
        return self.fresh(onnx_name, own=onnx_name) if nhwc else self.fresh(onnx_name + "_nchw")

    def set_nhwc(self, onnx_name: str, ir: str) -> None:
        """Record a 4-D result computed in NHWC."""
        n, h, w, c = self.tensors[ir].shape
        self.values[onnx_name] = Act(ir, (n, c, h, w), True)

    def set_onnx_layout(self, onnx_name: str, ir: str) -> None:
        """Record a result computed in ONNX layout; 4-D results get an NHWC copy."""
        shape = self.tensors[ir].shape
        if len(shape) != 4:
            self.values[onnx_name] = Act(ir, shape, False)
            return
        out = self.out_name(onnx_name, True)
        nhwc = self.emit(Op.TRANSPOSE, [ir], TransposeAttrs(TO_NHWC), out)
        self._nchw_view[nhwc] = ir
        self.values[onnx_name] = Act(nhwc, shape, True)

    def emit_result(self, onnx_name: str, op: Op, inputs: list[str], attrs, nhwc: bool) -> str:
        """Emit the node producing ONNX value `onnx_name`, computed in NHWC or ONNX layout."""
        probe = Node(op, "probe", tuple(inputs), ("probe",), attrs)
        rank = len(infer(probe, [self.tensors[t].shape for t in inputs])[0])
        if nhwc:
            ir = self.emit(op, inputs, attrs, self.out_name(onnx_name, True))
            self.set_nhwc(onnx_name, ir)
        else:
            name = self.out_name(onnx_name, False) if rank == 4 else self.fresh(onnx_name, own=onnx_name)
            ir = self.emit(op, inputs, attrs, name)
            self.set_onnx_layout(onnx_name, ir)
        return ir

    def onnx_layout(self, name: str) -> str:
        """IR tensor holding value `name` in ONNX layout (NCHW for 4-D)."""
        a = self.act(name)
        if not a.nhwc:
            return a.ir
        if a.ir not in self._nchw_view:
            out = self.out_name(name, False)
            self._nchw_view[a.ir] = self.emit(Op.TRANSPOSE, [a.ir], TransposeAttrs(TO_NCHW), out)
        return self._nchw_view[a.ir]

    def nhwc(self, name: str) -> str:
        a = self.act(name)
        if a.rank != 4:
            raise UnsupportedOpError(
                f"ONNX node {self.source[-1]!r} needs a 4-D input, {name!r} has shape {a.shape}")
        return a.ir

    def operand(self, name: str, out_rank: int) -> str:
        """Value `name` as an operand of a broadcasting op whose result has rank `out_rank`."""
        v = self.values.get(name)
        if isinstance(v, np.ndarray):
            arr = v.astype(np.float32).reshape((1,) * (out_rank - v.ndim) + v.shape)
            if out_rank == 4:
                arr = arr.transpose(TO_NHWC)
            return self.add_const(arr, name)
        a = self.act(name)
        if out_rank != 4:
            return self.onnx_layout(name)
        if a.rank == 4:
            return a.ir
        shape4 = (1,) * (4 - a.rank) + a.shape
        r = self.emit(Op.RESHAPE, [a.ir], ReshapeAttrs(shape4), self.fresh(name + "_4d"))
        return self.emit(Op.TRANSPOSE, [r], TransposeAttrs(TO_NHWC), self.fresh(name + "_4d_nhwc"))

    def reshape_to_onnx(self, onnx_name: str, src: str, shape: tuple[int, ...]) -> None:
        """Result `onnx_name` = ONNX-layout tensor `src` reshaped to `shape`."""
        ir = self.emit_result(onnx_name, Op.RESHAPE, [src], ReshapeAttrs(tuple(int(d) for d in shape)),
                              nhwc=False)
        if src in self.onnx_types:      # int64 ids held as int32 stay int64 to ONNX
            self.onnx_types[onnx_name] = self.onnx_types[ir] = self.onnx_types[src]

    def alias(self, dst: str, src: str) -> None:
        self.values[dst] = self.values[src]

    def graph(self, inputs: tuple[str, ...], outputs: tuple[str, ...], name: str) -> Graph:
        for out in outputs:
            if isinstance(self.values.get(out), np.ndarray):
                raise UnsupportedOpError(f"graph output {out!r} is a constant")
            ir = self.onnx_layout(out)
            if ir != out:
                self.source = ()
                self.emit(Op.RESHAPE, [ir], ReshapeAttrs(self.tensors[ir].shape), out)
        declared = {n: self.onnx_types[n] for n in inputs
                    if n in self.onnx_types and self.onnx_types[n] != self.tensors[n].dtype.np.name}
        ties = Ties.of([t for t in (tuple(n for n in group if n in self.tensors) for group in self.ties) if len(t) > 1])
        return Graph(tuple(self.nodes), dict(self.tensors), inputs, outputs, name, declared_int=declared, ties=ties)
