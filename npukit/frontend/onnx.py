"""ONNX -> float32 NHWC IR graph.

Constant subgraphs (shape arithmetic, `If` on a constant condition, ...) are evaluated once the
input shapes are fixed; every other node becomes IR nodes through the converters in
onnx_ops_*.py. Graph inputs and outputs keep their ONNX names, shapes and layout.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Collection, Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import DynamicBatchWarning, ModelError, UnsupportedOpError, first_line
from ..ir.graph import DType, Graph, Tensor
from ..ir.verify import verify
from ..limits import MODEL_BYTES
from .onnx_attrs import check_attributes
from .onnx_builder import Act, Builder
from .onnx_dynq import dequantise_dynamic
from .onnx_float16 import float16_as_float32
from .onnx_ml import ML_DOMAIN, standard_ml
from .onnx_check import check_host_graph, check_shape, read_model, upgrade_opset
from .onnx_const import constant_value, evaluate
from .onnx_host import check_domain, emit_host, host_reason
from .onnx_ops_nn import NN_CONVERTERS
from .onnx_ops_tensor import TENSOR_CONVERTERS
from .onnx_ops_norms import NORM_CONVERTERS
from .onnx_ops_eltwise import ELTWISE_CONVERTERS
from .onnx_fuse import fuse_onnx_patterns
from .onnx_onehot import gather_one_hots
from .onnx_ops_transformer import TRANSFORMER_CONVERTERS
from .onnx_ops_gru import GRU_CONVERTERS
from .onnx_ops_rnn import RNN_CONVERTERS
from .onnx_einsum import EINSUM_CONVERTERS
from .onnx_loop import NotUnrolled, unroll_loop
from .onnx_qdq import is_quantised_onnx, load_quantised_onnx

CONVERTERS = {**NN_CONVERTERS, **TENSOR_CONVERTERS, **NORM_CONVERTERS, **ELTWISE_CONVERTERS, **TRANSFORMER_CONVERTERS, **RNN_CONVERTERS,
              **GRU_CONVERTERS, **EINSUM_CONVERTERS}
_INT_INPUTS = (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
# a double or half input is a float input: the NPU quantises it from float32 like any other
_FLOAT_INPUTS = (onnx.TensorProto.FLOAT, onnx.TensorProto.UNDEFINED, onnx.TensorProto.DOUBLE,
                 onnx.TensorProto.FLOAT16)
_NEVER_FOLD = {"If", "Loop", "Scan", "RandomNormal", "RandomUniform", "RandomNormalLike",
               "RandomUniformLike", "Multinomial", "Bernoulli"}


def _input_shape(vi: onnx.ValueInfoProto, given: dict) -> tuple[int, ...]:
    tt = vi.type.tensor_type
    if vi.name in given:
        shape = tuple(int(d) for d in given[vi.name])
        if tt.HasField("shape") and len(tt.shape.dim) != len(shape):
            raise ModelError(f"--input-shape {vi.name} has {len(shape)} dims, the model's input has "
                             f"{len(tt.shape.dim)}")
        if any(d <= 0 for d in shape):
            raise ModelError(f"--input-shape {vi.name} must have positive dims, got {shape}")
        check_shape(shape, f"input {vi.name!r}")
        return shape
    if not tt.HasField("shape"):
        raise ModelError(f"input {vi.name!r} has no shape: give it with --input-shape {vi.name}=...")
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tt.shape.dim)
    if dims and dims[0] == -1 and -1 not in dims[1:] and len(dims) > 1:
        warnings.warn(f"input {vi.name!r} has a dynamic batch dimension: compiled for batch 1 "
                      f"(--input-shape {vi.name}=... chooses another)", DynamicBatchWarning, stacklevel=2)
        dims = (1, *dims[1:])
    if -1 in dims:
        shown = ",".join("?" if d < 0 else str(d) for d in dims)
        raise ModelError(f"input {vi.name!r} has dynamic shape [{shown}]: give it with "
                         f"--input-shape {vi.name}=<d0,d1,...>")
    check_shape(dims, f"input {vi.name!r}")
    return dims


def _used_names(graph: onnx.GraphProto, acc: set[str]) -> set[str]:
    """Values some node (or subgraph) reads, and graph outputs."""
    acc.update(o.name for o in graph.output)
    for node in graph.node:
        acc.update(node.input)
        for a in node.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _used_names(sub, acc)
    return acc


def _all_names(graph: onnx.GraphProto, acc: set[str]) -> set[str]:
    acc.update(i.name for i in graph.input)
    acc.update(i.name for i in graph.initializer)
    for node in graph.node:
        acc.update(node.input)
        acc.update(node.output)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                _all_names(a.g, acc)
    acc.discard("")
    return acc


class _Importer:
    def __init__(self, model: onnx.ModelProto, builder: Builder, static: dict | None = None):
        self.model = model
        self.b = builder
        self.opsets = [o for o in model.opset_import]
        self.host_nodes: dict[str, str] = {}     # ONNX node name -> why it runs on the host anyway
        self.used = _used_names(model.graph, set())
        # values that depend on the model file alone (initializers, Constant nodes and what folds
        # from them only: not the input shapes or values), kept across imports of the same file
        self.static: dict[str, np.ndarray] = {} if static is None else static
        self.fixed: set[str] = set()        # the names holding such values in this import
        self.nested = 0     # inside an If's branch (whose names another branch may reuse): none kept

    def run_graph(self, graph: onnx.GraphProto, top: bool = False) -> None:
        for init in graph.initializer:
            if top:
                value = self.static.get(init.name)
                value = self.static.setdefault(init.name, numpy_helper.to_array(init)) if value is None else value
                self.fixed.add(init.name)
            else:
                value = numpy_helper.to_array(init)
            self.b.values[init.name] = value
        for node in graph.node:
            self.b.source = (node.name or f"{node.op_type}:{node.output[0]}",)
            self.run_node(node)

    def run_node(self, node: onnx.NodeProto) -> None:
        b, op = self.b, node.op_type
        if op == "Constant":
            b.values[node.output[0]] = constant_value(node)
            return
        ins = [b.values.get(n) if n else None for n in node.input]
        for n, v in zip(node.input, ins):
            if n and v is None:
                raise ModelError(f"ONNX node {b.source[0]!r} uses {n!r}, which is never defined")
        check_attributes(node, [v.shape if isinstance(v, (Act, np.ndarray)) else None for v in ins])
        if op in ("Shape", "Size") and isinstance(ins[0], Act):
            b.values[node.output[0]] = self._shape_value(node, np.array(ins[0].shape, np.int64))
            return
        empty = next((n for n in node.input if n in b.empty), None)
        if empty is not None and op not in ("Concat", "Shape", "Size"):
            raise ModelError(f"value {empty!r} read by ONNX node {b.source[0]!r} is empty (shape "
                             f"{list(b.values[empty].shape)}): npukit compiles no empty activation")
        known = [v for v in ins if v is None or isinstance(v, np.ndarray)]
        if op not in _NEVER_FOLD and len(known) == len(ins):
            fixed = not self.nested and all(not n or n in self.fixed for n in node.input)
            values = [self.static[n] for n in node.output] if fixed and all(n in self.static for n in node.output) \
                else evaluate(node, known, self.opsets)
            for name, value in zip(node.output, values):
                b.values[name] = value
                if fixed:
                    self.static[name] = value
                    self.fixed.add(name)
            return
        if op == "If" and isinstance(ins[0], np.ndarray):
            self._inline_if(node, ins[0])
            return
        if op == "Loop" and not self.host_nodes.get(b.source[0]) and self._unrolled(node):
            return
        name = b.source[0]
        check_domain(node, name)
        reason = self.host_nodes.get(name) or host_reason(node, b, CONVERTERS)
        if not reason:
            mark = b.mark()
            try:
                CONVERTERS[op](b, node)
                return
            except UnsupportedOpError as e:      # this configuration: the host runs it instead
                b.rollback(mark)
                reason = f"ONNX {op} refused by the NPU converter: {e}"
            except (KeyError, IndexError, ValueError, TypeError, ZeroDivisionError) as e:
                raise ModelError(first_line(f"malformed ONNX node '{name}' ({op}): {type(e).__name__}: {e}")) from e
        emit_host(b, node, reason, self.used, self.model.ir_version,
                  next((o.version for o in self.opsets if o.domain == ML_DOMAIN), 1))

    @staticmethod
    def _shape_value(node: onnx.NodeProto, shape: np.ndarray) -> np.ndarray:
        if node.op_type == "Size":
            return np.array(int(np.prod(shape)), np.int64)
        attrs = {a.name: a.i for a in node.attribute}
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        return shape[start:end]

    def _unrolled(self, node: onnx.NodeProto) -> bool:
        """A Loop whose trip count the shapes fix, run iteration by iteration (onnx_loop)."""
        mark, outer = self.b.mark(), self.b.source
        self.nested += 1
        try:
            unroll_loop(self, node)
            return True
        except NotUnrolled:
            self.b.rollback(mark)
            return False
        finally:
            self.nested -= 1
            self.b.source = outer

    def _inline_if(self, node: onnx.NodeProto, cond: np.ndarray) -> None:
        branches = {a.name: a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH}
        if {"then_branch", "else_branch"} - branches.keys():
            raise ModelError(f"ONNX If node {node.name!r} needs graphs 'then_branch' and 'else_branch'")
        taken = branches["then_branch" if bool(np.asarray(cond).ravel()[0]) else "else_branch"]
        outer = self.b.source
        self.nested += 1
        self.run_graph(taken)
        self.nested -= 1
        self.b.source = outer
        for dst, src in zip(node.output, taken.output):
            self.b.alias(dst, src.name)


def _opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 1


def load_onnx(path_or_bytes, input_shapes: dict[str, tuple[int, ...]] | None = None,
              input_values: dict[str, np.ndarray] | None = None,
              host_nodes: Collection[str] | Mapping[str, str] = frozenset(), memo: dict | None = None) -> Graph:
    """Import an ONNX model as a verified float32 IR graph (NHWC inside, ONNX layout at the edges).

    `input_values` binds inputs to fixed arrays (e.g. an all-ones attention mask): they become
    constants, so what depends only on them folds. Every standard-domain node the NPU cannot
    run becomes a HOST_FLOAT node (float on the host, by onnxruntime); `host_nodes` names more
    ONNX nodes to run there (a mapping gives the reason). Integer inputs (token ids) stay int32
    inputs; the NPU only indexes constant tables with them (Gather). `memo`: a dict the caller
    keeps across imports of one file at several input shapes or values: the checked and fused
    model and the values that depend on the file alone are taken from it (by a digest of the
    file's bytes) instead of being made again."""
    checked, fused, static = _prepared(path_or_bytes, memo)
    if is_quantised_onnx(checked):       # QDQ / QOperator: keeps the model's own quantisation
        return load_quantised_onnx(checked, input_shapes, input_values)
    model = fused()
    g = model.graph
    given = dict(input_shapes or {})
    bound = {k: np.asarray(v) for k, v in (input_values or {}).items()}
    init_names = {i.name for i in g.initializer}
    unknown = set(bound) - {vi.name for vi in g.input if vi.name not in init_names}
    if unknown:
        raise ModelError(f"input values name {sorted(unknown)}, which are not model inputs")
    inputs = [vi for vi in g.input if vi.name not in init_names and vi.name not in bound]
    unknown = set(given) - {vi.name for vi in inputs}
    if unknown:
        raise ModelError(f"--input-shape names {sorted(unknown)}, the model's inputs are "
                         f"{[vi.name for vi in inputs]}")
    outputs = tuple(o.name for o in g.output)
    b = Builder(_all_names(g, set()), outputs, _opset(model))
    b.values.update(bound)
    for vi in inputs:
        elem = vi.type.tensor_type.elem_type
        if elem in _INT_INPUTS:
            shape = _input_shape(vi, given)
            b.tensors[vi.name] = Tensor(vi.name, shape, DType.I32)
            b.values[vi.name] = Act(vi.name, shape, False)
            b.onnx_types[vi.name] = helper.tensor_dtype_to_np_dtype(elem).name
            continue
        if elem not in _FLOAT_INPUTS + (onnx.TensorProto.BOOL,):
            raise UnsupportedOpError(f"input {vi.name!r} has element type "
                                     f"{onnx.TensorProto.DataType.Name(elem)}; only float, bool and integer "
                                     f"inputs are supported")
        b.add_input(vi.name, _input_shape(vi, given), DType.BOOL if elem == onnx.TensorProto.BOOL else DType.F32)
    importer = _Importer(model, b, static)
    importer.host_nodes = dict(host_nodes) if isinstance(host_nodes, Mapping) \
        else {n: "placed on the host by request" for n in host_nodes}
    importer.run_graph(g, top=True)
    graph = b.graph(tuple(vi.name for vi in inputs), outputs, g.name or "model")
    return verify(graph, stage="onnx import")


def _prepared(path_or_bytes, memo: dict | None):
    """(the checked model, a function giving it fused, the file's static values): made afresh
    without `memo`, else kept in it under a digest of the file's bytes."""
    if memo is None:
        checked = _checked(path_or_bytes)
        return checked, lambda: gather_one_hots(fuse_onnx_patterns(checked)), None
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        if not os.path.isfile(path_or_bytes):
            raise ModelError(f"ONNX model file {os.fspath(path_or_bytes)!r} does not exist")
        MODEL_BYTES.check(os.path.getsize(path_or_bytes), f"ONNX model file {os.path.basename(path_or_bytes)!r}",
                          ModelError)
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    key = ("onnx", hashlib.sha256(data).digest())
    if key not in memo:
        memo[key] = {"checked": _checked(path_or_bytes), "static": {}}
    entry = memo[key]

    def fused() -> onnx.ModelProto:
        if "fused" not in entry:
            entry["fused"] = gather_one_hots(fuse_onnx_patterns(entry["checked"]))
        return entry["fused"]
    return entry["checked"], fused, entry["static"]


def _checked(path_or_bytes) -> onnx.ModelProto:
    model = standard_ml(float16_as_float32(dequantise_dynamic(upgrade_opset(read_model(path_or_bytes)))))
    check_host_graph(model)
    return model
