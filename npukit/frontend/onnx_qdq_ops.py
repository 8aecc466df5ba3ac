"""QOperator-format ONNX nodes (QLinearConv, QLinearMatMul, com.microsoft QLinearAdd, QGemm,
...) expanded into DequantizeLinear -> float operator -> QuantizeLinear, the QDQ form the
rest of the quantised-ONNX import reads. The expansion only renames; the scales and zero
points stay the node's own. An int32 bias (QLinearConv, QGemm) is dequantised at
input scale x weight scale, which is how those operators define it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UnsupportedOpError
from .onnx_const import attributes


@dataclass(frozen=True)
class QOp:
    float_op: str
    triples: tuple[int, ...]        # input index of each (value, scale, zero point) triple
    out: int | None                 # input index of the output (scale, zero point); None: variadic
    bias: int | None = None         # input index of an int32 bias


QOPERATORS = {
    "QLinearConv": QOp("Conv", (0, 3), 6, 8),
    "QLinearMatMul": QOp("MatMul", (0, 3), 6),
    "QLinearAdd": QOp("Add", (0, 3), 6),
    "QLinearMul": QOp("Mul", (0, 3), 6),
    "QGemm": QOp("Gemm", (0, 3), 7, 6),
    "QLinearAveragePool": QOp("AveragePool", (0,), 3),
    "QLinearGlobalAveragePool": QOp("GlobalAveragePool", (0,), 3),
    "QLinearSigmoid": QOp("Sigmoid", (0,), 3),
    "QLinearLeakyRelu": QOp("LeakyRelu", (0,), 3),
    "QLinearSoftmax": QOp("Softmax", (0,), 3),
    "QLinearConcat": QOp("Concat", (), None),
}


def _weight_axis(op: str, at: dict) -> int:
    """The output-channel axis of the second operand (per-channel weight scales)."""
    if op == "Conv":
        return 0
    if op == "Gemm":
        return 0 if at.get("transB", 0) else 1
    return 1                                   # MatMul: B is [K, N]


class _Expander:
    def __init__(self, consts: dict[str, np.ndarray]):
        self.consts = consts
        self.nodes: list[onnx.NodeProto] = []

    def const(self, array: np.ndarray, name: str) -> str:
        self.consts[name] = array
        self.nodes.append(helper.make_node("Constant", [], [name], name=name,
                                           value=numpy_helper.from_array(array, name)))
        return name

    def dq(self, value: str, scale: str, zp: str, out: str, axis: int | None = None) -> str:
        kw: dict[str, Any] = {} if axis is None else {"axis": axis}
        self.nodes.append(helper.make_node("DequantizeLinear", [value, scale, zp] if zp else [value, scale],
                                           [out], name=out, **kw))
        return out

    def expand(self, node: onnx.NodeProto) -> None:
        spec = QOPERATORS[node.op_type]
        base = node.name or node.output[0]
        ins = list(node.input) + [""] * 12
        at = {k: v for k, v in attributes(node).items()}
        if at.pop("channels_last", 0):
            raise UnsupportedOpError(f"ONNX node {base!r} ({node.op_type}): channels_last is not supported")
        triples = spec.triples if spec.out is not None else tuple(range(2, len(node.input), 3))
        floats = []
        for k, i in enumerate(triples):
            scale = self.consts.get(ins[i + 1])
            axis = _weight_axis(spec.float_op, at) if k == 1 and scale is not None and scale.size > 1 else None
            floats.append(self.dq(ins[i], ins[i + 1], ins[i + 2], f"{base}/in{k}", axis))
        if spec.bias is not None and ins[spec.bias]:
            xs = np.float32(self.consts[ins[1]].ravel()[0])
            ws = np.asarray(self.consts[ins[4]], np.float32).ravel()
            bscale = (xs * ws * np.float32(at.get("alpha", 1.0))).astype(np.float32)
            s = self.const(bscale if bscale.size > 1 else bscale.reshape(()), f"{base}/bias_scale")
            floats.append(self.dq(ins[spec.bias], s, "", f"{base}/bias", 0 if bscale.size > 1 else None))
        out_scale, out_zp = (ins[spec.out], ins[spec.out + 1]) if spec.out is not None else (ins[0], ins[1])
        if spec.float_op == "Gemm" and not out_scale:          # QGemm without y_scale: float output
            self.nodes.append(helper.make_node("Gemm", floats, [node.output[0]], name=base, **at))
            return
        y = f"{base}/float"
        self.nodes.append(helper.make_node(spec.float_op, floats, [y], name=base, **at))
        q_ins = [y, out_scale, out_zp] if out_zp else [y, out_scale]
        self.nodes.append(helper.make_node("QuantizeLinear", q_ins, [node.output[0]], name=base + "/quantize"))


def expand_qoperator(nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """`nodes` with every QOperator node replaced by its DQ -> op -> Q expansion."""
    ex = _Expander(consts)
    for node in nodes:
        if node.op_type in QOPERATORS:
            ex.expand(node)
        else:
            ex.nodes.append(node)
    return ex.nodes
