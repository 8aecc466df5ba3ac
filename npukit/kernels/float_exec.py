"""A vectorised numpy executor of float IR graphs: the float oracle and the calibration engine."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..limits import TENSOR_ELEMENTS
from ..threads import single_threaded
from ..errors import InputError, ModelError
from ..ir.graph import Clamp, Graph, Node, Op
from ..ir.shapes import conv_out_hw
from . import host_float, host_tflite
from . import kernels_transformer as kt
from . import kernels_vpu_compare as kc
from .kernels_vpu_pool import arg_max
from .kernels_vpu_unary import unary_float

Kernel = Callable[[Node, list[np.ndarray]], np.ndarray]


def _act(y: np.ndarray, act: Clamp | None) -> np.ndarray:
    if act is None or (act.lo is None and act.hi is None):
        return y
    return np.clip(y, act.lo, act.hi)


def _windows(x: np.ndarray, kh: int, kw: int, stride, dilation, out_hw) -> np.ndarray:
    """View [N, OH, OW, kh, kw, C] of sliding windows over an already padded NHWC input."""
    n, _, _, c = x.shape
    (sh, sw), (dh, dw), (oh, ow) = stride, dilation, out_hw
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, oh, ow, kh, kw, c), (s[0], s[1] * sh, s[2] * sw, s[1] * dh, s[2] * dw, s[3]),
        writeable=False)


def _pad_spatial(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    t, l, b, r = pads
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def _dilate_input(x: np.ndarray, factors) -> np.ndarray:
    ih, iw = factors
    if ih == 1 and iw == 1:
        return x
    n, h, w, c = x.shape
    out = np.zeros((n, (h - 1) * ih + 1, (w - 1) * iw + 1, c), x.dtype)
    out[:, ::ih, ::iw, :] = x
    return out


def _conv2d(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a = node.attrs
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    kh, kw = w.shape[1], w.shape[2]
    oh, ow = conv_out_hw(x.shape[1], x.shape[2], kh, kw, a)
    scattered = (tuple(a.input_dilation) != (1, 1) and tuple(a.stride) == tuple(a.dilation) == (1, 1)
                 and a.groups == 1 and not a.depthwise)
    if scattered:
        y = _scattered_conv(x, w, a, oh, ow)
    else:
        xp = _pad_spatial(_dilate_input(x, a.input_dilation), a.pads)
        win = _windows(xp, kh, kw, a.stride, a.dilation, (oh, ow))
        if a.depthwise:
            y = _depthwise_conv(win, w, x.shape[3])
        else:
            pointwise = kh == kw == 1 and tuple(a.stride) == (1, 1) and xp.shape[1:3] == (oh, ow)
            y = _dense_conv(node, win, xp if pointwise else None, w)
    if bias is not None:
        y = y + bias
    return _act(y.astype(np.float32, copy=False), a.act)


def _depthwise_conv(win: np.ndarray, w: np.ndarray, in_ch: int) -> np.ndarray:
    """A depthwise conv tap by tap over the windows [N, OH, OW, kh, kw, C] (weights [1, kh, kw,
    C x multiplier])."""
    n, oh, ow, kh, kw, _ = win.shape
    out_ch = w.shape[3]
    mult = out_ch // in_ch
    y = np.zeros((n, oh, ow, out_ch), np.float32)
    for i in range(kh):
        for j in range(kw):
            tap = win[:, :, :, i, j, :]
            if mult > 1:
                tap = np.repeat(tap, mult, axis=-1)
            y += tap * w[0, i, j, :]
    return y


def _scattered_conv(x: np.ndarray, w: np.ndarray, a, oh: int, ow: int) -> np.ndarray:
    """A stride-1 conv over an input dilated by `input_dilation` (a transposed conv) as one GEMM
    per tap, added to the outputs it reaches: output o = q s + pad - i takes input q through
    tap i, so the dilation's zeros are never multiplied."""
    n, h, wd, _ = x.shape
    (sh, sw), (t, l, _, _) = a.input_dilation, a.pads
    y = np.zeros((n, oh, ow, w.shape[0]), np.float32)

    def span(i: int, pad: int, s: int, size: int, out: int) -> tuple[int, int, int]:
        q0, q1 = max(0, -(-(i - pad) // s)), min(size - 1, (out - 1 + i - pad) // s) + 1
        return q0, q1, q0 * s + pad - i
    for i in range(w.shape[1]):
        q0, q1, o0 = span(i, t, sh, h, oh)
        for j in range(w.shape[2]):
            r0, r1, p0 = span(j, l, sw, wd, ow)
            if q1 > q0 and r1 > r0:
                y[:, o0:o0 + (q1 - q0 - 1) * sh + 1:sh, p0:p0 + (r1 - r0 - 1) * sw + 1:sw] += \
                    x[:, q0:q1, r0:r1] @ w[:, i, j, :].T
    return y


def _dense_conv(node: Node, win: np.ndarray, pointwise: np.ndarray | None, w: np.ndarray) -> np.ndarray:
    """A dense or grouped conv as im2col GEMMs: one per group when the whole im2col is within
    TENSOR_ELEMENTS, else over bands of output rows each within it (a large map, e.g. a
    spectrogram of 901 x 161 under 128 channels)."""
    n, oh, ow, kh, kw, _ = win.shape
    g, cin_g, out_ch = node.attrs.groups, w.shape[3], w.shape[0]
    cout_g, depth = out_ch // g, kh * kw * cin_g
    TENSOR_ELEMENTS.check(ow * depth, f"the float im2col of one output row of {node.name}", ModelError)
    src = win if pointwise is None else pointwise[:, :, :, None, None, :]
    whole = n * oh * ow * depth <= TENSOR_ELEMENTS.value
    bands = [(slice(None), slice(None))] if whole else \
        [(slice(b, b + 1), slice(r, r + rows)) for rows in [max(1, TENSOR_ELEMENTS.value // (ow * depth))]
         for b in range(n) for r in range(0, oh, rows)]
    y = np.empty((n, oh, ow, out_ch), np.float32)
    for gi in range(g):
        wg = w[gi * cout_g:(gi + 1) * cout_g].reshape(cout_g, -1).T
        for bs, rs in bands:
            part = src[bs, rs, ..., gi * cin_g:(gi + 1) * cin_g]
            y[bs, rs, :, gi * cout_g:(gi + 1) * cout_g] = \
                (part.reshape(-1, depth) @ wg).reshape(*part.shape[:3], cout_g)
    return y


def _fully_connected(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    y = ins[0] @ ins[1].T
    if len(ins) > 2:
        y = y + ins[2]
    return _act(y, node.attrs.act)


def _pool(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a, x = node.attrs, ins[0]
    (kh, kw), (sh, sw), (t, l, b, r) = a.kernel, a.stride, a.pads
    oh = (x.shape[1] + t + b - kh) // sh + 1
    ow = (x.shape[2] + l + r - kw) // sw + 1
    if node.op is Op.MAX_POOL:
        xp = _pad_spatial(x, a.pads, -np.inf)
        y = _windows(xp, kh, kw, (sh, sw), (1, 1), (oh, ow)).max(axis=(3, 4))
    else:
        xp = _pad_spatial(x, a.pads)
        y = _windows(xp, kh, kw, (sh, sw), (1, 1), (oh, ow)).sum(axis=(3, 4))
        if a.count_include_pad:
            y = y / (kh * kw)
        else:
            ones = _pad_spatial(np.ones((1,) + x.shape[1:3] + (1,), np.float32), a.pads)
            counts = _windows(ones, kh, kw, (sh, sw), (1, 1), (oh, ow)).sum(axis=(3, 4))
            y = y / counts
    return _act(y.astype(np.float32), a.act)


def _resize_scale(out_len: int, in_len: int, align: bool) -> np.float32:
    if align and out_len > 1:
        return np.float32(in_len - 1) / np.float32(out_len - 1)
    return np.float32(in_len) / np.float32(out_len)


def _resize(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    """TFLite RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR semantics on NHWC."""
    a, x = node.attrs, ins[0]
    axes = []
    for out_len, in_len in zip(a.size, x.shape[1:3]):
        pos = np.arange(out_len, dtype=np.float32)
        axes.append((pos, _resize_scale(out_len, in_len, a.align_corners), in_len))
    if a.mode == "nearest":
        idx = []
        for pos, scale, in_len in axes:
            src = (pos + np.float32(0.5 if a.half_pixel_centers else 0.0)) * scale
            src = np.floor(src + np.float32(0.5)) if a.align_corners else np.floor(src)
            idx.append(np.clip(src.astype(np.int64), 0, in_len - 1))
        return x[:, idx[0]][:, :, idx[1]]
    if a.mode != "bilinear":
        raise ModelError(f"{node.name}: unknown resize mode {a.mode!r}")
    y = x.astype(np.float32)
    for axis, (pos, scale, in_len) in zip((1, 2), axes):
        src = (pos + np.float32(0.5)) * scale - np.float32(0.5) if a.half_pixel_centers else pos * scale
        lo = np.floor(src)
        frac = (src - lo).astype(np.float32)
        i0 = np.clip(lo.astype(np.int64), 0, in_len - 1)
        i1 = np.clip(np.ceil(src).astype(np.int64), 0, in_len - 1)
        shape = [1, 1, 1, 1]
        shape[axis] = -1
        f = frac.reshape(shape)
        y = np.take(y, i0, axis=axis) * (1 - f) + np.take(y, i1, axis=axis) * f
    return y


def _softmax(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a = node.attrs
    z = ins[0] * a.beta
    z = np.exp(z - z.max(axis=a.axis, keepdims=True))
    return z / z.sum(axis=a.axis, keepdims=True)


def _slice(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a = node.attrs
    return ins[0][tuple(slice(b, e, s) for b, e, s in zip(a.begin, a.end, a.step))]


def _eltwise(fn) -> Kernel:
    def run(node: Node, ins: list[np.ndarray]) -> np.ndarray:
        return _act(fn(ins[0], ins[1]), getattr(node.attrs, "act", None))
    return run


def _clamp(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    a = node.attrs
    return _act(ins[0], a if isinstance(a, Clamp) else Clamp(0.0, None))


def _hard_swish(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    x = ins[0]
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _sigmoid(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return (0.5 * (np.tanh(0.5 * ins[0]) + 1.0)).astype(np.float32)


def _identity(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    return ins[0]


KERNELS: dict[Op, Kernel] = {
    Op.CONV2D: _conv2d,
    Op.FULLY_CONNECTED: _fully_connected,
    Op.ADD: _eltwise(np.add),
    Op.SUB: _eltwise(np.subtract),
    Op.MUL: _eltwise(np.multiply),
    Op.MAXIMUM: _eltwise(np.maximum),
    Op.MINIMUM: _eltwise(np.minimum),
    Op.MAX_POOL: _pool,
    Op.AVG_POOL: _pool,
    Op.MEAN: lambda n, i: i[0].mean(axis=tuple(n.attrs.axes), keepdims=n.attrs.keepdims),
    Op.REDUCE_SUM: lambda n, i: i[0].sum(axis=tuple(n.attrs.axes), keepdims=n.attrs.keepdims),
    Op.REDUCE_MAX: lambda n, i: i[0].max(axis=tuple(n.attrs.axes), keepdims=n.attrs.keepdims),
    Op.COMPARE: lambda n, i: kc.float_compare(n.attrs.fn, i[0], i[1]),
    Op.LOGICAL: lambda n, i: kc.float_compare(n.attrs.fn, i[0] != 0, i[1] != 0),
    Op.LOGICAL_NOT: lambda n, i: i[0] == 0,
    Op.WHERE: lambda n, i: np.where(i[0] != 0, i[1], i[2]),
    Op.ARG_MAX: lambda n, i: arg_max(i[0], n.attrs.axis, n.attrs.last, n.attrs.keepdims, smallest=n.attrs.smallest),
    Op.REDUCE_MIN: lambda n, i: i[0].min(axis=tuple(n.attrs.axes), keepdims=n.attrs.keepdims),
    Op.CLAMP: _clamp,
    Op.LEAKY_RELU: lambda n, i: np.where(i[0] >= 0, i[0], i[0] * np.float32(n.attrs.alpha)),
    Op.PRELU: lambda n, i: np.where(i[0] >= 0, i[0], i[0] * i[1]),
    Op.SIGMOID: _sigmoid,
    Op.TANH: lambda n, i: np.tanh(i[0]),
    Op.UNARY: lambda n, i: unary_float(n.attrs.fn, i[0], n.attrs.alpha, n.attrs.gamma),
    Op.HARD_SWISH: _hard_swish,
    Op.SOFTMAX: _softmax,
    Op.CONCAT: lambda n, i: np.concatenate(i, axis=n.attrs.axis),
    Op.SLICE: _slice,
    Op.PAD: lambda n, i: (np.pad(i[0], n.attrs.pads, mode="reflect") if n.attrs.mode == "reflect"
                          else np.pad(i[0], n.attrs.pads, constant_values=n.attrs.value)),
    Op.MAGNITUDE: lambda n, i: np.sqrt(np.sum(np.stack(np.split(i[0].astype(np.float64), 2, n.attrs.axis)) ** 2,
                                              axis=0)).astype(np.float32),
    Op.RESHAPE: lambda n, i: i[0].reshape(n.attrs.shape),
    Op.TRANSPOSE: lambda n, i: np.ascontiguousarray(i[0].transpose(n.attrs.perm)),
    Op.RESIZE: _resize,
    Op.QUANTIZE: _identity,
    Op.DEQUANTIZE: _identity,
    Op.MATMUL: lambda n, i: np.matmul(i[0], np.swapaxes(i[1], -1, -2) if n.attrs.transpose_b else i[1]),
    Op.LAYER_NORM: lambda n, i: kt.layer_norm_float(i[0], i[1], i[2], n.attrs.epsilon),
    Op.GELU: lambda n, i: kt.gelu_float(i[0], n.attrs.approximate),
    Op.HOST_FLOAT: lambda n, i: host_float.run_float(n.attrs, i)[0],
    Op.HOST_TFLITE: lambda n, i: host_tflite.run_float(n.attrs, i)[0],
    Op.GATHER: lambda n, i: kt.gather(i[0], np.asarray(i[1]).astype(np.int64)),
}


def run_node(node: Node, ins: list[np.ndarray]) -> np.ndarray:
    kernel = KERNELS.get(node.op)
    if kernel is None:
        raise ModelError(f"{node.name}: the float executor has no kernel for {node.op.value}")
    return np.asarray(kernel(node, ins), dtype=np.float32)


def run_outputs(node: Node, ins: list[np.ndarray]) -> list[np.ndarray]:
    """Every output of `node`: a host node's integer or boolean results keep their type."""
    if node.op is Op.HOST_FLOAT:
        return host_float.run_float(node.attrs, ins)
    if node.op is Op.HOST_TFLITE:
        return host_tflite.run_float(node.attrs, ins)
    if node.op is Op.LSTM:          # the output sequence, final hidden and cell states
        from . import kernels_lstm  # (the recurrent kernels: only for a model with one)
        a = node.attrs
        y, h, c = kernels_lstm.lstm_float(ins[0], ins[4], ins[5], ins[1], ins[2], ins[3], a.reverse,
                                          ins[6] if a.peephole else None, a.gate_clip)
        return [y, h, c][:len(node.outputs)]
    if node.op is Op.GRU:           # the output sequence and final hidden state
        from . import kernels_gru
        a = node.attrs
        y, h = kernels_gru.gru_float(ins[0], ins[5], ins[1], ins[2], ins[3], ins[4], a.linear_before_reset, a.reverse,
                                     kernels_gru.cell_mode(a.rnn))
        return [y, h][:len(node.outputs)]
    return [run_node(node, ins)]


def run_float(g: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False,
              visit: Callable[[str, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
    """Run a float graph on `feeds`; return its outputs (or every activation when keep_all).
    `visit(name, value)` is called on each input and each node output as it is made."""
    with single_threaded():
        return _run_float(g, feeds, keep_all, visit)


def _run_float(g: Graph, feeds: dict[str, np.ndarray], keep_all: bool,
               visit: Callable[[str, np.ndarray], None] | None) -> dict[str, np.ndarray]:
    values: dict[str, np.ndarray] = {}
    for name in g.inputs:
        if name not in feeds:
            raise InputError(f"missing input {name!r} (the model's inputs: {', '.join(g.inputs)})")
        arr = np.asarray(feeds[name], dtype=np.float32)
        want = g.tensors[name].shape
        if arr.shape != want:
            raise InputError(f"input {name!r} has shape {arr.shape}, the model expects {want}")
        values[name] = arr
        if visit is not None:
            visit(name, arr)
    consts = {n: t.const_data.astype(np.float32, copy=False) for n, t in g.tensors.items() if t.is_const}
    uses: dict[str, int] = {}
    for node in g.nodes:
        for t in node.inputs:
            uses[t] = uses.get(t, 0) + 1
    keep = set(g.outputs)
    for node in g.nodes:
        ins = [values[t] if t in values else consts[t] for t in node.inputs]
        made = run_outputs(node, ins)
        values.update(zip(node.outputs, made))
        if visit is not None:
            for name, value in zip(node.outputs, made):
                visit(name, value)
        if not keep_all:
            for t in node.inputs:
                uses[t] -= 1
                if uses[t] == 0 and t not in keep and t in values:
                    del values[t]
    if keep_all:
        return values
    return {name: values[name] if name in values else consts[name] for name in g.outputs}
