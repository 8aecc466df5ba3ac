"""The ONNX input boundary: a model file is parsed and checked here before any import work.

`read_model` bounds the file size, parses the protobuf without its external data, checks the
graph's structure and every tensor's declared type, shape and data length, then checks each
external-data entry (confined to the model's folder, within its file, all of them within
MODEL_BYTES) before reading it. `check_host_graph` bounds the constant trip counts of `Loop`
nodes, which the host would otherwise run at compile time. Every refusal is one ModelError line.
"""
from __future__ import annotations

import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import ModelError, first_line
from ..kernels.host_float import ORT_MIN_OPSET, at_ort_opset, loop_ends_on_condition
from ..limits import GRAPH_NODES, HOST_LOOP_TRIPS, MODEL_BYTES, TENSOR_ELEMENTS, TENSOR_RANK

_PACKED_BITS = {getattr(TensorProto, n): 4 for n in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(TensorProto, n)}
_KNOWN_TYPES = frozenset(TensorProto.DataType.values()) - {TensorProto.UNDEFINED}


def read_model(path_or_bytes, external: bool = True) -> onnx.ModelProto:
    """Parse, check and (with `external`) complete an ONNX model with its external data;
    ModelError on anything wrong."""
    base_dir = None
    if isinstance(path_or_bytes, (bytes, bytearray)):
        MODEL_BYTES.check(len(path_or_bytes), "the ONNX model", ModelError)
        data = bytes(path_or_bytes)
    else:
        path = os.fspath(path_or_bytes)
        if not os.path.isfile(path):
            raise ModelError(f"ONNX model file {path!r} does not exist")
        MODEL_BYTES.check(os.path.getsize(path), f"ONNX model file {os.path.basename(path)!r}", ModelError)
        with open(path, "rb") as f:
            data = f.read()
        base_dir = os.path.dirname(os.path.abspath(path))
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # noqa: BLE001 - protobuf raises many kinds on corrupt input
        raise ModelError(first_line(f"cannot parse ONNX model: {type(e).__name__}: {e}")) from e
    if not model.HasField("graph") or not model.graph.node:
        raise ModelError("not an ONNX model: the file holds no graph nodes")
    check_structure(model)
    if external:
        _read_external(model, base_dir, len(data))
    return model


def upgrade_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """A model of a standard-domain opset older than 7 converted to opset 7 by onnx's version
    converter: the legacy `broadcast` / `axis` attributes of Add, Mul, Gemm, ... become
    numpy broadcasting, and its host operators load in onnxruntime. A model the converter
    cannot take is returned as it is."""
    if not any(o.domain in ("", "ai.onnx") and 0 < o.version < ORT_MIN_OPSET for o in model.opset_import):
        return model
    upgraded = at_ort_opset(_channel_slopes(model))
    if upgraded is None:        # no adapter for some node: import the model as written
        return model
    check_structure(upgraded)
    return upgraded


def _channel_slopes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Before opset 7 a PRelu slope of shape [C] holds one value per channel (axis 1); from 7
    on it broadcasts from the right: such a constant slope is reshaped to [C, 1, ..., 1]."""
    from onnx import numpy_helper, shape_inference
    inits = {t.name: t for t in model.graph.initializer}
    prelus = [n for n in model.graph.node if n.op_type == "PRelu" and len(n.input) == 2 and n.input[1] in inits]
    if not prelus:
        return model
    inferred = shape_inference.infer_shapes(model).graph
    ranks = {vi.name: len(vi.type.tensor_type.shape.dim) for vi in [*inferred.input, *inferred.value_info]
             if vi.type.tensor_type.HasField("shape")}
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {t.name: t for t in model.graph.initializer}
    for node in (n for n in model.graph.node if n.op_type == "PRelu" and n.input[1] in inits):
        slope, rank = numpy_helper.to_array(inits[node.input[1]]), ranks.get(node.input[0], 0)
        if slope.ndim == 1 and slope.size > 1 and rank > 2:
            name = f"{node.input[1]}/per_channel"
            if name not in inits:
                inits[name] = numpy_helper.from_array(slope.reshape(-1, *[1] * (rank - 2)), name)
                model.graph.initializer.append(inits[name])
                if any(vi.name == node.input[1] for vi in model.graph.input):    # IR 3: initializers are inputs
                    model.graph.input.append(helper.make_tensor_value_info(name, inits[name].data_type, inits[name].dims))
            node.input[1] = name
    return model


# ---- structure -----------------------------------------------------------------------------
def check_structure(model: onnx.ModelProto) -> None:
    """Names defined before use and once, node count, tensor types, shapes and data lengths."""
    count = [0]
    _check_graph(model.graph, frozenset(), "the graph", count)


def _node_label(node: onnx.NodeProto) -> str:
    return f"ONNX node {node.name or (node.output[0] if node.output else '?')!r} ({node.op_type})"


def _check_graph(g: onnx.GraphProto, outer: frozenset[str], where: str, count: list[int]) -> None:
    for t in g.initializer:
        check_tensor(t, f"initializer {t.name!r}")
    for vi in g.input:
        _check_value_info(vi, True)
    for vi in list(g.output) + list(g.value_info):
        _check_value_info(vi, False)
    own = {i.name for i in g.input} | {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    known = set(outer) | own
    produced: set[str] = set()
    for node in g.node:
        count[0] += 1
        GRAPH_NODES.check(count[0], "the ONNX graph (with its subgraphs)", ModelError)
        if not all(isinstance(s, str) for s in (node.op_type, node.domain, node.name, *node.input, *node.output)):
            raise ModelError(f"ONNX node {count[0] - 1} of {where}: its operator, domain or value names are not "
                             f"UTF-8 text")
        label = _node_label(node)
        for name in node.input:
            if name and name not in known:
                raise ModelError(f"{label} reads {name!r}, which no earlier node, initializer or input of "
                                 f"{where} defines")
        for a in node.attribute:
            for t in ([a.t] if a.type == onnx.AttributeProto.TENSOR else list(a.tensors)):
                check_tensor(t, f"attribute {a.name!r} of {label}")
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _check_graph(sub, frozenset(known), f"subgraph {a.name!r} of {label}", count)
        for name in node.output:
            if not name:
                continue
            if name in produced or name in own:
                raise ModelError(f"{label} defines {name!r}, which {where} already defines")
            produced.add(name)
            known.add(name)
    for o in g.output:
        if o.name not in known:
            raise ModelError(f"output {o.name!r} of {where} is never produced")


def _check_value_info(vi: onnx.ValueInfoProto, is_input: bool) -> None:
    if not vi.type.HasField("tensor_type"):
        return
    tt = vi.type.tensor_type
    if tt.elem_type and tt.elem_type not in _KNOWN_TYPES:
        raise ModelError(f"value {vi.name!r} has unknown element type {tt.elem_type}")
    if not tt.HasField("shape"):
        return
    if is_input:      # negative dims: dynamic, as some exporters write them
        dims = [d.dim_value for d in tt.shape.dim if d.HasField("dim_value") and d.dim_value >= 0]
        check_shape(dims, f"input {vi.name!r}", ModelError, rank=len(tt.shape.dim))


def check_shape(dims, what: str, error: type[Exception] = ModelError, rank: int | None = None) -> int:
    """Element count of a shape, refused beyond TENSOR_RANK / TENSOR_ELEMENTS or if negative."""
    dims = [int(d) for d in dims]
    TENSOR_RANK.check(len(dims) if rank is None else rank, f"the rank of {what}", error)
    if any(d < 0 for d in dims):
        raise error(f"{what} has a negative dimension: {dims}")
    n = math.prod(dims)
    TENSOR_ELEMENTS.check(n, f"{what} ({'x'.join(map(str, dims))})", error)
    return n


def tensor_type_name(data_type: int) -> str:
    return TensorProto.DataType.Name(data_type) if data_type in _KNOWN_TYPES else str(data_type)


def stored_bytes(t: TensorProto, n: int) -> int:
    """Bytes the raw (or external) data of tensor `t` with `n` elements must hold."""
    if t.data_type in _PACKED_BITS:
        return (n * _PACKED_BITS[t.data_type] + 7) // 8
    return n * np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize


def check_tensor(t: TensorProto, what: str) -> None:
    """Known type, bounded shape, and data of exactly the declared size (external data: its
    declared length, checked when read)."""
    if t.data_type not in _KNOWN_TYPES:
        raise ModelError(f"{what} has unknown element type {t.data_type}")
    n = check_shape(t.dims, what)
    if t.data_location == TensorProto.EXTERNAL:
        return
    if t.data_type == TensorProto.STRING:
        have, want, unit = len(t.string_data), n, "strings"
    elif t.HasField("raw_data"):
        have, want, unit = len(t.raw_data), stored_bytes(t, n), "bytes"
    else:
        field = helper.tensor_dtype_to_field(t.data_type)
        want = n * 2 if t.data_type in (TensorProto.COMPLEX64, TensorProto.COMPLEX128) else n
        if t.data_type in _PACKED_BITS:
            want = (n * _PACKED_BITS[t.data_type] + 7) // 8
        have, unit = len(getattr(t, field)), "values"
    if have != want:
        raise ModelError(f"{what} ({tensor_type_name(t.data_type)} {list(t.dims)}) holds {have:,} {unit} of "
                         f"data, its shape needs {want:,}")


# ---- external data -------------------------------------------------------------------------
def _external_tensors(g: onnx.GraphProto):
    yield from g.initializer
    for node in g.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t
            yield from a.tensors
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                yield from _external_tensors(sub)


def _read_external(model: onnx.ModelProto, base_dir: str | None, model_bytes: int) -> None:
    """Check every external-data entry, then (only if all pass) read them into the model."""
    plan = []
    total = model_bytes
    for t in _external_tensors(model.graph):
        if t.data_location != TensorProto.EXTERNAL:
            continue
        what = f"external data of tensor {t.name!r}"
        if base_dir is None:
            raise ModelError(f"{what}: a model with external data must be loaded from its file")
        path, offset, length = _external_entry(t, base_dir, what)
        want = stored_bytes(t, math.prod(t.dims))
        if length != want:
            raise ModelError(f"{what} declares {length:,} bytes, its shape {list(t.dims)} needs {want:,}")
        total += length
        MODEL_BYTES.check(total, "the ONNX model with its external data", ModelError)
        plan.append((t, path, offset, length))
    for t, path, offset, length in plan:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        if len(data) != length:
            raise ModelError(f"external data of tensor {t.name!r} is truncated")
        t.raw_data = data
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT


def _external_entry(t: TensorProto, base_dir: str, what: str) -> tuple[str, int, int]:
    entry = {e.key: e.value for e in t.external_data}
    location = entry.get("location", "")
    if not location or os.path.isabs(location):
        raise ModelError(f"{what} has location {location!r}: it must be a path relative to the model's folder")
    root = os.path.realpath(base_dir)
    path = os.path.realpath(os.path.join(root, location))
    if os.path.commonpath([root, path]) != root:
        raise ModelError(f"{what}: location {location!r} is outside the model's folder")
    if not os.path.isfile(path):
        raise ModelError(f"{what}: file {location!r} does not exist")
    size = os.path.getsize(path)
    try:
        offset = int(entry.get("offset", 0))
        length = int(entry["length"]) if "length" in entry else size - offset
    except ValueError:
        raise ModelError(f"{what}: offset and length must be integers") from None
    if offset < 0 or length < 0:
        raise ModelError(f"{what}: offset {offset} and length {length} must not be negative")
    if offset + length > size:
        raise ModelError(f"{what} declares {length:,} bytes at offset {offset:,}, but {location!r} holds "
                         f"{size:,} bytes")
    return path, offset, length


# ---- host control flow ---------------------------------------------------------------------
def check_loop_trips(trips: int, where: str) -> None:
    """A host Loop running `trips` iterations (nested loops: their product) must be bounded."""
    HOST_LOOP_TRIPS.check(int(trips), f"the trip count of {where}", ModelError)


def check_host_graph(model: onnx.ModelProto) -> None:
    """Refuse a Loop whose constant trip count (times those of the loops around it) is beyond
    HOST_LOOP_TRIPS. Trip counts only known at run time (a Loop whose body computes the
    condition it ends on) are left to the host's run-time bound."""
    _check_loops(model.graph, {}, 1)


def _check_loops(g: onnx.GraphProto, consts: dict[str, np.ndarray], outer_trips: int) -> None:
    from onnx import numpy_helper
    consts = dict(consts)
    for t in g.initializer:
        if t.data_type in (TensorProto.INT64, TensorProto.INT32) and math.prod(t.dims) == 1:
            consts[t.name] = numpy_helper.to_array(t)
    for node in g.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and math.prod(a.t.dims) == 1 and a.t.data_type in (TensorProto.INT64,
                                                                                           TensorProto.INT32):
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
                elif a.name == "value_int":
                    consts[node.output[0]] = np.array(a.i)
        trips = outer_trips
        # (a Loop whose body computes its condition ends when either does: tf2onnx's while
        # loops give INT64_MAX as "no limit" and stop on the condition, known at run time)
        if node.op_type == "Loop" and node.input and node.input[0] in consts and not loop_ends_on_condition(node):
            trips = outer_trips * max(int(np.asarray(consts[node.input[0]]).ravel()[0]), 0)
            check_loop_trips(trips, _node_label(node) + ("" if outer_trips == 1 else " (times its outer loops)"))
        for a in node.attribute:
            for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                _check_loops(sub, consts, trips)
