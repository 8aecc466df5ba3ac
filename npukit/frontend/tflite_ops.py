"""TFLite operators -> IR nodes: convolutions, fully connected, element-wise, pooling and
activations. Data-movement operators live in tflite_ops_tensor. Each converter takes the
converter (tensor lookup and node emission) and one TFLite operator."""
from __future__ import annotations

from typing import Callable

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import (Clamp, CompareAttrs, ConvAttrs, EltwiseAttrs, FcAttrs, GeluAttrs, LeakyReluAttrs,
                        LogicalAttrs, NoAttrs, Op, PoolAttrs, UnaryAttrs)
from ..kernels import kernels_mxu as kx
from ..kernels.kernels_vpu16 import checked_log2
from .tflite_read import fused_clamp

Converter = Callable[["object", tfl.OperatorT], None]
CONVERTERS: dict[str, Converter] = {}


def converter(*names: str):
    def deco(fn):
        for n in names:
            CONVERTERS[n] = fn
        return fn
    return deco


def _inputs(op) -> list[int]:
    return [int(i) for i in op.inputs]


def _act(cv, options) -> Clamp | None:
    code = getattr(options, "fusedActivationFunction", 0) if options is not None else 0
    return fused_clamp(code, cv.where())


def _pads(padding: int, in_hw, kernel_hw, stride, dilation=(1, 1)) -> tuple[int, int, int, int]:
    if padding == tfl.Padding.VALID:
        return (0, 0, 0, 0)
    (t, b), (l, r) = (kx.same_pads(i, k, s, d) for i, k, s, d in zip(in_hw, kernel_hw, stride, dilation))
    return (t, l, b, r)


def _weights(cv, i: int, what: str) -> str:
    if cv.const(i) is None:
        raise UnsupportedOpError(f"{cv.where()}: {what} weights must be constant")
    return cv.name(i)


def _bias(cv, ins: list[int], k: int) -> list[str]:
    return [cv.name(ins[k])] if len(ins) > k and ins[k] >= 0 else []


@converter("CONV_2D")
def conv_2d(cv, op) -> None:
    o, ins = op.builtinOptions, _inputs(op)
    x, w = cv.name(ins[0]), _weights(cv, ins[1], "CONV_2D")
    xs, ws = cv.shape(ins[0]), cv.tensors[w].shape
    if xs[3] % ws[3]:
        raise ModelError(f"{cv.where()}: {xs[3]} input channels do not divide into groups of {ws[3]}")
    stride, dil = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    attrs = ConvAttrs(stride, dil, _pads(o.padding, xs[1:3], ws[1:3], stride, dil), xs[3] // ws[3],
                      act=_act(cv, o))
    cv.emit(Op.CONV2D, [x, w] + _bias(cv, ins, 2), cv.name(op.outputs[0]), attrs)


@converter("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(cv, op) -> None:
    o, ins = op.builtinOptions, _inputs(op)
    x, w = cv.name(ins[0]), _weights(cv, ins[1], "DEPTHWISE_CONV_2D")
    xs, ws = cv.shape(ins[0]), cv.tensors[w].shape
    stride, dil = (o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor)
    attrs = ConvAttrs(stride, dil, _pads(o.padding, xs[1:3], ws[1:3], stride, dil), 1, depthwise=True,
                      act=_act(cv, o))
    cv.emit(Op.CONV2D, [x, w] + _bias(cv, ins, 2), cv.name(op.outputs[0]), attrs)


@converter("TRANSPOSE_CONV")
def transpose_conv(cv, op) -> None:
    """A convolution over the stride-dilated input with the spatially flipped kernel."""
    o, ins = op.builtinOptions, _inputs(op)
    out_shape = cv.need_const(ins[0], "TRANSPOSE_CONV output shape")
    w = _weights(cv, ins[1], "TRANSPOSE_CONV")
    x = cv.name(ins[2])
    wt = cv.tensors[w]
    flipped = cv.fresh(f"{w}/flipped", wt.shape, w, np.ascontiguousarray(wt.data[:, ::-1, ::-1, :]))
    out_h, out_w = (int(d) for d in out_shape[1:3])
    attrs = kx.transpose_conv_attrs(cv.shape(ins[2])[1:3], (out_h, out_w),
                                    wt.shape[1:3], (o.strideH, o.strideW), o.padding == tfl.Padding.SAME,
                                    _act(cv, o))
    cv.emit(Op.CONV2D, [x, flipped] + _bias(cv, ins, 3), cv.name(op.outputs[0]), attrs)


@converter("FULLY_CONNECTED")
def fully_connected(cv, op) -> None:
    o, ins = op.builtinOptions, _inputs(op)
    if o is not None and o.weightsFormat != tfl.FullyConnectedOptionsWeightsFormat.DEFAULT:
        raise UnsupportedOpError(f"{cv.where()}: shuffled FULLY_CONNECTED weights are not supported")
    x, w = cv.name(ins[0]), _weights(cv, ins[1], "FULLY_CONNECTED")
    depth = cv.tensors[w].shape[1]
    xs = cv.tensors[x].shape
    if int(np.prod(xs)) % depth:
        raise ModelError(f"{cv.where()}: input {list(xs)} does not split into rows of {depth}")
    x2 = cv.reshape(x, (int(np.prod(xs)) // depth, depth), suffix="/rows")
    out = cv.name(op.outputs[0])
    out_shape = cv.tensors[out].shape
    rows = (cv.tensors[x2].shape[0], cv.tensors[w].shape[0])
    y = out if out_shape == rows else cv.fresh(f"{out}/rows", rows, out)
    cv.emit(Op.FULLY_CONNECTED, [x2, w] + _bias(cv, ins, 2), y, FcAttrs(_act(cv, o)))
    if y != out:
        cv.reshape(y, out_shape, out, suffix="/out")


@converter("BATCH_MATMUL")
def batch_matmul_by_constant(cv, op) -> None:
    """x @ W with W a constant matrix (leading axes 1) in a float model: FULLY_CONNECTED
    over the rows of x, W transposed to [out, in] unless adj_y already stores it so. An
    activation right operand, adj_x or an int8 model stays on the host."""
    o, ins = op.builtinOptions, _inputs(op)
    w = cv.const(ins[1])
    xs = cv.shape(ins[0])
    if cv.quantised or w is None or w.dtype != np.float32 or w.ndim < 2 or any(d != 1 for d in w.shape[:-2]):
        raise UnsupportedOpError(f"{cv.where()}: only a float BATCH_MATMUL by a constant matrix runs on the NPU")
    if o is not None and o.adjX:
        raise UnsupportedOpError(f"{cv.where()}: BATCH_MATMUL with adj_x is not supported")
    mat = w.reshape(w.shape[-2:])
    mat = mat if o is not None and o.adjY else mat.T
    if xs[-1] != mat.shape[1]:
        raise ModelError(f"{cv.where()}: input {list(xs)} does not match the constant {list(w.shape)}")
    x = cv.name(ins[0])
    weights = cv.fresh(f"{cv.name(ins[1])}/fc", mat.shape, cv.name(ins[1]), np.ascontiguousarray(mat))
    rows = cv.reshape(x, (int(np.prod(xs[:-1])), xs[-1]), suffix="/rows")
    out = cv.name(op.outputs[0])
    y = cv.fresh(f"{out}/rows", (cv.tensors[rows].shape[0], mat.shape[0]), out)
    cv.emit(Op.FULLY_CONNECTED, [rows, weights], y, FcAttrs(None))
    cv.reshape(y, cv.tensors[out].shape, out, suffix="/out")


_ELTWISE = {"ADD": Op.ADD, "SUB": Op.SUB, "MUL": Op.MUL, "MAXIMUM": Op.MAXIMUM, "MINIMUM": Op.MINIMUM}


# the identity of MAXIMUM / MINIMUM: a constant operand equal to it everywhere changes
# nothing (clip_by_value(x, lo, inf) exports a MINIMUM by +inf) and has no int8 code
_IDENTITY = {Op.MAXIMUM: -np.inf, Op.MINIMUM: np.inf}


def _drop_identity(cv, op, ins: list[int], identity: float) -> bool:
    """Alias the result to the other operand when one operand is the identity constant and
    the result keeps the other's shape (not for a graph output, whose name must stay)."""
    for k in (0, 1):
        c = cv.const(ins[k])
        if c is None or not np.all(c == identity) or int(op.outputs[0]) in cv.sg.outputs:
            continue
        other = cv.name(ins[1 - k])
        if cv.tensors[other].shape == tuple(int(d) for d in cv.sg.tensors[op.outputs[0]].shape):
            cv.names[int(op.outputs[0])] = other
            return True
    return False


@converter(*_ELTWISE)
def eltwise(cv, op) -> None:
    ins = _inputs(op)
    kind = _ELTWISE[cv.op_label]
    if kind in _IDENTITY and _drop_identity(cv, op, ins, _IDENTITY[kind]):
        return
    names = [_const_operand(cv, i) for i in ins]
    out = cv.name(op.outputs[0])
    if kind in (Op.MAXIMUM, Op.MINIMUM):
        cv.emit(kind, names, out)
        return
    if kind is not Op.MUL and _pot_scale_int16(cv, op, [*names, out]):
        raise UnsupportedOpError(f"{cv.where()}: int16 {cv.op_label} with pot_scale_int16 and power-of-two scales "
                                 "(the 16x8 converter writes pot_scale_int16 false; only that path is supported)")
    cv.emit(kind, names, out, EltwiseAttrs(_act(cv, op.builtinOptions)))


@converter("DIV")
def div(cv, op) -> None:
    """x / y of a float model as x times 1 / y: a constant's reciprocal, or the divisor's
    reciprocal table (as the ONNX frontend's Div). An int8 DIV stays on the host."""
    if cv.quantised:
        raise UnsupportedOpError(f"{cv.where()}: DIV of int8 tensors")
    x, y = (cv.name(i) for i in _inputs(op))
    c = cv.const(int(op.inputs[1]))
    if c is not None:
        recip = cv.fresh(f"{y}/reciprocal", cv.tensors[y].shape, y,
                         data=np.asarray(1.0 / np.asarray(c, np.float64), np.float32))
    else:
        recip = cv.emit(Op.UNARY, [y], cv.fresh(f"{y}/reciprocal", cv.tensors[y].shape, y), UnaryAttrs("reciprocal"),
                        suffix="/reciprocal")
    cv.emit(Op.MUL, [x, recip], cv.name(op.outputs[0]), EltwiseAttrs(_act(cv, op.builtinOptions)))


def _pot_scale_int16(cv, op, names: list[str]) -> bool:
    """Whether LiteRT's int16 ADD / SUB takes its power-of-two shift path (not the general one)."""
    ts = [cv.tensors[n] for n in names]
    if ts[-1].dtype.value != "int16" or op.builtinOptions is None or not op.builtinOptions.potScaleInt16:
        return False
    return all(t.quant is not None and checked_log2(t.quant.scale[0])[1] for t in ts)


def _const_operand(cv, i: int) -> str:
    """An operand tensor; a float constant in an int8 model is not representable."""
    name = cv.name(i)
    t = cv.tensors[name]
    if t.is_const and cv.quantised and t.quant is None:
        raise UnsupportedOpError(f"{cv.where()}: unquantised constant operand {name!r}")
    return name


@converter("AVERAGE_POOL_2D", "MAX_POOL_2D")
def pool(cv, op) -> None:
    o = op.builtinOptions
    x = cv.name(op.inputs[0])
    kernel, stride = (o.filterHeight, o.filterWidth), (o.strideH, o.strideW)
    attrs = PoolAttrs(kernel, stride, _pads(o.padding, cv.tensors[x].shape[1:3], kernel, stride),
                      count_include_pad=False, act=_act(cv, o))
    _same_quant(cv, x, cv.name(op.outputs[0]))
    cv.emit(Op.AVG_POOL if cv.op_label == "AVERAGE_POOL_2D" else Op.MAX_POOL, [x], cv.name(op.outputs[0]), attrs)


def _same_quant(cv, a: str, b: str) -> None:
    """TFLite's int8 kernels of data-movement ops require the output's quantisation to be the input's."""
    qa, qb = cv.tensors[a].quant, cv.tensors[b].quant
    if qa is not None and qb is not None and (not np.isclose(qa.scale[0], qb.scale[0], rtol=1e-6)
                                              or qa.zero_point != qb.zero_point):
        raise UnsupportedOpError(f"{cv.where()}: input and output quantisation differ "
                                 f"({qa.scale[0]:g}/{qa.zero_point[0]} vs {qb.scale[0]:g}/{qb.zero_point[0]})")


_ACTIVATIONS: dict[str, tuple[Op, NoAttrs | Clamp]] = {"LOGISTIC": (Op.SIGMOID, NoAttrs()), "TANH": (Op.TANH, NoAttrs()),
                "HARD_SWISH": (Op.HARD_SWISH, NoAttrs()), "RELU": (Op.CLAMP, Clamp(0.0, None)),
                "RELU6": (Op.CLAMP, Clamp(0.0, 6.0)), "RELU_N1_TO_1": (Op.CLAMP, Clamp(-1.0, 1.0)),
                "RELU_0_TO_1": (Op.CLAMP, Clamp(0.0, 1.0))}


@converter(*_ACTIVATIONS, "LEAKY_RELU")
def activation(cv, op) -> None:
    attrs: NoAttrs | Clamp | LeakyReluAttrs
    if cv.op_label == "LEAKY_RELU":
        kind, attrs = Op.LEAKY_RELU, LeakyReluAttrs(float(op.builtinOptions.alpha))
    else:
        kind, attrs = _ACTIVATIONS[cv.op_label]
    x = cv.name(op.inputs[0])
    int16_ok = cv.op_label in ("LOGISTIC", "TANH", "RELU", "RELU6", "LEAKY_RELU")      # LiteRT's int16 forms
    if cv.tensors[x].dtype.value not in ("int8", "float32") + (("int16",) if int16_ok else ()):
        raise UnsupportedOpError(f"{cv.where()}: {cv.op_label} on {cv.tensors[x].dtype.value} tensors")
    cv.emit(kind, [x], cv.name(op.outputs[0]), attrs)


# element-wise functions, one table each (kernels/kernels_vpu_unary): NEG negates the codes;
# SIN, COS, SQUARE have no int8 kernel in LiteRT (float models only)
_FUNCTIONS = {"LOG": "log", "EXP": "exp", "ABS": "abs", "SQRT": "sqrt", "RSQRT": "rsqrt", "ELU": "tfl_elu",
              "SIN": "sin", "COS": "cos", "SQUARE": "square"}
_FLOAT_ONLY = {"SIN", "COS", "SQUARE"}


@converter(*_FUNCTIONS, "NEG")
def function(cv, op) -> None:
    x = cv.name(op.inputs[0])
    dtype = cv.tensors[x].dtype.value
    int16_ok = dtype == "int16" and cv.op_label in ("EXP", "LOG", "ABS")    # LiteRT's tables; ABS as a PRELU
    if dtype not in ("int8", "float32") and not int16_ok or (dtype == "int8" and cv.op_label in _FLOAT_ONLY):
        raise UnsupportedOpError(f"{cv.where()}: {cv.op_label} on {dtype} tensors")
    fn = "tfl_neg" if cv.op_label == "NEG" and dtype == "int8" else _FUNCTIONS.get(cv.op_label, "neg")
    cv.emit(Op.UNARY, [x], cv.name(op.outputs[0]), UnaryAttrs(fn))


@converter("POW")
def power(cv, op) -> None:
    """x ** p by a constant scalar exponent in a float model: one table (LiteRT has no int8
    POW kernel); another exponent, or an int8 model, stays on the host."""
    x, e = cv.name(op.inputs[0]), cv.const(op.inputs[1])
    if cv.tensors[x].dtype.value != "float32" or e is None or e.size != 1 or e.dtype.kind != "f":
        raise UnsupportedOpError(f"{cv.where()}: only a float POW by a constant scalar exponent runs on the NPU")
    if cv.shape(op.inputs[0]) != cv.shape(op.outputs[0]):
        raise UnsupportedOpError(f"{cv.where()}: POW broadcasting its base is not supported")
    cv.emit(Op.UNARY, [x], cv.name(op.outputs[0]), UnaryAttrs("pow", float(e.ravel()[0])))


_COMPARISONS = {"EQUAL": "equal", "NOT_EQUAL": "not_equal", "GREATER": "greater",
                "GREATER_EQUAL": "greater_equal", "LESS": "less", "LESS_EQUAL": "less_equal"}


@converter(*_COMPARISONS)
def comparison(cv, op) -> None:
    names = [_const_operand(cv, i) for i in _inputs(op)]
    if any(cv.tensors[n].dtype.value not in ("int8", "float32") for n in names):
        raise UnsupportedOpError(f"{cv.where()}: {cv.op_label} of {cv.tensors[names[0]].dtype.value} tensors")
    cv.emit(Op.COMPARE, names, cv.name(op.outputs[0]), CompareAttrs(_COMPARISONS[cv.op_label]))


@converter("LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT")
def logical(cv, op) -> None:
    names = [cv.name(i) for i in _inputs(op)]
    if cv.op_label == "LOGICAL_NOT":
        cv.emit(Op.LOGICAL_NOT, names, cv.name(op.outputs[0]))
        return
    cv.emit(Op.LOGICAL, names, cv.name(op.outputs[0]), LogicalAttrs(cv.op_label[8:].lower()))


@converter("SELECT", "SELECT_V2")
def select(cv, op) -> None:
    """cond ? x : y: LiteRT copies the chosen code, whatever the three quantisations."""
    cv.emit(Op.WHERE, [_const_operand(cv, i) for i in _inputs(op)], cv.name(op.outputs[0]))


@converter("GELU")
def gelu(cv, op) -> None:
    approximate = "tanh" if op.builtinOptions is not None and op.builtinOptions.approximate else "none"
    cv.emit(Op.GELU, [cv.name(op.inputs[0])], cv.name(op.outputs[0]), GeluAttrs(approximate))


@converter("PRELU")
def prelu(cv, op) -> None:
    x, alpha = cv.name(op.inputs[0]), cv.name(op.inputs[1])
    if not cv.tensors[alpha].is_const:
        raise UnsupportedOpError(f"{cv.where()}: PRELU alpha must be constant")
    cv.emit(Op.PRELU, [x, alpha], cv.name(op.outputs[0]))

from . import tflite_custom, tflite_ops_lstm, tflite_ops_tensor  # noqa: E402,F401  (register their converters)
