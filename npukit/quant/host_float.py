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
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import onnx

from ..errors import ModelError


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


@lru_cache(maxsize=256)
def _session(onnx_model: str):
    import onnxruntime as ort

    ort.set_default_logger_severity(4)     # failures are raised, not logged
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 4
    try:
        sess = ort.InferenceSession(base64.b64decode(onnx_model), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime reports every refusal as its own type
        raise ModelError(f"onnxruntime cannot load a host operator: {str(e).splitlines()[0]}") from None
    types = [_np_type(i.type) for i in sess.get_inputs()]
    return sess, [i.name for i in sess.get_inputs()], types


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
    sess, names, types = _session(attrs.onnx_model)
    if len(ins) != len(names):
        raise ModelError(f"host {attrs.op_type} expects {len(names)} inputs, got {len(ins)}")
    feeds = {n: np.asarray(x).astype(t, copy=False) for n, x, t in zip(names, ins, types)}
    try:
        results = sess.run(list(attrs.outputs), feeds)
    except Exception as e:  # noqa: BLE001
        raise ModelError(f"host operator {attrs.op_type} failed in onnxruntime: "
                         f"{str(e).splitlines()[0]}") from None
    out = [np.asarray(r, np.float32) if np.asarray(r).dtype.kind == "f" else np.asarray(r) for r in results]
    for y, want, name in zip(out, attrs.out_shapes, attrs.outputs):
        if tuple(y.shape) != tuple(want):       # a data-dependent shape the memory plan cannot hold
            raise ModelError(f"host operator {attrs.op_type} made {name} of shape {list(y.shape)}, "
                             f"compiled for {list(want)}")
    return out


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
            ok = ok and (readers.get(t) or t in g.outputs)
            if not ok:
                floats.discard(t)
                changed = True
    return frozenset(floats)


def wrapper_model(node: onnx.NodeProto, inputs: list[tuple[str, np.dtype]], consts: dict[str, np.ndarray],
                  opset: int, ir_version: int) -> str:
    """A model of `node` alone (base64): `inputs` (name, dtype) are its feeds in order, `consts`
    live inside. Output types are left for onnxruntime to infer."""
    from onnx import helper, numpy_helper

    feeds = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(np.dtype(t)), None) for n, t in inputs]
    outs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in consts.items()]
    model = helper.make_model(helper.make_graph([node], "host", feeds, outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    return base64.b64encode(model.SerializeToString()).decode("ascii")
