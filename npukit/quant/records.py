"""The closed set of node records a binary's host segment may carry.

A host segment is one quantised node the host runs. In the binary it is a typed record:
`kind` (the operator, an `Op` value), the node's name, `attrs` (the fields of that kind's
attribute record), `params_kind` and `params` (a tag from `PARAMS` and the fields of that
record, or null), and its input and output tensors. `KINDS` lists, per kind, the attribute
record and the parameter records it may have; isa.serial writes and reads the fields by
their declared types. No class name or import path is in the binary: a new record class
gets a tag here, and a changed field list changes the format version (isa.container).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BinaryError
from ..ir import graph as ir
from ..ir.graph import Node, Op
from ..isa.serial import from_data, to_data
from ..kernels import host_float, host_tflite
from ..kernels import kernels_gru as kg
from ..kernels import kernels_lstm as kl
from ..kernels import kernels_mxu as kx
from ..kernels import kernels_relu16 as kr
from ..kernels import kernels_transformer as kt
from ..kernels import kernels_vpu as kv
from ..kernels import kernels_vpu16 as k16
from ..kernels import kernels_vpu_compare as kc
from ..kernels import kernels_wide as kw
from .quantize import LutParams, PoolParams

# Parameter records by their tag in the binary.
PARAMS: dict[str, type] = {
    "conv": kx.ConvParams, "add": kv.AddParams, "mul": kv.MulParams, "prelu": kv.PreluParams,
    "requantize": kv.RequantParams, "mean": kv.MeanParams, "sum": kv.SumParams,
    "softmax": kv.SoftmaxParams, "softmax_table": kv.SoftmaxTableParams, "lut": LutParams,
    "pool": PoolParams, "compare": kc.ComparisonParams, "logical": kc.LogicalParams,
    "sigmoid16": k16.Sigmoid16Params, "lut16": k16.Lut16Params, "softmax16": k16.Softmax16Params, "magnitude": kw.MagnitudeParams,
    "relu16": kr.Relu16Params,
    "matmul": kt.MatMulParams, "layer_norm": kt.LayerNormParams,
    "host_float": host_float.HostFloatParams, "host_tflite": host_tflite.HostTfliteParams,
    "lstm": kl.LstmParams,
    "gru": kg.GruParams,
}
_TAG = {cls: tag for tag, cls in PARAMS.items()}


@dataclass(frozen=True)
class SegmentKind:
    attrs: type                   # the attribute record
    params: tuple[str, ...]       # the parameter records it may carry (tags of PARAMS)
    optional: bool = False        # it may carry none


def _kinds() -> dict[Op, SegmentKind]:
    k = SegmentKind
    lut = k(ir.NoAttrs, ("lut",))
    unit = k(ir.NoAttrs, ("lut", "sigmoid16"))     # int8: a LUT; int16: LiteRT's 16x8 kernel
    out = {
        Op.CONV2D: k(ir.ConvAttrs, ("conv",)), Op.FULLY_CONNECTED: k(ir.FcAttrs, ("conv",)),
        Op.ADD: k(ir.EltwiseAttrs, ("add",)), Op.SUB: k(ir.EltwiseAttrs, ("add",)),
        Op.MUL: k(ir.EltwiseAttrs, ("mul",)),
        Op.MAXIMUM: k(ir.EltwiseAttrs, ()), Op.MINIMUM: k(ir.EltwiseAttrs, ()),
        Op.MAX_POOL: k(ir.PoolAttrs, ("pool",)), Op.AVG_POOL: k(ir.PoolAttrs, ("pool",)),
        Op.MEAN: k(ir.MeanAttrs, ("mean",)), Op.REDUCE_SUM: k(ir.MeanAttrs, ("sum",)),
        Op.REDUCE_MAX: k(ir.MeanAttrs, ()), Op.REDUCE_MIN: k(ir.MeanAttrs, ()),
        Op.COMPARE: k(ir.CompareAttrs, ("compare",)), Op.LOGICAL: k(ir.LogicalAttrs, ("logical",)),
        Op.LOGICAL_NOT: lut, Op.WHERE: k(ir.NoAttrs, ()), Op.ARG_MAX: k(ir.ArgMaxAttrs, ()),
        Op.CLAMP: k(ir.Clamp, ("lut", "relu16")), Op.LEAKY_RELU: k(ir.LeakyReluAttrs, ("lut",)),
        Op.PRELU: k(ir.NoAttrs, ("prelu",)), Op.SIGMOID: unit, Op.TANH: unit, Op.HARD_SWISH: k(ir.NoAttrs, ("lut", "lut16")),
        Op.UNARY: k(ir.UnaryAttrs, ("lut", "lut16")),
        Op.SOFTMAX: k(ir.SoftmaxAttrs, ("softmax", "softmax_table", "softmax16")),
        Op.CONCAT: k(ir.ConcatAttrs, ()), Op.SLICE: k(ir.SliceAttrs, ()), Op.PAD: k(ir.PadAttrs, ()),
        Op.RESHAPE: k(ir.ReshapeAttrs, ()), Op.TRANSPOSE: k(ir.TransposeAttrs, ()),
        Op.RESIZE: k(ir.ResizeAttrs, ()), Op.QUANTIZE: k(ir.QuantizeAttrs, ("requantize",), True),
        Op.DEQUANTIZE: k(ir.NoAttrs, ()),
        Op.MATMUL: k(ir.MatMulAttrs, ("matmul",)), Op.LAYER_NORM: k(ir.LayerNormAttrs, ("layer_norm",)),
        Op.GELU: k(ir.GeluAttrs, ("lut", "lut16")), Op.GATHER: k(ir.GatherAttrs, ()),
        Op.MAGNITUDE: k(ir.MagnitudeAttrs, ("magnitude",)),
        Op.HOST_FLOAT: k(host_float.HostFloatAttrs, ("host_float",)),
        Op.HOST_TFLITE: k(host_tflite.HostTfliteAttrs, ("host_tflite",), True),
        Op.LSTM: k(ir.LstmAttrs, ("lstm",)),
        Op.GRU: k(ir.GruAttrs, ("gru",)),
    }
    assert set(out) == set(Op), f"host segment kinds missing for {set(Op) - set(out)}"
    return out


KINDS = _kinds()


def encode_node(node: Node, blobs: list[np.ndarray]) -> dict[str, Any]:
    """The typed record fields of a quantised node (its tensors are the caller's)."""
    kind = KINDS[node.op]
    attrs = kind.attrs() if isinstance(node.attrs, ir.NoAttrs) and kind.attrs is not ir.NoAttrs \
        else node.attrs      # a record whose fields all default (QUANTIZE's dtype): its defaults
    assert type(attrs) is kind.attrs, f"{node.name}: {node.op.value} with {type(node.attrs).__name__}"
    tag = None if node.params is None else _TAG[type(node.params)]
    assert tag in kind.params or tag is None and (kind.optional or not kind.params), \
        f"{node.name}: {node.op.value} with {type(node.params).__name__}"
    return {"kind": node.op.value, "name": node.name, "attrs": to_data(attrs, blobs),
            "params_kind": tag, "params": None if tag is None else to_data(node.params, blobs)}


def decode_node(rec: dict[str, Any], blobs: list[np.ndarray]) -> Node:
    """The node of a host segment record (isa.validate has checked its envelope): its kind
    one of KINDS, its attributes and parameters records of that kind, field by field."""
    try:
        op = Op(rec["kind"])
    except ValueError:
        raise BinaryError(f"kind {rec['kind']!r} is not an operator a host segment may run") from None
    kind = KINDS[op]
    attrs = from_data(kind.attrs, rec["attrs"], blobs, "attrs")
    tag = rec["params_kind"]
    if tag is None:
        if kind.params and not kind.optional:
            raise BinaryError(f"a {op.value} segment needs parameters ({' or '.join(kind.params)})")
        if rec["params"] is not None:
            raise BinaryError("params without a params_kind")
        params = None
    else:
        if tag not in kind.params:
            raise BinaryError(f"params_kind {tag!r} is not one a {op.value} segment takes "
                              f"({', '.join(kind.params) or 'none'})")
        params = from_data(PARAMS[tag], rec["params"], blobs, "params")
    n_in, n_out = len(rec["inputs"]), len(rec["outputs"])
    return Node(op, rec["name"], tuple(f"in{i}" for i in range(n_in)), tuple(f"out{i}" for i in range(n_out)),
                attrs, params)
