"""Operand types and option values of the TFLite operators npukit lowers, checked at import
(tflite_check): what the converters in tflite_ops / tflite_ops_tensor assume, and what
LiteRT's kernels require of the same operator.

An operand signature is one letter per operand, the last one repeated when it ends in '*':
A the operator's activation type (every A operand the same), W weights (int8 beside int8 or
int16 activations, float32 beside float32), B bias (int32 beside int8, int64 beside int16,
float32 beside float32), I an int32 / int64 index tensor, i an int32 one, b bool, x anything.
"""
from __future__ import annotations

from ai_edge_litert import schema_py_generated as tfl

from . import tflite_read as rd

T = tfl.TensorType
_WEIGHTS = {T.INT8: {T.INT8}, T.INT16: {T.INT8}, T.FLOAT32: {T.FLOAT32}}
_BIAS = {T.INT8: {T.INT32}, T.INT16: {T.INT64, T.INT32}, T.FLOAT32: {T.FLOAT32}}
_INDEX = {T.INT32, T.INT64}


def _sig(ins: str, outs: str, *names: str) -> dict[str, tuple[str, str]]:
    return {n: (ins, outs) for n in names}


SIGNATURES = {
    **_sig("AWB", "A", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"),
    **_sig("iWAB", "A", "TRANSPOSE_CONV"),
    **_sig("AA", "A", "ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "PRELU"),
    **_sig("A", "A", "AVERAGE_POOL_2D", "MAX_POOL_2D", "LOGISTIC", "TANH", "HARD_SWISH", "RELU", "RELU6",
           "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "LOG", "EXP", "ABS", "SQRT", "RSQRT", "ELU", "SIN",
           "COS", "SQUARE", "NEG", "GELU", "SQUEEZE", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SOFTMAX"),
    **_sig("AA", "b", "EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"),
    **_sig("b*", "b", "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT"),
    **_sig("bAA", "A", "SELECT", "SELECT_V2"),
    **_sig("AI", "A", "RESHAPE", "EXPAND_DIMS", "PAD", "TRANSPOSE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR",
           "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"),
    **_sig("AIA", "A", "PADV2"),
    **_sig("AIII", "A", "STRIDED_SLICE"),
    **_sig("AII", "A", "SLICE"),
    **_sig("IA", "A*", "SPLIT"),
    **_sig("AII", "A*", "SPLIT_V"),
    **_sig("A*", "A", "CONCATENATION", "PACK"),
    **_sig("AI", "I", "ARG_MAX", "ARG_MIN"),
}


def _letters(sig: str, n: int) -> str:
    if sig.endswith("*"):
        return (sig[:-1] + sig[-2] * n)[:n] if len(sig) > 1 else ""
    return sig[:n]


def check_operator(ck, where: str, name: str, op: tfl.OperatorT, ins: list[int], outs: list[int]) -> None:
    """Raise (through `ck.fail`) when the operator's operand types or option values are not
    what npukit's lowering of `name` and LiteRT's kernel take."""
    tensors = ck.model.subgraphs[ck.sub].tensors
    if name in SIGNATURES:
        sig_in, sig_out = SIGNATURES[name]
        operands = list(zip(_letters(sig_in, len(ins)), ins)) + list(zip(_letters(sig_out, len(outs)), outs))
        operands = [(c, i) for c, i in operands if i >= 0]
        first = next((i for c, i in operands if c == "A"), None)
        act = None if first is None else tensors[first].type
        if "W" in sig_in and act not in _WEIGHTS:
            ck.fail(f"{where}: activation {ck.tname(first)} is {rd.TYPE_NAMES.get(act, act)}, which {name} "
                    f"does not take")
        for c, i in operands:
            t = tensors[i].type
            allowed = {"A": {act}, "W": _WEIGHTS.get(act, set()), "B": _BIAS.get(act, set()), "I": _INDEX,
                       "i": {T.INT32}, "b": {T.BOOL}}.get(c)
            if allowed is not None and t not in allowed:
                role = {"A": "activation", "W": "weights", "B": "bias", "I": "index", "i": "shape",
                        "b": "condition"}[c]
                have = rd.TYPE_NAMES.get(t, t)
                beside = f" beside {rd.TYPE_NAMES.get(act, act)} activations" if c in "AWB" else ""
                ck.fail(f"{where}: {role} {ck.tname(i)} is {have}{beside}, which {name} does not take")
            if (c == "W" and t == T.INT8) or (c == "B" and t != T.FLOAT32):
                _symmetric(ck, where, i, "weights" if c == "W" else "bias")
        # an empty output (a split's empty piece) is checked where read; in a subgraph control flow
        # calls (run by LiteRT), an empty piece of a CONCATENATION is the list a Keras RNN's loop
        # body grows (TensorListSetItem onto [0, ...])
        for c, i in operands[:len(ins)]:
            if c in "AW" and 0 in _shape(tensors[i]) and not (ck.sub and name == "CONCATENATION"):
                ck.fail(f"{where}: {ck.tname(i)} of shape {_shape(tensors[i])} is empty")
            if c == "A" and tensors[i].quantization is not None and _count(tensors[i].quantization.scale) > 1:
                ck.fail(f"{where}: activation {ck.tname(i)} is quantised per axis (only weights may be)")
        if name in _GEOMETRY:
            _GEOMETRY[name](ck, where, op, [_shape(tensors[i]) if i >= 0 else None for i in ins],
                            _shape(tensors[outs[0]]))
    o = op.builtinOptions
    if name in ("CONCATENATION", "PACK") and o is not None:
        rank = len(tensors[outs[0]].shape if tensors[outs[0]].shape is not None else [])
        if not -rank <= o.axis < rank:
            ck.fail(f"{where}: axis {o.axis} is outside the output's rank {rank}")
    if name == "SPLIT" and o is not None and o.numSplits != len(outs):
        ck.fail(f"{where}: numSplits {o.numSplits} but {len(outs)} outputs")


def _symmetric(ck, where: str, i: int, role: str) -> None:
    """Integer weights and bias: quantised, with zero point 0 (LiteRT's kernels require it)."""
    q = ck.model.subgraphs[ck.sub].tensors[i].quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        ck.fail(f"{where}: integer {role} {ck.tname(i)} have no quantisation parameters")
    zps = [int(z) for z in (q.zeroPoint if q.zeroPoint is not None else [])]
    if any(zps):
        ck.fail(f"{where}: {role} {ck.tname(i)} have zero point {next(z for z in zps if z)} (must be 0)")


def _shape(t: tfl.TensorT) -> list[int]:
    return [int(d) for d in (t.shape if t.shape is not None else [])]


def _spatial(ck, where: str, o, x: list[int], k: list[int], out: list[int], dilation=(1, 1)) -> None:
    """The output height and width TFLite's kernels compute (ComputeOutSize)."""
    want = []
    for size, kk, s, d in zip(x[1:3], k, (o.strideH, o.strideW), dilation):
        if kk > 1 and d > size:     # no tap but the first can reach an input pixel: a corrupt dilation
            ck.fail(f"{where}: dilation {d} beyond the input's size {size}")
        span = (kk - 1) * d + 1
        want.append((size + s - 1) // s if o.padding == tfl.Padding.SAME else (size - span + s) // s)
    if min(want) < 1 or list(out[1:3]) != want:
        ck.fail(f"{where}: output {out} from input {x}, kernel {list(k)} and strides "
                f"{[o.strideH, o.strideW]}: the kernel makes height x width {want}")


def _rank4(ck, where: str, **shapes) -> None:
    for what, sh in shapes.items():
        if sh is not None and len(sh) != 4:
            ck.fail(f"{where}: {what} of shape {sh}, not 4-D")


def _bias(ck, where: str, bias: list[int] | None, n: int) -> None:
    if bias is not None and (len(bias) != 1 or bias[0] != n):
        ck.fail(f"{where}: bias of shape {bias} for {n} output channels")


def _conv(ck, where, op, ins, out) -> None:
    x, w, b = (ins + [None])[:3]
    _rank4(ck, where, input=x, weights=w, output=out)
    if x[3] % w[3] or out[3] != w[0] or out[0] != x[0] or w[0] % (x[3] // w[3]):
        ck.fail(f"{where}: input {x}, weights {w} (OHWI) and output {out} do not fit")
    _bias(ck, where, b, w[0])
    o = op.builtinOptions
    _spatial(ck, where, o, x, w[1:3], out, (o.dilationHFactor, o.dilationWFactor))


def _depthwise(ck, where, op, ins, out) -> None:
    x, w, b = (ins + [None])[:3]
    _rank4(ck, where, input=x, weights=w, output=out)
    if w[0] != 1 or out[3] != w[3] or w[3] % x[3] or out[0] != x[0]:
        ck.fail(f"{where}: input {x}, weights {w} ([1, kh, kw, channels]) and output {out} do not fit")
    _bias(ck, where, b, w[3])
    o = op.builtinOptions
    _spatial(ck, where, o, x, w[1:3], out, (o.dilationHFactor, o.dilationWFactor))


def _transpose_conv(ck, where, op, ins, out) -> None:
    shape, w, x, b = (ins + [None])[:4]
    _rank4(ck, where, input=x, weights=w, output=out)
    if w[3] != x[3] or out[3] != w[0] or out[0] != x[0] or shape != [4]:
        ck.fail(f"{where}: input {x}, weights {w} (OHWI), output {out} and output-shape operand {shape} "
                f"do not fit")
    _bias(ck, where, b, w[0])


def _fully_connected(ck, where, op, ins, out) -> None:
    x, w, b = (ins + [None])[:3]
    if len(w) != 2 or not out or out[-1] != w[0]:
        ck.fail(f"{where}: weights {w} ([outputs, depth]) and output {out} do not fit")
    _bias(ck, where, b, w[0])


def _pool(ck, where, op, ins, out) -> None:
    x, o = ins[0], op.builtinOptions
    _rank4(ck, where, input=x, output=out)
    if out[0] != x[0] or out[3] != x[3]:
        ck.fail(f"{where}: input {x} and output {out} differ in batch or channels")
    _spatial(ck, where, o, x, [o.filterHeight, o.filterWidth], out)


_GEOMETRY = {"CONV_2D": _conv, "DEPTHWISE_CONV_2D": _depthwise, "TRANSPOSE_CONV": _transpose_conv,
             "FULLY_CONNECTED": _fully_connected, "AVERAGE_POOL_2D": _pool, "MAX_POOL_2D": _pool}


def _count(values) -> int:
    """Entries of an object-API vector field: None, a list or (once read) a numpy array."""
    return 0 if values is None else len(values)
