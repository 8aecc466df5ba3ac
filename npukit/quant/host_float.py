"""Operators the NPU has no kernel for, run in float on the host CPU (LSTM, Sqrt, reflect Pad...).

A HOST_FLOAT node carries one ONNX node (serialised, base64) and which of its outputs it
produces. In the int8 program its activation inputs are dequantised, the ONNX node runs in
float32 through onnx's reference evaluator, and the chosen output is quantised to the
node's output scale: exactly what a driver does around a CPU fallback.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError, UnsupportedOpError


@dataclass(frozen=True)
class HostFloatAttrs:
    onnx_model: str                # base64 of a one-node ModelProto: inputs in0.., integer constants inside
    output_index: int              # which ONNX output this IR node carries
    out_shape: tuple[int, ...]
    op_type: str                   # for reports


@dataclass(frozen=True)
class HostFloatParams:
    out_scale: float
    out_zero_point: int
    out_dtype: str = "int8"        # float32: consumed only by host float nodes, never quantised


def make_attrs(node: onnx.NodeProto, output_index: int, inputs: list[np.ndarray | None],
               embedded: dict[str, np.ndarray], opset: int) -> HostFloatAttrs:
    """Attributes for `node`, whose inputs are renamed: those in `embedded` (integer constants:
    pads, axes, indices) live inside the serialised model, the others are IR inputs in order.
    The output shape comes from running it once on `inputs` (examples of the IR inputs)."""
    feeds = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None)
             for n in node.input if n and n not in embedded]
    outs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output if n]
    inits = [numpy_helper.from_array(v, n) for n, v in embedded.items()]
    model = helper.make_model(helper.make_graph([node], "host", feeds, outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    text = base64.b64encode(model.SerializeToString()).decode("ascii")
    out = run_float(HostFloatAttrs(text, output_index, (), node.op_type), inputs)
    if out.dtype != np.float32:
        raise UnsupportedOpError(f"host operator {node.op_type} output {output_index} is {out.dtype}, "
                                 "only float outputs can run on the host")
    return HostFloatAttrs(text, output_index, tuple(int(d) for d in out.shape), node.op_type)


@lru_cache(maxsize=64)
def _evaluator(onnx_model: str):
    from onnx.reference import ReferenceEvaluator

    model = onnx.ModelProto()
    model.ParseFromString(base64.b64decode(onnx_model))
    return ReferenceEvaluator(model), [i.name for i in model.graph.input], [o.name for o in model.graph.output]


def run_float(attrs: HostFloatAttrs, ins: list[np.ndarray]) -> np.ndarray:
    """The ONNX node on float inputs; returns its output `output_index`."""
    evaluator, names, _ = _evaluator(attrs.onnx_model)
    if len(ins) != len(names):
        raise ModelError(f"host {attrs.op_type} expects {len(names)} inputs, got {len(ins)}")
    feeds = {n: np.asarray(x, np.float32) for n, x in zip(names, ins)}
    result = np.asarray(evaluator.run([f"out{attrs.output_index}"], feeds)[0])
    return result.astype(np.float32) if result.dtype.kind == "f" else result


def run_quantised(attrs: HostFloatAttrs, params: HostFloatParams, ins: list[np.ndarray],
                  in_q: list) -> np.ndarray:
    """Dequantise the integer activation inputs, run in float, quantise the output."""
    real = []
    for x, q in zip(ins, in_q):
        if q is None or x.dtype.kind == "f":
            real.append(x)
        else:
            real.append(((x.astype(np.float32) - np.float32(q.zero_point[0])) * np.float32(q.scale[0])))
    y = run_float(attrs, real)
    if params.out_dtype == "float32":
        return y
    info = np.iinfo(np.dtype(params.out_dtype))
    q = np.round(y / np.float32(params.out_scale)) + params.out_zero_point
    return np.clip(q, info.min, info.max).astype(params.out_dtype)


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
