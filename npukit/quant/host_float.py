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
from onnx import helper

from ..errors import ModelError, UnsupportedOpError


@dataclass(frozen=True)
class HostFloatAttrs:
    onnx_node: str                 # base64 of the NodeProto (inputs renamed in0, in1, ...)
    output_index: int              # which ONNX output this IR node carries
    out_shape: tuple[int, ...]
    opset: int
    op_type: str                   # for reports
    input_dtypes: tuple[str, ...] = ()   # numpy dtype of each present input (int64 pads stay int64)


@dataclass(frozen=True)
class HostFloatParams:
    out_scale: float
    out_zero_point: int
    out_dtype: str = "int8"


def make_attrs(node: onnx.NodeProto, output_index: int, example_inputs: list[np.ndarray | None],
               opset: int) -> HostFloatAttrs:
    """Attributes for `node` (inputs already renamed in0..inN, '' for absent optional ones);
    the output shape comes from running it once on `example_inputs`."""
    text = base64.b64encode(node.SerializeToString()).decode("ascii")
    dtypes = tuple(np.asarray(x).dtype.name for x in example_inputs if x is not None)
    probe = HostFloatAttrs(text, output_index, (), opset, node.op_type, dtypes)
    out = run_float(probe, example_inputs)
    if out.dtype != np.float32:
        raise UnsupportedOpError(f"host operator {node.op_type} output {output_index} is {out.dtype}, "
                                 "only float outputs can run on the host")
    return HostFloatAttrs(text, output_index, tuple(int(d) for d in out.shape), opset, node.op_type, dtypes)


@lru_cache(maxsize=64)
def _evaluator(onnx_node: str, opset: int):
    from onnx.reference import ReferenceEvaluator

    node = onnx.NodeProto()
    node.ParseFromString(base64.b64decode(onnx_node))
    ins = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.input if n]
    outs = [helper.make_tensor_value_info(n, onnx.TensorProto.UNDEFINED, None) for n in node.output if n]
    model = helper.make_model(helper.make_graph([node], "host", ins, outs),
                              opset_imports=[helper.make_opsetid("", opset)])
    return ReferenceEvaluator(model), [n for n in node.input if n], [n for n in node.output]


def run_float(attrs: HostFloatAttrs, ins: list[np.ndarray | None]) -> np.ndarray:
    """The ONNX node on float (or integer constant) inputs; returns output `output_index`."""
    evaluator, names, outputs = _evaluator(attrs.onnx_node, attrs.opset)
    present = [x for x in ins if x is not None]
    if len(present) != len(names):
        raise ModelError(f"host {attrs.op_type} expects {len(names)} inputs, got {len(present)}")
    dtypes = attrs.input_dtypes or tuple("float32" for _ in present)
    feeds = {n: np.asarray(x).astype(d) for n, x, d in zip(names, present, dtypes)}
    result = evaluator.run([outputs[attrs.output_index]], feeds)[0]
    return np.asarray(result, dtype=np.float32) if np.asarray(result).dtype.kind == "f" else np.asarray(result)


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
    """Activations that only host float nodes touch (made by one, or a graph input, and read
    only by them): they stay float32 instead of crossing an int8 boundary."""
    from ..ir.graph import Op

    host = [n for n in g.nodes if n.op is Op.HOST_FLOAT]
    if not host:
        return frozenset()
    made_on_host = {n.outputs[0] for n in host} | set(g.inputs)
    out = set()
    for name in made_on_host:
        readers = g.consumers(name)
        if readers and name not in g.outputs and all(r.op is Op.HOST_FLOAT for r in readers):
            out.add(name)
    return frozenset(out)
