"""ONNX converters for element-wise ops: activations and broadcasting arithmetic."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import (Clamp, CompareAttrs, EltwiseAttrs, LeakyReluAttrs, LogicalAttrs, NoAttrs, Op, SoftmaxAttrs,
                        UnaryAttrs)
from ..kernels.kernels_vpu_compare import SWAPPED
from .onnx_builder import Act, Builder
from .onnx_const import attributes


def _rank(b: Builder, name: str) -> int:
    v = b.values[name]
    return v.ndim if isinstance(v, np.ndarray) else v.rank


def _shape(b: Builder, name: str) -> tuple[int, ...]:
    return tuple(b.values[name].shape)


def _unary(b: Builder, node, op: Op, attrs) -> str:
    return unary_of(b, node.input[0], op, attrs, node.output[0])


def unary_of(b: Builder, src: str, op: Op, attrs, out: str) -> str:
    """ONNX value `out` = the element-wise `op` of value `src`, in `src`'s layout."""
    a = b.act(src)
    return b.emit_result(out, op, [a.ir], attrs, nhwc=a.nhwc)


def _scalar_const(b: Builder, value: float, base: str, rank: int) -> str:
    return b.add_const(np.full((1,) * rank, value, np.float32), base)


def relu(b: Builder, node) -> None:
    _unary(b, node, Op.CLAMP, Clamp(0.0, None))


def clip(b: Builder, node) -> None:
    at = attributes(node)
    if b.opset < 11:
        lo, hi = at.get("min"), at.get("max")
    elif any(i < len(node.input) and node.input[i] and not b.is_const(node.input[i]) for i in (1, 2)):
        _clip_by_tensors(b, node)
        return
    else:
        lo_c, hi_c = b.opt_const(node, 1), b.opt_const(node, 2)
        lo = None if lo_c is None else float(np.asarray(lo_c).ravel()[0])
        hi = None if hi_c is None else float(np.asarray(hi_c).ravel()[0])
    lo = None if lo is None or lo <= -3.0e38 else float(lo)
    hi = None if hi is None or hi >= 3.0e38 else float(hi)
    _unary(b, node, Op.CLAMP, Clamp(lo, hi))


def _clip_by_tensors(b: Builder, node) -> None:
    """A Clip whose bound is computed (a spectrogram's floor at its maximum less 80 dB) is
    Max(x, min) then Min(., max), an infinite constant bound left out."""
    steps = [(node.input[i], op) for i, op in ((1, Op.MAXIMUM), (2, Op.MINIMUM))
             if i < len(node.input) and node.input[i]
             and not (b.is_const(node.input[i]) and np.all(np.isinf(b.const(node.input[i]))))]
    acc = node.input[0]
    for k, (bound, op) in enumerate(steps):
        out = node.output[0] if k == len(steps) - 1 else f"{node.output[0]}/min"
        _binary(b, node, op, acc, bound, out)
        acc = out


def leaky_relu(b: Builder, node) -> None:
    _unary(b, node, Op.LEAKY_RELU, LeakyReluAttrs(float(attributes(node).get("alpha", 0.01))))


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == tuple(target)
    except ValueError:
        return False


def prelu(b: Builder, node) -> None:
    a = b.act(node.input[0])
    slope = b.const(node.input[1], "slope")
    if not _broadcasts_to(slope.shape, a.shape):
        raise ModelError(f"ONNX node {b.source[-1]!r} (PRelu): slope of shape {list(slope.shape)} does not "
                         f"broadcast to its input's {list(a.shape)}")
    b.values[node.input[1] + "/slope"] = slope
    s = b.operand(node.input[1] + "/slope", a.rank)
    b.emit_result(node.output[0], Op.PRELU, [a.ir, s], NoAttrs(), nhwc=a.nhwc)


def sigmoid(b: Builder, node) -> None:
    _unary(b, node, Op.SIGMOID, NoAttrs())


def tanh(b: Builder, node) -> None:
    _unary(b, node, Op.TANH, NoAttrs())


def hard_swish(b: Builder, node) -> None:
    _unary(b, node, Op.HARD_SWISH, NoAttrs())


def hard_sigmoid(b: Builder, node) -> None:
    """max(0, min(1, alpha*x + beta)) as MUL, ADD, CLAMP (x*HardSigmoid(x) becomes HARD_SWISH)."""
    at = attributes(node)
    a = b.act(node.input[0])
    out = node.output[0]
    alpha = _scalar_const(b, float(at.get("alpha", 0.2)), out + "_alpha", a.rank)
    beta = _scalar_const(b, float(at.get("beta", 0.5)), out + "_beta", a.rank)
    m = b.emit(Op.MUL, [a.ir, alpha], EltwiseAttrs(), b.fresh(out + "_scaled"))
    s = b.emit(Op.ADD, [m, beta], EltwiseAttrs(), b.fresh(out + "_shifted"))
    b.emit_result(out, Op.CLAMP, [s], Clamp(0.0, 1.0), nhwc=a.nhwc)


# ONNX element-wise functions that become one table on the NPU: ONNX name -> function name,
# and the ONNX attributes that parameterise them (alpha, gamma)
UNARY_FUNCTIONS = {
    "Log": "log", "Exp": "exp", "Abs": "abs", "Sqrt": "sqrt", "Neg": "neg", "Reciprocal": "reciprocal",
    "Erf": "erf", "Softplus": "softplus", "Softsign": "softsign", "Elu": "elu", "Celu": "celu",
    "Selu": "selu", "ThresholdedRelu": "thresholded_relu", "Mish": "mish", "Sin": "sin", "Cos": "cos",
    "Tan": "tan", "Asin": "asin", "Acos": "acos", "Atan": "atan", "Sinh": "sinh", "Cosh": "cosh",
    "Asinh": "asinh", "Acosh": "acosh", "Atanh": "atanh", "Sign": "sign", "Floor": "floor",
    "Ceil": "ceil", "Round": "round",
}


def shrink(b: Builder, node) -> None:
    """ONNX Shrink of a float input: one table (lambd and bias as the function's parameters)."""
    if b.onnx_dtype(node.input[0]).kind != "f":
        raise UnsupportedOpError(f"ONNX Shrink (node '{b.source[-1]}') of an integer input")
    at = attributes(node)
    _unary(b, node, Op.UNARY, UnaryAttrs("shrink", float(at.get("lambd", 0.5)), float(at.get("bias", 0.0))))


def _function(fn: str):
    def convert(b: Builder, node) -> None:
        at = attributes(node)
        alpha, gamma = at.get("alpha"), at.get("gamma")
        _unary(b, node, Op.UNARY, UnaryAttrs(fn, None if alpha is None else float(alpha),
                                               None if gamma is None else float(gamma)))
    return convert


def _binary(b: Builder, node, op: Op, x: str, y: str, out: str) -> str:
    rank = max(_rank(b, x), _rank(b, y))
    if b.is_const(x) and op in (Op.ADD, Op.MUL, Op.MAXIMUM, Op.MINIMUM):
        x, y = y, x                                   # activation first for commutative ops
    ins = [b.operand(x, rank), b.operand(y, rank)]
    return b.emit_result(out, op, ins, EltwiseAttrs(), nhwc=rank == 4)


def _binary_converter(op: Op):
    def convert(b: Builder, node) -> None:
        _binary(b, node, op, node.input[0], node.input[1], node.output[0])
    return convert


_PREDICATES = {"Equal": "equal", "Greater": "greater", "GreaterOrEqual": "greater_equal", "Less": "less",
               "LessOrEqual": "less_equal"}


def _compare(fn: str):
    """A comparison of int8 operands to a boolean (a constant first operand goes second, the
    predicate mirrored)."""
    def convert(b: Builder, node) -> None:
        x, y = node.input[0], node.input[1]
        pred = fn
        if b.is_const(x) and not b.is_const(y):
            x, y, pred = y, x, SWAPPED[fn]
        rank = max(_rank(b, x), _rank(b, y))
        b.emit_result(node.output[0], Op.COMPARE, [b.operand(x, rank), b.operand(y, rank)], CompareAttrs(pred),
                      nhwc=rank == 4)
    return convert


def _logical(fn: str):
    def convert(b: Builder, node) -> None:
        rank = max(_rank(b, n) for n in node.input)
        b.emit_result(node.output[0], Op.LOGICAL, [b.operand(n, rank) for n in node.input], LogicalAttrs(fn),
                      nhwc=rank == 4)
    return convert


def logical_not(b: Builder, node) -> None:
    _unary(b, node, Op.LOGICAL_NOT, NoAttrs())


def div(b: Builder, node) -> None:
    if not b.is_const(node.input[1]):
        if _spelled_softmax(b, node):
            return
        if any(_integer(b, n) for n in node.input[:2]):         # integer division stays exact on the host
            raise UnsupportedOpError(f"unsupported ONNX operator 'Div' of integers by a non-constant "
                                     f"(node '{b.source[-1]}')")
        recip = b.fresh(node.output[0] + "/reciprocal_of_divisor")
        unary_of(b, node.input[1], Op.UNARY, UnaryAttrs("reciprocal"), recip)
        _binary(b, node, Op.MUL, node.input[0], recip, node.output[0])
        return
    recip = node.input[1] + "/reciprocal"
    b.values[recip] = np.asarray(1.0 / b.const(node.input[1]).astype(np.float64), np.float32)
    _binary(b, node, Op.MUL, node.input[0], recip, node.output[0])


def _integer(b: Builder, name: str) -> bool:
    dtype = b.onnx_types.get(name) or b.host_typed.get(name)
    return dtype is not None and np.issubdtype(np.dtype(dtype), np.integer)


def _spelled_softmax(b: Builder, node) -> bool:
    """Div(Exp(t), ReduceSum(Exp(t), axis) reshaped / expanded back): a softmax written out
    (jax's, through jax2tf), emitted as one SOFTMAX of t over that axis. The reduced value may
    only come back through reshapes that restore the axis as 1 and zero-adds (Expand)."""
    num, den = b.values.get(node.input[0]), b.values.get(node.input[1])
    if not isinstance(num, Act) or not isinstance(den, Act) or num.rank == 4 or den.rank != num.rank:
        return False
    made = {o: n for n in b.nodes for o in n.outputs}
    exp = made.get(num.ir)
    if exp is None or exp.op is not Op.UNARY or exp.attrs.fn != "exp":
        return False
    t = den.ir
    while (p := made.get(t)) is not None and (p.op is Op.RESHAPE or (
            p.op is Op.ADD and _zeros(b, p.inputs[1]))):
        t = p.inputs[0]
    total = made.get(t)
    if total is None or total.op is not Op.REDUCE_SUM or total.inputs[0] != num.ir or len(total.attrs.axes) != 1:
        return False
    axis = total.attrs.axes[0]
    kept = tuple(1 if i == axis else d for i, d in enumerate(num.shape))
    if den.shape not in (kept, num.shape) or b.tensors[t].shape not in (kept, kept[:axis] + kept[axis + 1:]):
        return False
    b.emit_result(node.output[0], Op.SOFTMAX, [exp.inputs[0]], SoftmaxAttrs(axis), nhwc=False)
    return True


def _zeros(b: Builder, ir: str) -> bool:
    t = b.tensors.get(ir)
    return t is not None and t.data is not None and not np.any(t.data)


def power(b: Builder, node) -> None:
    """Pow by a constant scalar exponent: one table (x^p); another exponent runs on the host."""
    e = b.const(node.input[1]) if b.is_const(node.input[1]) else None
    if e is None or e.size != 1:
        raise UnsupportedOpError(f"unsupported ONNX operator 'Pow' with an exponent that is not a constant "
                                 f"scalar (node '{b.source[-1]}')")
    _unary(b, node, Op.UNARY, UnaryAttrs("pow", float(np.ravel(e)[0])))


# the identity of Max / Min: a constant operand equal to it everywhere changes nothing
# (jax's softmax takes Max(ReduceMax(x), -inf)) and has no int8 code
_IDENTITY = {Op.MAXIMUM: -np.inf, Op.MINIMUM: np.inf}


def _variadic(op: Op):
    def convert(b: Builder, node) -> None:
        names = [n for n in node.input if n]
        if op in _IDENTITY and len(names) > 1:
            kept = [n for n in names if not (b.is_const(n) and np.all(b.const(n) == _IDENTITY[op]))]
            same_shape = np.broadcast_shapes(*(_shape(b, n) for n in names)) == \
                np.broadcast_shapes(*(_shape(b, n) for n in kept)) if kept else False
            names = kept if same_shape else names
        if len(names) == 1:
            b.alias(node.output[0], names[0])
            return
        acc = names[0]
        for i, name in enumerate(names[1:], start=1):
            last = i == len(names) - 1
            out = node.output[0] if last else f"{node.output[0]}/{i}"
            _binary(b, node, op, acc, name, out)
            acc = out
    return convert


ELTWISE_CONVERTERS = {
    "Relu": relu, "Clip": clip, "LeakyRelu": leaky_relu, "PRelu": prelu, "Sigmoid": sigmoid,
    "Tanh": tanh, "HardSwish": hard_swish, "HardSigmoid": hard_sigmoid,
    "Add": _binary_converter(Op.ADD), "Sub": _binary_converter(Op.SUB),
    "Mul": _binary_converter(Op.MUL), "Div": div, "Pow": power,
    "Max": _variadic(Op.MAXIMUM), "Min": _variadic(Op.MINIMUM), "Sum": _variadic(Op.ADD),
    **{name: _function(fn) for name, fn in UNARY_FUNCTIONS.items()}, "Shrink": shrink,
    **{name: _compare(fn) for name, fn in _PREDICATES.items()},
    "And": _logical("and"), "Or": _logical("or"), "Xor": _logical("xor"), "Not": logical_not,
}
