"""Run a single-operator TFLite model through npukit's integer kernels (the other side of a
LiteRT comparison).

`read_single_op` unpacks the flatbuffer into plain tensors and options; `RUNNERS` maps a
builtin operator name to a function (SingleOp, inputs) -> outputs. More operators register
themselves with `register("NAME")`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from npukit.errors import ModelError, UnsupportedOpError
from npukit.ir.graph import Clamp, ConvAttrs
from npukit.kernels import kernels_mxu as mxu

_NP_TYPES = {tfl.TensorType.FLOAT32: np.float32, tfl.TensorType.INT32: np.int32,
             tfl.TensorType.INT64: np.int64, tfl.TensorType.UINT8: np.uint8,
             tfl.TensorType.INT8: np.int8, tfl.TensorType.INT16: np.int16,
             tfl.TensorType.BOOL: np.bool_}
_OP_NAMES = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}


@dataclass(frozen=True)
class OpTensor:
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int
    data: np.ndarray | None

    @property
    def s(self) -> float:
        return self.scale[0]

    @property
    def zp(self) -> int:
        return self.zero_point[0]

    @property
    def hw(self) -> tuple[int, int]:
        """The spatial dims of an NHWC activation or OHWI weight."""
        return self.shape[1], self.shape[2]

    @property
    def const(self) -> np.ndarray:
        """A constant's array (the tensor has a buffer)."""
        assert self.data is not None, "not a constant tensor"
        return self.data


@dataclass(frozen=True)
class SingleOp:
    op: str
    options: Any
    inputs: tuple[OpTensor | None, ...]    # None for an omitted optional operand
    outputs: tuple[OpTensor, ...]

    def operand(self, i: int) -> OpTensor:
        """Input i, which the operator requires."""
        t = self.inputs[i]
        assert t is not None, f"{self.op} needs input {i}"
        return t

    def optional(self, i: int) -> OpTensor | None:
        """Input i, None when omitted or absent."""
        return self.inputs[i] if i < len(self.inputs) else None


def read_single_op(model_bytes: bytes) -> SingleOp:
    """The one operator of a single-op model, with its tensors' quantisation and constants."""
    try:
        model = tfl.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    except Exception as e:  # flatbuffers raises assorted low-level errors on garbage
        raise ModelError(f"not a readable TFLite flatbuffer: {e}") from None
    graph = model.subgraphs[0]
    if len(graph.operators) != 1:
        raise ModelError(f"expected a single-operator model, found {len(graph.operators)} operators")
    op = graph.operators[0]
    code = model.operatorCodes[op.opcodeIndex]
    name = _OP_NAMES.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")

    def output(i: int) -> OpTensor:
        t = tensor(i)
        if t is None:
            raise ModelError(f"{name}: output {i} is not a tensor")
        return t

    def tensor(i: int) -> OpTensor | None:
        if i < 0:
            return None
        t = graph.tensors[i]
        dtype = np.dtype(_NP_TYPES[t.type])
        shape = tuple(int(d) for d in t.shape)
        buf = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        data = None
        if buf is not None and len(buf):
            data = np.frombuffer(np.asarray(buf, dtype=np.uint8).tobytes(), dtype=dtype).reshape(shape)
        q = t.quantization
        scale = tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else ()))
        zps = tuple(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else ()))
        return OpTensor(shape, dtype, scale, zps, int(q.quantizedDimension) if q else 0, data)

    return SingleOp(name, op.builtinOptions, tuple(tensor(i) for i in op.inputs),
                    tuple(output(i) for i in op.outputs))


Runner = Callable[[SingleOp, list], list]
RUNNERS: dict[str, Runner] = {}


def register(op: str) -> Callable[[Runner], Runner]:
    def deco(fn: Runner) -> Runner:
        RUNNERS[op] = fn
        return fn
    return deco


def run_npukit(model_bytes: bytes, inputs: list) -> list[np.ndarray]:
    """Outputs of npukit's kernel on a single-op model (the counterpart of run_reference)."""
    op = read_single_op(model_bytes)
    if op.op not in RUNNERS:
        raise UnsupportedOpError(f"no npukit single-op runner for {op.op}")
    return RUNNERS[op.op](op, [np.asarray(x) for x in inputs])


def fused_clamp(code: int) -> Clamp | None:
    """TFLite fused activation as a Clamp in real units."""
    clamps = {tfl.ActivationFunctionType.NONE: None,
              tfl.ActivationFunctionType.RELU: Clamp(0.0, None),
              tfl.ActivationFunctionType.RELU6: Clamp(0.0, 6.0),
              tfl.ActivationFunctionType.RELU_N1_TO_1: Clamp(-1.0, 1.0)}
    if code not in clamps:
        raise UnsupportedOpError(f"fused activation {code} is not supported")
    return clamps[code]


def _tflite_pads(padding: int, in_hw, kernel_hw, stride, dilation) -> tuple[int, int, int, int]:
    if padding == tfl.Padding.VALID:
        return (0, 0, 0, 0)
    (t, b), (l, r) = (mxu.same_pads(i, k, s, d) for i, k, s, d in zip(in_hw, kernel_hw, stride, dilation))
    return (t, l, b, r)


def _conv_like(op: SingleOp, x: np.ndarray, w: OpTensor, bias: OpTensor | None, attrs: ConvAttrs,
               weight: np.ndarray | None = None) -> list[np.ndarray]:
    out = op.outputs[0]
    xt = op.operand(0 if op.op != "TRANSPOSE_CONV" else 2)
    p = mxu.prepare_conv(xt.s, np.asarray(w.scale), out.s, xt.zp, out.zp, attrs.act, out.dtype.type)
    b = None if bias is None else bias.data
    w_data = w.const if weight is None else weight
    return [mxu.conv2d(x, w_data, b, attrs, p, out.dtype.type)]


@register("CONV_2D")
def _conv2d(op: SingleOp, inputs: list) -> list:
    o, xt, w, bias = op.options, op.operand(0), op.operand(1), op.optional(2)
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    attrs = ConvAttrs(stride=stride, dilation=dilation, groups=xt.shape[3] // w.shape[3],
                      pads=_tflite_pads(o.padding, xt.shape[1:3], w.shape[1:3], stride, dilation),
                      act=fused_clamp(o.fusedActivationFunction))
    return _conv_like(op, inputs[0], w, bias, attrs)


@register("DEPTHWISE_CONV_2D")
def _depthwise(op: SingleOp, inputs: list) -> list:
    o, xt, w, bias = op.options, op.operand(0), op.operand(1), op.optional(2)
    stride, dilation = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    attrs = ConvAttrs(stride=stride, dilation=dilation, depthwise=True,
                      pads=_tflite_pads(o.padding, xt.shape[1:3], w.shape[1:3], stride, dilation),
                      act=fused_clamp(o.fusedActivationFunction))
    return _conv_like(op, inputs[0], w, bias, attrs)


@register("TRANSPOSE_CONV")
def _transpose_conv(op: SingleOp, inputs: list) -> list:
    o = op.options
    shape_t, w, xt, bias = op.operand(0), op.operand(1), op.operand(2), op.optional(3)
    out_hw = int(shape_t.const[1]), int(shape_t.const[2])
    act = fused_clamp(getattr(o, "fusedActivationFunction", 0))
    attrs = mxu.transpose_conv_attrs(xt.hw, out_hw, w.hw, (o.strideH, o.strideW),
                                     o.padding == tfl.Padding.SAME, act)
    return _conv_like(op, inputs[0], w, bias, attrs, weight=w.const[:, ::-1, ::-1, :])


@register("FULLY_CONNECTED")
def _fully_connected(op: SingleOp, inputs: list) -> list:
    xt, w, bias = op.operand(0), op.operand(1), op.optional(2)
    out = op.outputs[0]
    act = fused_clamp(op.options.fusedActivationFunction if op.options is not None else 0)
    p = mxu.prepare_conv(xt.s, np.asarray(w.scale), out.s, xt.zp, out.zp, act, out.dtype.type)
    x = inputs[0].reshape(-1, w.shape[1])
    y = mxu.fully_connected(x, w.const, None if bias is None else bias.data, p, out.dtype.type)
    return [y.reshape(out.shape)]
