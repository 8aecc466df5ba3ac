"""Seeded single-operator int8 TFLite models for every operator the TFLite frontend maps,
built with npukit.testing.tflite_builder and run by LiteRT's reference kernels as the oracle."""
from __future__ import annotations

from typing import Callable

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.tflite_builder import build_single_op
from npukit.testing.tflite_builder import options as _opts

Case = Callable[[int], tuple[bytes, list[np.ndarray]]]
A = tfl.ActivationFunctionType


def _q(rng) -> tuple[float, int]:
    return float(np.float32(rng.uniform(0.01, 0.1))), int(rng.integers(-40, 41))


def _x(rng, shape, dtype="int8") -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, size=shape).astype(dtype)


def _unary(op: str, shape, out_q=None, options=None, in_q=None) -> Case:
    """x -> op(x); out_q None: a random output quantisation; "same": the input's."""
    def case(seed):
        rng = np.random.default_rng(seed)
        s, z = in_q or _q(rng)
        so, zo = (s, z) if out_q == "same" else (out_q or _q(rng))
        model = build_single_op(op, [T("x", shape, scale=s, zero_point=z)],
                                [T("y", _out_shape(op, shape, options), scale=so, zero_point=zo)], options)
        return model, [_x(rng, shape)]
    return case


def _out_shape(op, shape, options):
    return shape


def _binary(op: str, shape_a, shape_b, act=A.NONE, opts_cls=None) -> Case:
    def case(seed):
        rng = np.random.default_rng(seed)
        (sa, za), (sb, zb), (so, zo) = _q(rng), _q(rng), _q(rng)
        if op == "MUL":
            so *= 3.0
        out = tuple(np.broadcast_shapes(shape_a, shape_b))
        options = _opts(opts_cls, fusedActivationFunction=act) if opts_cls else None
        model = build_single_op(op, [T("a", shape_a, scale=sa, zero_point=za), T("b", shape_b, scale=sb, zero_point=zb)],
                                [T("y", out, scale=so, zero_point=zo)], options)
        return model, [_x(rng, shape_a), _x(rng, shape_b)]
    return case


def _shaped(op: str, shape, out_shape, consts: list[tuple[str, np.ndarray]], options=None, out_q="same",
            n_out: int = 1, out_dtype="int8") -> Case:
    """x plus constant int32 operands (shapes, bounds, sizes) -> one or more outputs."""
    def case(seed):
        rng = np.random.default_rng(seed)
        s, z = _q(rng)
        so, zo = (s, z) if out_q == "same" else out_q
        ins = [T("x", shape, scale=s, zero_point=z)]
        ins += [T(n, d.shape, str(d.dtype), data=d) for n, d in consts]
        shapes = out_shape if n_out > 1 else [out_shape]
        outs = [T(f"y{k}", sh, out_dtype, scale=so, zero_point=zo) for k, sh in enumerate(shapes)]
        return build_single_op(op, ins, outs, options), [_x(rng, shape)]
    return case


def _i32(*v) -> np.ndarray:
    return np.asarray(v, np.int32)


def _pool(op, shape, k, stride, padding, act=A.NONE) -> Case:
    def case(seed):
        rng = np.random.default_rng(seed)
        s, z = _q(rng)
        o = _opts(tfl.Pool2DOptionsT, padding=padding, strideH=stride, strideW=stride, filterHeight=k,
                  filterWidth=k, fusedActivationFunction=act)
        n, h, w, c = shape
        if padding == tfl.Padding.SAME:
            oh, ow = -(-h // stride), -(-w // stride)
        else:
            oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
        model = build_single_op(op, [T("x", shape, scale=s, zero_point=z)],
                                [T("y", (n, oh, ow, c), scale=s, zero_point=z)], o)
        return model, [_x(rng, shape)]
    return case


def _concat(shapes, axis) -> Case:
    def case(seed):
        rng = np.random.default_rng(seed)
        s, z = _q(rng)
        out = list(shapes[0])
        out[axis] = sum(sh[axis] for sh in shapes)
        ins = [T(f"x{k}", sh, scale=s, zero_point=z) for k, sh in enumerate(shapes)]
        model = build_single_op("CONCATENATION", ins, [T("y", tuple(out), scale=s, zero_point=z)],
                                _opts(tfl.ConcatenationOptionsT, axis=axis, fusedActivationFunction=A.NONE))
        return model, [_x(rng, sh) for sh in shapes]
    return case


def _pack(shape, n, axis) -> Case:
    def case(seed):
        rng = np.random.default_rng(seed)
        s, z = _q(rng)
        out = list(shape)
        out.insert(axis, n)
        ins = [T(f"x{k}", shape, scale=s, zero_point=z) for k in range(n)]
        model = build_single_op("PACK", ins, [T("y", tuple(out), scale=s, zero_point=z)],
                                _opts(tfl.PackOptionsT, valuesCount=n, axis=axis))
        return model, [_x(rng, shape) for _ in range(n)]
    return case


def _prelu(shape) -> Case:
    def case(seed):
        rng = np.random.default_rng(seed)
        (s, z), (sa, za), (so, zo) = _q(rng), _q(rng), _q(rng)
        alpha = _x(rng, (shape[-1],))
        model = build_single_op("PRELU", [T("x", shape, scale=s, zero_point=z),
                                          T("alpha", alpha.shape, scale=sa, zero_point=za, data=alpha)],
                                [T("y", shape, scale=so, zero_point=zo)])
        return model, [_x(rng, shape)]
    return case


def _mean(shape, axes, keep, op="MEAN") -> Case:
    """A reduction; REDUCE_MAX / REDUCE_MIN keep the input's quantisation, as LiteRT requires."""
    def case(seed):
        rng = np.random.default_rng(seed)
        (s, z), (so, zo) = _q(rng), _q(rng)
        if op in ("REDUCE_MAX", "REDUCE_MIN"):
            so, zo = s, z
        out = tuple(1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes)
        model = build_single_op(op, [T("x", shape, scale=s, zero_point=z),
                                         T("axes", (len(axes),), "int32", data=_i32(*axes))],
                                [T("y", out, scale=so, zero_point=zo)], _opts(tfl.ReducerOptionsT, keepDims=keep))
        return model, [_x(rng, shape)]
    return case


def _arg_max(shape, axis, out_dtype, op="ARG_MAX") -> Case:
    """Few distinct codes, so that ties (the first index wins) occur."""
    def case(seed):
        rng = np.random.default_rng(seed)
        s, z = _q(rng)
        out = tuple(d for i, d in enumerate(shape) if i != axis)
        options = tfl.ArgMaxOptionsT if op == "ARG_MAX" else tfl.ArgMinOptionsT
        model = build_single_op(op, [T("x", shape, scale=s, zero_point=z), T("axis", (1,), "int32", data=_i32(axis))],
                                [T("y", out, out_dtype)],
                                _opts(options, outputType=getattr(tfl.TensorType, out_dtype.upper())))
        return model, [rng.integers(-3, 3, size=shape).astype(np.int8)]
    return case


def _compare(op: str, shape_a, shape_b, same: bool = False) -> Case:
    """int8 operands (own scales, or one) -> bool; close codes, so that ties and the 1/256
    comparison grid matter."""
    def case(seed):
        rng = np.random.default_rng(seed)
        (sa, za), (sb, zb) = _q(rng), _q(rng)
        if same:
            sb, zb = sa, za
        out = tuple(np.broadcast_shapes(shape_a, shape_b))
        model = build_single_op(op, [T("a", shape_a, scale=sa, zero_point=za), T("b", shape_b, scale=sb, zero_point=zb)],
                                [T("y", out, "bool")])
        a = _x(rng, shape_a)
        b = np.clip(a[..., :1] + rng.integers(-2, 3, size=shape_b), -128, 127).astype(np.int8) if same else _x(rng, shape_b)
        return model, [a, b]
    return case


def _logical(op: str, shapes) -> Case:
    def case(seed):
        rng = np.random.default_rng(seed)
        ins = [T(f"x{k}", sh, "bool") for k, sh in enumerate(shapes)]
        out = tuple(np.broadcast_shapes(*shapes))
        model = build_single_op(op, ins, [T("y", out, "bool")])
        return model, [rng.integers(0, 2, size=sh).astype(bool) for sh in shapes]
    return case


def _select(op: str, shape, const_y: bool = False, c_shape=None, x_shape=None) -> Case:
    """cond ? x : y; LiteRT copies codes, so the three quantisations may differ (SELECT_V2
    broadcasts its operands)."""
    def case(seed):
        rng = np.random.default_rng(seed)
        (sx, zx), (sy, zy), (so, zo) = _q(rng), _q(rng), _q(rng)
        cs, xs = c_shape or shape, x_shape or shape
        out = tuple(np.broadcast_shapes(cs, xs, shape))
        y = T("y", shape, scale=sy, zero_point=zy, data=_x(rng, shape) if const_y else None)
        model = build_single_op(op, [T("c", cs, "bool"), T("x", xs, scale=sx, zero_point=zx), y],
                                [T("o", out, scale=so, zero_point=zo)])
        return model, [rng.integers(0, 2, size=cs).astype(bool), _x(rng, xs)] + ([] if const_y else [_x(rng, shape)])
    return case


def _softmax(shape, beta) -> Case:
    return _unary("SOFTMAX", shape, (1 / 256, -128), _opts(tfl.SoftmaxOptionsT, beta=beta))


X = (1, 6, 5, 8)
CASES: dict[str, Case] = {
    "add": _binary("ADD", X, X, A.NONE, tfl.AddOptionsT),
    "add_broadcast_relu6": _binary("ADD", X, (1, 1, 1, 8), A.RELU6, tfl.AddOptionsT),
    "sub_relu": _binary("SUB", X, X, A.RELU, tfl.SubOptionsT),
    "mul": _binary("MUL", X, X, A.NONE, tfl.MulOptionsT),
    "mul_broadcast": _binary("MUL", X, (1, 1, 1, 8), A.NONE, tfl.MulOptionsT),
    "add_outer_broadcast": _binary("ADD", (1, 1, 5, 8), (2, 6, 1, 8), A.RELU, tfl.AddOptionsT),    # DMA-expanded
    "sub_first_broadcast": _binary("SUB", (1, 6, 1, 1), X, A.NONE, tfl.SubOptionsT),
    "maximum": _binary("MAXIMUM", X, X),
    "avg_pool_same": _pool("AVERAGE_POOL_2D", (1, 7, 9, 4), 3, 2, tfl.Padding.SAME),
    "avg_pool_valid_relu": _pool("AVERAGE_POOL_2D", (1, 8, 8, 3), 2, 2, tfl.Padding.VALID, A.RELU),
    "max_pool_same": _pool("MAX_POOL_2D", (1, 7, 7, 5), 3, 2, tfl.Padding.SAME),
    "max_pool_valid": _pool("MAX_POOL_2D", (2, 6, 6, 3), 2, 2, tfl.Padding.VALID),
    "mean_hw_keep": _mean((1, 5, 7, 6), (1, 2), True),
    "mean_hw": _mean((1, 4, 4, 10), (1, 2), False),
    "mean_channels": _mean((1, 4, 5, 12), (3,), False),
    "mean_wc_keep": _mean((1, 3, 4, 6), (2, 3), True),
    "mean_rows": _mean((1, 6, 5, 8), (1,), True),
    "mean_non_adjacent": _mean((1, 4, 5, 6), (1, 3), False),
    "mean_non_adjacent_keep": _mean((2, 4, 5, 6), (0, 2), True),
    "mean_all_but_batch": _mean((1, 4, 5, 6), (1, 2, 3), False),
    "mean_last_rows": _mean((3, 40, 24), (2,), True),
    "reduce_max_channels": _mean((1, 4, 5, 12), (3,), False, "REDUCE_MAX"),
    "reduce_max_non_adjacent_keep": _mean((2, 4, 5, 6), (1, 3), True, "REDUCE_MAX"),
    "reduce_min_hw_keep": _mean((1, 5, 7, 6), (1, 2), True, "REDUCE_MIN"),
    "reduce_min_batch_channels": _mean((3, 4, 5, 6), (0, 3), False, "REDUCE_MIN"),
    "mean_large_hw": _mean((1, 48, 48, 64), (1, 2), True),                  # tiles of channel blocks
    "reduce_max_many_rows": _mean((64, 300), (1,), False, "REDUCE_MAX"),     # tiles of rows
    "arg_max_channels": _arg_max((1, 4, 5, 10), 3, "int32"),
    "arg_max_rows_int64": _arg_max((2, 7, 3, 4), 1, "int64"),
    "arg_max_batch": _arg_max((3, 2, 6), 0, "int32"),
    "arg_min_rows": _arg_max((2, 7, 3, 4), 2, "int32", "ARG_MIN"),
    "gelu": _unary("GELU", X, None, _opts(tfl.GeluOptionsT, approximate=False)),
    "gelu_tanh": _unary("GELU", X, None, _opts(tfl.GeluOptionsT, approximate=True)),
    "equal_same_scale": _compare("EQUAL", X, X[:3] + (1,), True),
    "not_equal": _compare("NOT_EQUAL", X, X),
    "greater": _compare("GREATER", X, X),
    "greater_equal_broadcast": _compare("GREATER_EQUAL", X, (1, 1, 1, 8)),
    "less_same_scale": _compare("LESS", X, X, True),
    "less_equal_scalar": _compare("LESS_EQUAL", X, (1,)),
    "greater_broadcast_first": _compare("GREATER", (1, 1, 1, 8), X),       # operands swapped, predicate mirrored
    "less_outer_broadcast": _compare("LESS", (1, 6, 1, 8), (2, 1, 5, 1)),
    "logical_and": _logical("LOGICAL_AND", [X, X]),
    "logical_or_broadcast": _logical("LOGICAL_OR", [X, (1, 1, 1, 8)]),
    "logical_and_outer_broadcast": _logical("LOGICAL_AND", [(1, 6, 1, 8), (1, 1, 5, 1)]),
    "logical_not": _logical("LOGICAL_NOT", [X]),
    "select": _select("SELECT", X),
    "select_v2_const": _select("SELECT_V2", (2, 3, 17), True),
    "select_v2_broadcast": _select("SELECT_V2", (1, 1, 5, 8), False, (1, 6, 1, 8), (2, 1, 5, 1)),
    "softmax": _softmax((2, 10), 1.0),
    "softmax_beta": _softmax((1, 3, 16), 0.5),
    "logistic": _unary("LOGISTIC", X, (1 / 256, -128)),
    "tanh": _unary("TANH", X, (1 / 128, 0)),
    "hard_swish": _unary("HARD_SWISH", X),
    "relu": _unary("RELU", X),
    "relu6": _unary("RELU6", X),
    "relu_n1_to_1": _unary("RELU_N1_TO_1", X),
    "leaky_relu": _unary("LEAKY_RELU", X, None, _opts(tfl.LeakyReluOptionsT, alpha=0.2)),
    "prelu": _prelu(X),
    "log": _unary("LOG", X),
    "exp": _unary("EXP", X),
    "abs": _unary("ABS", X),
    "abs_same_scale": _unary("ABS", X, "same"),
    "neg": _unary("NEG", X, "same"),
    "sqrt": _unary("SQRT", X, None, None, (0.05, -128)),      # LiteRT refuses negative inputs
    "rsqrt": _unary("RSQRT", X, None, None, (0.02, -128)),
    "quantize_rescale": _unary("QUANTIZE", X),
    "concat_channels": _concat([(1, 4, 4, 3), (1, 4, 4, 5)], 3),
    "concat_rows": _concat([(1, 2, 4, 3), (1, 3, 4, 3), (1, 1, 4, 3)], 1),
    "pack": _pack((2, 3), 3, 1),
    "reshape": _shaped("RESHAPE", X, (1, 30, 8), [("shape", _i32(1, 30, 8))]),
    "pad": _shaped("PAD", (1, 4, 5, 3), (1, 6, 8, 3), [("pads", _i32(0, 0, 1, 1, 2, 1, 0, 0).reshape(4, 2))]),
    "mirror_pad_reflect": _shaped("MIRROR_PAD", (1, 4, 5, 3), (1, 7, 8, 3), [("pads", _i32(0, 0, 1, 2, 2, 1, 0, 0).reshape(4, 2))],
                                  _opts(tfl.MirrorPadOptionsT, mode=tfl.MirrorPadMode.REFLECT)),
    "mirror_pad_reflect_3d": _shaped("MIRROR_PAD", (1, 12, 1), (1, 18, 1), [("pads", _i32(0, 0, 3, 3, 0, 0).reshape(3, 2))],
                                     _opts(tfl.MirrorPadOptionsT, mode=tfl.MirrorPadMode.REFLECT)),
    "transpose": _shaped("TRANSPOSE", (1, 4, 5, 3), (1, 3, 4, 5), [("perm", _i32(0, 3, 1, 2))]),
    "depth_to_space_b2": _shaped("DEPTH_TO_SPACE", (1, 4, 5, 12), (1, 8, 10, 3), [],
                                 _opts(tfl.DepthToSpaceOptionsT, blockSize=2)),
    "depth_to_space_b3_batch2": _shaped("DEPTH_TO_SPACE", (2, 3, 4, 18), (2, 9, 12, 2), [],
                                        _opts(tfl.DepthToSpaceOptionsT, blockSize=3)),
    "depth_to_space_large": _shaped("DEPTH_TO_SPACE", (1, 48, 64, 256), (1, 96, 128, 64), [],
                                    _opts(tfl.DepthToSpaceOptionsT, blockSize=2)),
    "space_to_depth_b2": _shaped("SPACE_TO_DEPTH", (1, 8, 6, 3), (1, 4, 3, 12), [],
                                 _opts(tfl.SpaceToDepthOptionsT, blockSize=2)),
    "space_to_depth_b4": _shaped("SPACE_TO_DEPTH", (1, 8, 12, 5), (1, 2, 3, 80), [],
                                 _opts(tfl.SpaceToDepthOptionsT, blockSize=4)),
    "strided_slice": _shaped("STRIDED_SLICE", (1, 8, 7, 6), (1, 3, 3, 4),
                             [("b", _i32(0, 1, 0, 2)), ("e", _i32(1, 7, 7, 6)), ("s", _i32(1, 2, 3, 1))],
                             _opts(tfl.StridedSliceOptionsT, beginMask=0, endMask=0)),
    "strided_slice_masks_shrink": _shaped("STRIDED_SLICE", (1, 8, 7, 6), (1, 5, 6),
                                          [("b", _i32(0, 2, 1, 0)), ("e", _i32(0, 3, -1, 0)), ("s", _i32(1, 1, 1, 1))],
                                          _opts(tfl.StridedSliceOptionsT, beginMask=0b1001, endMask=0b1001,
                                                shrinkAxisMask=0b10)),
    "slice": _shaped("SLICE", (1, 6, 6, 4), (1, 3, 6, 2), [("b", _i32(0, 2, 0, 1)), ("n", _i32(1, 3, -1, 2))]),
    "split_v": _shaped("SPLIT_V", (1, 9, 1, 64), [(1, 9, 1, 32), (1, 9, 1, 32)],
                       [("sizes", _i32(32, -1)), ("axis", _i32(3))],
                       _opts(tfl.SplitVOptionsT, numSplits=2), n_out=2),
    "resize_bilinear": _shaped("RESIZE_BILINEAR", (1, 4, 5, 3), (1, 8, 10, 3), [("size", _i32(8, 10))],
                               _opts(tfl.ResizeBilinearOptionsT, alignCorners=False, halfPixelCenters=True)),
    "resize_bilinear_align": _shaped("RESIZE_BILINEAR", (1, 4, 5, 3), (1, 7, 9, 3), [("size", _i32(7, 9))],
                                     _opts(tfl.ResizeBilinearOptionsT, alignCorners=True, halfPixelCenters=False)),
    "resize_nearest": _shaped("RESIZE_NEAREST_NEIGHBOR", (1, 3, 4, 2), (1, 6, 8, 2), [("size", _i32(6, 8))],
                              _opts(tfl.ResizeNearestNeighborOptionsT, alignCorners=False, halfPixelCenters=False)),
}


def quantize_to_uint8(seed: int) -> tuple[bytes, list[np.ndarray]]:
    """int8 -> uint8 QUANTIZE, as at pymicro-wakeword's output (scale kept, zero point + 128)."""
    rng = np.random.default_rng(seed)
    model = build_single_op("QUANTIZE", [T("x", (1, 1), scale=1 / 256, zero_point=-128)],
                            [T("y", (1, 1), "uint8", scale=1 / 256, zero_point=0)])
    return model, [_x(rng, (1, 1))]


CASES["quantize_int8_to_uint8"] = quantize_to_uint8


def quantize_from_uint8(out_scale: float, out_zp: int) -> Case:
    """uint8 -> int8 QUANTIZE of a uint8 image input, as at efficientnet-lite0's input (the
    same scale, zero point 131 -> 3), or with a rescale."""
    def case(seed):
        rng = np.random.default_rng(seed)
        model = build_single_op("QUANTIZE", [T("x", (1, 4, 5, 3), "uint8", scale=0.012566, zero_point=131)],
                                [T("y", (1, 4, 5, 3), scale=out_scale, zero_point=out_zp)])
        return model, [_x(rng, (1, 4, 5, 3), "uint8")]
    return case


CASES["quantize_uint8_to_int8"] = quantize_from_uint8(0.012566, 3)
CASES["quantize_uint8_to_int8_rescaled"] = quantize_from_uint8(0.0371, -9)


def build_chain(ops: list[tuple[str, list[str], list[str], object]], specs: list[T],
                inputs: list[str], outputs: list[str]) -> bytes:
    """A multi-operator model: `ops` are (builtin name, input names, output names, options)."""
    import flatbuffers

    from npukit.testing import tflite_builder as tb
    buffers, tensors, index = [tfl.BufferT()], [], {}
    for spec in specs:
        buf = 0
        if spec.data is not None:
            buffers.append(tb._buffer(spec))
            buf = len(buffers) - 1
        index[spec.name] = len(tensors)
        tensors.append(tb._tensor(spec, buf))
    codes, operators = [], []
    for name, ins, outs, options in ops:
        if name not in codes:
            codes.append(name)
        op = tfl.OperatorT()
        op.opcodeIndex = codes.index(name)
        op.inputs, op.outputs = [index[n] for n in ins], [index[n] for n in outs]
        if options is not None:
            op.builtinOptionsType, op.builtinOptions = tb._options_type(options), options
        operators.append(op)
    sg = tfl.SubGraphT()
    sg.tensors, sg.operators, sg.name = tensors, operators, "main"
    sg.inputs, sg.outputs = [index[n] for n in inputs], [index[n] for n in outputs]
    model = tfl.ModelT()
    model.version, model.subgraphs, model.buffers = 3, [sg], buffers
    model.operatorCodes = [tb._operator_code(c, 1) for c in codes]
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
