"""Operators the NPU has no kernel for, run in float on the host CPU by onnxruntime.

A HOST_FLOAT node carries one ONNX node (with its subgraphs, for If/Loop/Scan) as a
serialised wrapper model, and lists the wrapper outputs it produces: all the used outputs
of that ONNX node, computed by one run. In the int8 program its activation inputs are
dequantised, the wrapper runs in float32, float outputs are quantised to their scales and
integer or boolean outputs (ArgMax, Cast, comparisons) stay as they are: exactly what a
driver does around a CPU fallback.
"""
from __future__ import annotations

import base64
import math
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError, first_line
from ..limits import GRAPH_NODES, HOST_LOOP_TRIPS, HOST_SECONDS, META_DEPTH, TENSOR_ELEMENTS, limit_message

if TYPE_CHECKING:
    import onnx


@dataclass(frozen=True)
class HostFloatAttrs:
    onnx_model: str                      # base64 of the wrapper ModelProto (integer constants inside)
    outputs: tuple[str, ...]             # the wrapper outputs this IR node carries, in IR output order
    out_shapes: tuple[tuple[int, ...], ...]
    out_dtypes: tuple[str, ...]          # numpy names: float32, or int64 / bool / ... kept unquantised
    op_type: str                         # for reports
    reason: str = ""                     # why it is not on the NPU


@dataclass(frozen=True)
class HostFloatParams:
    out_scale: tuple[float, ...]         # per output; unused for outputs that stay unquantised
    out_zero_point: tuple[int, ...]
    out_dtype: tuple[str, ...]           # int8 / int16: quantised; float32, int64, bool...: as computed


DATA_SHAPED = frozenset({"NonZero", "NonMaxSuppression", "Unique", "Compress", "StringSplit",
                         "RegexFullMatch", "TfIdfVectorizer"})


@cache
def host_onnx_ops() -> frozenset[str]:
    """The operators a HOST_FLOAT wrapper may hold: the standard (default-domain) ONNX operators,
    except those whose output shape depends on the data (no static memory plan holds them; the
    importer refuses them too). No other domain, no model-local functions, no external data."""
    import onnx
    return frozenset(s.name for s in onnx.defs.get_all_schemas() if s.domain == "") - DATA_SHAPED


def check_model(onnx_model: str) -> None:
    """Refuse a wrapper model (base64) beyond what npukit emits: an operator outside host_onnx_ops(),
    another domain, local functions, external data, more than GRAPH_NODES nodes, a tensor
    beyond TENSOR_ELEMENTS or a Loop whose constant trip count is beyond HOST_LOOP_TRIPS."""
    import onnx
    try:
        model = onnx.ModelProto.FromString(base64.b64decode(onnx_model, validate=True))
    except Exception as e:  # noqa: BLE001 - protobuf and base64 report malformed data their own ways
        raise ModelError(f"host operator: not an ONNX model ({type(e).__name__})") from None
    if model.functions or any(o.domain not in ("", "ai.onnx") for o in model.opset_import):
        raise ModelError("host operator: the wrapper model has local functions or another operator domain")
    nodes = _check_graph(model.graph, {}, 0)
    GRAPH_NODES.check(nodes, "the host operator's graph", ModelError)


def _check_graph(graph: onnx.GraphProto, consts: dict, depth: int) -> int:
    """Nodes in `graph` and its subgraphs, each checked; `consts`: constant scalars in scope."""
    import onnx
    META_DEPTH.check(depth, "the nesting of the host operator's subgraphs", ModelError)
    consts = dict(consts)
    for t in graph.initializer:
        _check_tensor(t)
        if t.data_type == onnx.TensorProto.INT64 and math.prod(t.dims) == 1:
            consts[t.name] = int(onnx.numpy_helper.to_array(t).reshape(()))
    count = len(graph.node)
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in host_onnx_ops():
            raise ModelError(f"host operator: {node.op_type!r} (domain {node.domain!r}) is not an operator "
                             f"a host segment may run")
        for a in node.attribute:
            if a.HasField("t"):
                _check_tensor(a.t)
            if node.op_type == "Constant" and a.name == "value" and a.t.data_type == onnx.TensorProto.INT64 \
                    and math.prod(a.t.dims) == 1:
                consts[node.output[0]] = int(onnx.numpy_helper.to_array(a.t).reshape(()))
            for g in (*([a.g] if a.HasField("g") else []), *a.graphs):
                count += _check_graph(g, consts, depth + 1)
        trips = consts.get(node.input[0]) if node.op_type == "Loop" and node.input and node.input[0] \
            and not loop_ends_on_condition(node) else None
        if trips is not None:
            HOST_LOOP_TRIPS.check(trips, f"host Loop {node.name!r}: its trip count", ModelError)
    return count


def loop_ends_on_condition(node: onnx.NodeProto) -> bool:
    """Whether a Loop's body computes the condition it ends on (tf2onnx's while loops and
    map_fn: trip count INT64_MAX, "no limit", and `i + 1 < n` as the condition): its trip
    count is then a bound only known at run time, not the constant M. A condition the body
    passes through unchanged (Identity of its input, a constant) does not end it."""
    if node.op_type != "Loop" or len(node.input) < 2 or not node.input[1]:
        return False
    body = next((a.g for a in node.attribute if a.name == "body"), None)
    if body is None or not body.output or len(body.input) < 2:
        return False
    cond_out, cond_in = body.output[0].name, body.input[1].name
    if cond_out == cond_in:
        return False
    maker = next((n for n in body.node if cond_out in n.output), None)
    return maker is not None and maker.op_type != "Constant" and \
        not (maker.op_type == "Identity" and list(maker.input) == [cond_in])


def _check_tensor(t: onnx.TensorProto) -> None:
    from onnx import TensorProto
    if t.data_location == TensorProto.EXTERNAL or t.external_data:
        raise ModelError(f"host operator: tensor {t.name!r} refers to external data")
    TENSOR_ELEMENTS.check(math.prod(t.dims), f"host operator tensor {t.name!r}", ModelError)


@lru_cache(maxsize=256)
def _session(onnx_model: str):
    import onnxruntime as ort

    ort.set_default_logger_severity(4)     # failures are raised, not logged
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4
    raw = base64.b64decode(onnx_model)
    try:
        sess = ort.InferenceSession(raw, opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime reports every refusal as its own type
        raise ModelError(f"onnxruntime cannot load a host operator: {first_line(e)}") from None
    types = [_np_type(i.type) for i in sess.get_inputs()]
    # Only a Loop may not end (every other operator's work is bounded by its sizes). A Loop node
    # stores its operator name verbatim in the model's bytes, so their absence rules it out.
    may_not_end = b"Loop" in raw
    return sess, [i.name for i in sess.get_inputs()], types, may_not_end


def _np_type(ort_type: str) -> np.dtype:
    name = ort_type[len("tensor("):-1] if ort_type.startswith("tensor(") else "float"
    return np.dtype({"float": "float32", "double": "float64", "float16": "float16"}.get(name, name))


def output_types(attrs: HostFloatAttrs) -> list[np.dtype]:
    """The ONNX element types of the outputs this node carries (before float32 conversion)."""
    sess = _session(attrs.onnx_model)[0]
    types = {o.name: _np_type(o.type) for o in sess.get_outputs()}
    return [types[n] for n in attrs.outputs]


def run_float(attrs: HostFloatAttrs, ins: list[np.ndarray]) -> list[np.ndarray]:
    """The wrapped ONNX node on real inputs; returns the outputs this IR node carries."""
    sess, names, types, may_not_end = _session(attrs.onnx_model)
    if len(ins) != len(names):
        raise ModelError(f"host {attrs.op_type} expects {len(names)} inputs, got {len(ins)}")
    feeds = {n: np.asarray(x).astype(t, copy=False) for n, x, t in zip(names, ins, types)}
    results = _run_bounded(sess, attrs, feeds) if may_not_end else _run(sess, attrs, feeds, None)
    out = [np.asarray(r, np.float32) if np.asarray(r).dtype.kind == "f" else np.asarray(r) for r in results]
    for y, want, name in zip(out, attrs.out_shapes, attrs.outputs):
        if tuple(y.shape) != tuple(want):       # a data-dependent shape the memory plan cannot hold
            raise ModelError(f"host operator {attrs.op_type} made {name} of shape {list(y.shape)}, "
                             f"compiled for {list(want)}: its shape follows input values (bind the inputs "
                             f"it reads with input values)")
    return out


def _run_bounded(sess, attrs: HostFloatAttrs, feeds: dict) -> list:
    """sess.run, ended by RunOptions.terminate when it takes longer than HOST_SECONDS (a Loop
    whose trip count or condition comes from the data may not end)."""
    import onnxruntime as ort

    opts = ort.RunOptions()
    done = threading.Event()

    def stop_at_limit() -> None:
        if not done.wait(HOST_SECONDS.value):
            opts.terminate = True

    timer = threading.Thread(target=stop_at_limit, daemon=True)
    timer.start()
    try:
        return _run(sess, attrs, feeds, opts)
    finally:
        done.set()


def _run(sess, attrs: HostFloatAttrs, feeds: dict, opts) -> list:
    """sess.run; its failures (and its end by `opts.terminate`) as one-line ModelErrors."""
    try:
        return sess.run(list(attrs.outputs), feeds, opts)
    except Exception as e:  # noqa: BLE001 - onnxruntime reports every failure as its own type
        if opts is not None and opts.terminate:
            raise ModelError(limit_message(HOST_SECONDS, HOST_SECONDS.value,
                                           f"host operator {attrs.op_type}: its run time")) from None
        raise ModelError(f"host operator {attrs.op_type} failed in onnxruntime: {first_line(e)}") from None


def run_quantised(attrs: HostFloatAttrs, params: HostFloatParams, ins: list[np.ndarray],
                  in_q: list) -> list[np.ndarray]:
    """Dequantise the integer activation inputs, run in float, quantise the float outputs."""
    ys = run_float(attrs, dequantise_inputs(ins, in_q))
    return quantise_outputs(ys, params.out_scale, params.out_zero_point, params.out_dtype)


def dequantise_inputs(ins: list[np.ndarray], in_q: list) -> list[np.ndarray]:
    """A host node's side of the boundary, in: quantised integer activations as real values;
    float and unquantised inputs as they are."""
    return [x if q is None or np.asarray(x).dtype.kind == "f"
            else (np.asarray(x, np.float32) - np.float32(q.zero_point[0])) * np.float32(q.scale[0])
            for x, q in zip(ins, in_q)]


def quantise_outputs(ys: list[np.ndarray], scales, zero_points, dtypes) -> list[np.ndarray]:
    """A host node's side of the boundary, out: float results bound for a quantised tensor
    rounded to its scale and saturated; the others held in their tensor's type."""
    out = []
    for y, s, zp, dtype in zip(ys, scales, zero_points, dtypes):
        if y.dtype.kind != "f" or dtype not in ("int8", "int16", "uint8"):
            out.append(y.astype(dtype, copy=False))
            continue
        info = np.iinfo(np.dtype(dtype))
        q = np.round(y / np.float32(s)) + zp
        out.append(np.clip(q, info.min, info.max).astype(dtype))
    return out


def host_float_only(g) -> frozenset[str]:
    """Activations that never meet the NPU: made by a host float node, a graph input or a
    reshape (an alias) of such a tensor, and read only by host float nodes, such reshapes or
    the caller (graph outputs). They stay float32 instead of crossing an int8 boundary."""
    from ..ir.graph import Op

    host = (Op.HOST_FLOAT, Op.HOST_TFLITE)
    if not any(n.op in host for n in g.nodes):
        return frozenset()
    producer = {out: n for n in g.nodes for out in n.outputs}
    readers: dict[str, list] = {}
    for n in g.nodes:
        for t in n.inputs:
            readers.setdefault(t, []).append(n)
    floats = {t for t in g.tensors if not g.tensors[t].is_const and g.tensors[t].dtype.value == "float32"
              and (t in g.inputs or producer.get(t) is not None and producer[t].op in (*host, Op.RESHAPE))}
    changed = True
    while changed:
        changed = False
        for t in list(floats):
            p = producer.get(t)
            ok = all(r.op in host or (r.op is Op.RESHAPE and r.outputs[0] in floats)
                     for r in readers.get(t, []))
            ok = ok and (p is None or p.op in host or p.inputs[0] in floats)
            ok = ok and bool(readers.get(t) or t in g.outputs)
            if not ok:
                floats.discard(t)
                changed = True
    return frozenset(floats)


ORT_MIN_OPSET = 7      # the oldest default-domain opset onnxruntime loads


def at_ort_opset(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """`model` converted to opset ORT_MIN_OPSET by onnx's version converter; None where the
    converter has no adapter for one of its nodes."""
    from onnx import version_converter
    try:
        return version_converter.convert_version(model, ORT_MIN_OPSET)
    except Exception:  # noqa: BLE001 - the converter raises several kinds
        return None


def wrapper_model(node: onnx.NodeProto, inputs: list[tuple[str, np.dtype]], consts: dict[str, np.ndarray],
                  opset: int, ir_version: int, domains: dict[str, int] | None = None) -> str:
    """A model of `node` alone (base64): `inputs` (name, dtype) are its feeds in order, `consts`
    live inside. Output types are left for onnxruntime to infer. A node of an opset older
    than onnxruntime's oldest (7) is converted to that opset (onnx's version converter).
    `domains`: the opsets of other domains the node needs ({"ai.onnx.ml": 3})."""
    from onnx import helper, numpy_helper

    feeds = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(t)), None) for n, t in inputs]
    outs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in consts.items()]
    model = helper.make_model(helper.make_graph([node], "host", feeds, outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", opset)]
                              + [helper.make_opsetid(d, v) for d, v in (domains or {}).items()])
    if opset < ORT_MIN_OPSET:       # (no adapter: onnxruntime names the operator it cannot load)
        model = at_ort_opset(model) or model
    model.ir_version = ir_version
    return base64.b64encode(model.SerializeToString()).decode("ascii")
