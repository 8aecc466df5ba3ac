"""A float16 ONNX graph read as the float32 graph it rounds.

Keras mixed precision and `onnxconverter_common.float16` exports compute in float16: weights,
activations and often the graph's inputs and outputs are FLOAT16, behind a `Cast(to=FLOAT16)`
of the first float activation. The NPU quantises every float activation to int8 (or int16)
whichever float type the file names, so such a model is imported as the same graph in
float32: float16 initializers, `Constant` / `ConstantOfShape` values, `Cast` targets and
declared types become float32 (in subgraphs too). What is lost is only float16's own
rounding between layers, far below an int8 step; calibration and the float reference run
the float32 graph. Inputs and outputs are float32 to the caller (`run` takes float16 input
as it does for any float input).
"""
from __future__ import annotations

import onnx
from onnx import numpy_helper

_F16 = onnx.TensorProto.FLOAT16
_F32 = onnx.TensorProto.FLOAT


def _tensor(t: onnx.TensorProto) -> bool:
    if t.data_type != _F16:
        return False
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype("float32"), t.name))
    return True


def _value_info(vi: onnx.ValueInfoProto) -> bool:
    tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
    if tt is None or tt.elem_type != _F16:
        return False
    tt.elem_type = _F32
    return True


def _graph(g: onnx.GraphProto) -> bool:
    changed = False
    for t in g.initializer:
        changed |= _tensor(t)
    for vi in (*g.input, *g.output, *g.value_info):
        changed |= _value_info(vi)
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                changed |= _tensor(a.t)
            elif a.type == onnx.AttributeProto.GRAPH:
                changed |= _graph(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sub in a.graphs:
                    changed |= _graph(sub)
            elif n.op_type == "Cast" and a.name == "to" and a.i == _F16:
                a.i = _F32
                changed = True
    return changed


def has_float16(g: onnx.GraphProto) -> bool:
    """Whether a float16 tensor, declared type or `Cast` target appears in `g` (or its subgraphs)."""
    if any(t.data_type == _F16 for t in g.initializer):
        return True
    if any(vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type == _F16
           for vi in (*g.input, *g.output, *g.value_info)):
        return True
    for n in g.node:
        for a in n.attribute:
            if (a.type == onnx.AttributeProto.TENSOR and a.t.data_type == _F16) \
                    or (n.op_type == "Cast" and a.name == "to" and a.i == _F16) \
                    or (a.type == onnx.AttributeProto.GRAPH and has_float16(a.g)) \
                    or (a.type == onnx.AttributeProto.GRAPHS and any(has_float16(s) for s in a.graphs)):
                return True
    return False


def float16_as_float32(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` computing in float32 where it computed in float16 (the model itself
    when it has no float16)."""
    if not has_float16(model.graph):
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    _graph(out.graph)
    return out
