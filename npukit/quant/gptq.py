"""Error-compensating rounding of int8 weights (GPTQ, as its 2023 paper describes), option `gptq`.

A conv's or fully connected layer's output channel is a row w of its weight matrix (columns:
the im2col input taps, kh x kw x in-channel in the weight's own order; a fully connected
layer's inputs). Over the calibration inputs X (one row per output position) the rounding
costs ||X (w_q - w)||^2 = (w_q - w) H (w_q - w)^T with H = X^T X. GPTQ quantises the columns
in order and, after each, moves its rounding error onto the columns not yet quantised through
the upper Cholesky factor U of H^-1 (w[j] -= (w[i] - q[i]) / U[i, i] * U[i, j], j > i), the
optimal update of the rest for that column's error. H is damped by DAMP x its mean diagonal.

Only the rounding changes: each row keeps its round-to-nearest scale (max |w| / 127), and
the column holding a row's largest magnitude keeps its code +-127 (its error is pushed on
like any other), so conv_weights.weights_per_channel finds the same scale again in the weights
this returns (codes x scales). Depthwise convs are one small problem per channel (kh x kw
taps of its input channel, its own H); grouped convs one per group.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..ir.graph import DType, Graph, Node, Op, Tensor
from ..ir.shapes import conv_out_hw
from ..kernels.float_exec import _dilate_input, _pad_spatial, _windows
from ..threads import single_threaded
from .conv_weights import weights_per_channel

DAMP = 0.01         # of H's mean diagonal, added to its diagonal (the paper's default)
BLOCK = 128         # columns quantised together before the update of the rest (lazy batch)
CHUNK = 1 << 22     # im2col elements formed at once


def gptq_rows(w: np.ndarray, scales: np.ndarray, h: np.ndarray, damp: float = DAMP,
              block: int = BLOCK) -> np.ndarray:
    """int8 codes of the rows of `w` [R, K] at `scales` [R], columns rounded in order with
    GPTQ's error feedback. `h`: [K, K] shared by every row, or [R, K, K] one per row."""
    w = np.asarray(w, np.float64).copy()
    s = np.asarray(scales, np.float64)
    u = _inverse_factor(np.asarray(h, np.float64), damp)
    rows, k = w.shape
    anchor = np.full((rows, k), False)         # each row's largest magnitude keeps +-127
    anchor[np.arange(rows), np.argmax(np.abs(w), axis=1)] = True
    anchor &= np.abs(w) > 0
    top = np.sign(w) * 127
    codes = np.zeros((rows, k), np.int8)
    for a in range(0, k, block):
        b = min(a + block, k)
        wb, err = w[:, a:b], np.zeros((rows, b - a))
        for i in range(b - a):
            q = np.where(anchor[:, a + i], top[:, a + i], np.clip(np.round(wb[:, i] / s), -127, 127))
            codes[:, a + i] = q
            ui = u[..., a + i, a:b]                 # [b - a] or [R, b - a]
            e = (wb[:, i] - q * s) / u[..., a + i, a + i]
            wb[:, i:] -= e[:, None] * (ui[..., i:] if ui.ndim == 2 else ui[None, i:])
            err[:, i] = e
        if b < k:
            w[:, b:] -= (np.einsum("ri,rij->rj", err, u[:, a:b, b:]) if u.ndim == 3 else err @ u[a:b, b:])
    return codes


def _inverse_factor(h: np.ndarray, damp: float) -> np.ndarray:
    """Upper Cholesky factor U of the damped H's inverse (H^-1 = U^T U; batched over leading
    axes): U = R^-1 with H = R R^T, R upper (the Cholesky factor of H in reversed order)."""
    k = h.shape[-1]
    mean = np.mean(np.diagonal(h, axis1=-2, axis2=-1), axis=-1)
    lam = damp * np.where(mean > 0, mean, 1.0)
    for _ in range(6):
        try:
            low = np.linalg.cholesky((h + lam[..., None, None] * np.eye(k))[..., ::-1, ::-1])
            return _upper_inverse(low[..., ::-1, ::-1])
        except np.linalg.LinAlgError:
            lam = lam * 10
    raise np.linalg.LinAlgError("damped Hessian is not positive definite")


def _upper_inverse(r: np.ndarray) -> np.ndarray:
    """The inverse of upper triangular `r` (batched), by halves: [[A, B], [0, C]]^-1 =
    [[A^-1, -A^-1 B C^-1], [0, C^-1]] (matrix products, no general inverse of the whole)."""
    k = r.shape[-1]
    if k <= 64:
        return np.triu(np.linalg.inv(r))
    m = k // 2
    a, c = _upper_inverse(r[..., :m, :m]), _upper_inverse(r[..., m:, m:])
    out = np.zeros_like(r)
    out[..., :m, :m], out[..., m:, m:] = a, c
    out[..., :m, m:] = -(a @ r[..., :m, m:]) @ c
    return out


def _taps(node: Node, x: np.ndarray, kh: int, kw: int):
    """The conv's input windows [N, OH, OW, kh, kw, C] (padding and input dilation applied)."""
    a = node.attrs
    oh, ow = conv_out_hw(x.shape[1], x.shape[2], kh, kw, a)
    xp = _pad_spatial(_dilate_input(np.asarray(x, np.float32), a.input_dilation), a.pads)
    return _windows(np.ascontiguousarray(xp), kh, kw, a.stride, a.dilation, (oh, ow))


def hessian(node: Node, w: np.ndarray, inputs: list[np.ndarray]) -> np.ndarray:
    """X^T X of the layer's inputs: [K, K] (fully connected), [groups, K, K] (conv: K =
    kh x kw x in-channels of a group) or [C, kh x kw, kh x kw] (depthwise: per output channel)."""
    if node.op is Op.FULLY_CONNECTED:
        xs = [np.asarray(x, np.float32).reshape(-1, w.shape[1]) for x in inputs]
        return sum((np.asarray(x.T @ x, np.float64) for x in xs), np.zeros((w.shape[1],) * 2))
    depthwise, groups = node.attrs.depthwise, node.attrs.groups
    kh, kw = w.shape[1], w.shape[2]
    cin = w.shape[3]        # a group's input channels (depthwise: the output channels)
    total: np.ndarray | None = None
    for x in inputs:
        win = _taps(node, x, kh, kw)
        n, oh, ow = win.shape[:3]
        if depthwise:       # per channel c and pair of taps a <= b: sum over positions of x_a x_b
            c_in, t = x.shape[3], kh * kw
            taps = [win[:, :, :, i, j, :] for i in range(kh) for j in range(kw)]
            part = np.zeros((c_in, t, t))
            for a in range(t):
                for b in range(a, t):
                    part[:, a, b] = part[:, b, a] = np.einsum("nhwc,nhwc->c", taps[a], taps[b])
            part = np.repeat(part, w.shape[3] // c_in, axis=0)
        else:
            part = np.zeros((groups, kh * kw * cin, kh * kw * cin))
            step = max(1, CHUNK // max(ow * kh * kw * x.shape[3], 1))
            for r in range(0, oh, step):
                cols = win[:, r:r + step]
                for gi in range(groups):
                    c = cols[..., gi * cin:(gi + 1) * cin].reshape(-1, kh * kw * cin)
                    part[gi] += c.T @ c
        total = part if total is None else total + part
    assert total is not None, "no inputs"
    return total


def rounded_weights(node: Node, w: np.ndarray, inputs: list[np.ndarray],
                    h: np.ndarray | None = None) -> np.ndarray:
    """`w` (float32, the layer's weight tensor) with GPTQ's rounding: codes x the
    round-to-nearest per-channel scales, in the tensor's own layout. `h`: the layer's X^T X
    (`hessian`) if already summed, else of `inputs`."""
    depthwise = node.op is Op.CONV2D and node.attrs.depthwise
    _, scales = weights_per_channel(w, 3 if depthwise else 0)
    if h is None:
        h = hessian(node, w, inputs)
    if depthwise:       # [1, kh, kw, C]: one row of kh x kw taps per channel
        rows = w.reshape(-1, w.shape[3]).T
        codes = gptq_rows(rows, scales, h)
        out = (codes.astype(np.float32) * scales[:, None]).T.reshape(w.shape)
    elif node.op is Op.FULLY_CONNECTED:
        out = gptq_rows(w, scales, h).astype(np.float32) * scales[:, None]
    else:               # [O, kh, kw, I]: a group's rows share its H
        rows, groups = w.reshape(w.shape[0], -1), h.shape[0]
        per = w.shape[0] // groups
        codes = np.concatenate([gptq_rows(rows[i * per:(i + 1) * per], scales[i * per:(i + 1) * per], h[i])
                                for i in range(groups)])
        out = (codes.astype(np.float32) * scales[:, None]).reshape(w.shape)
    return out.astype(np.float32)


def gptq_weights(g: Graph, values: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Every float conv / fully connected weight of `g` that calibration `values` (float
    tensors of samples, as calibrate.observe keeps them) reach, GPTQ-rounded: name -> weights
    (dequantised float32). A weight shared by two layers keeps round-to-nearest."""
    return gptq_subsets(g, values, [range(len(values))])[0]


def eligible_layers(g: Graph) -> frozenset[str]:
    """The conv / fully connected layers whose weights GPTQ rounds: float constant weights
    read by that layer alone, on a float input."""
    readers: dict[str, int] = {}
    for node in g.nodes:
        for name in node.inputs:
            readers[name] = readers.get(name, 0) + 1
    out = set()
    for node in g.nodes:
        if node.op not in (Op.CONV2D, Op.FULLY_CONNECTED) or len(node.inputs) < 2:
            continue
        wt, x = g.tensors[node.inputs[1]], node.inputs[0]
        if (wt.is_const and wt.quant is None and wt.dtype is DType.F32
                and g.tensors[x].dtype is DType.F32 and readers[wt.name] == 1):
            out.add(node.name)
    return frozenset(out)


def gptq_subsets(g: Graph, values: list[dict[str, np.ndarray]],
                 subsets: list[Sequence[int]]) -> list[dict[str, np.ndarray]]:
    """`gptq_weights` on each subset of `values` (indices; e.g. all but a held-out fold): each
    layer's X^T X summed per sample once, the rounding done per subset."""
    layers = eligible_layers(g)
    out: list[dict[str, np.ndarray]] = [{} for _ in subsets]
    with single_threaded():     # (BLAS threads lose badly on a shared machine: npukit.threads)
        for node in g.nodes:
            if node.name not in layers:
                continue
            wt, x = g.tensors[node.inputs[1]], node.inputs[0]
            if len(subsets) == 1:       # one X^T X summed as it goes (no per-sample copies held)
                seen = [values[i][x] for i in subsets[0] if x in values[i]]
                if seen:
                    out[0][wt.name] = rounded_weights(node, wt.const_data, seen)
                continue
            per = {i: hessian(node, wt.const_data, [v[x]]) for i, v in enumerate(values) if x in v}
            for got, subset in zip(out, subsets):
                hs = [per[i] for i in subset if i in per]
                if hs:
                    got[wt.name] = rounded_weights(node, wt.const_data, [], sum(hs[1:], hs[0]))
    return out


def with_weights(g: Graph, weights: dict[str, np.ndarray]) -> Graph:
    """`g` with the named constant tensors' values replaced (same shapes); `g` itself if none."""
    if not weights:
        return g
    tensors = dict(g.tensors)
    for name, data in weights.items():
        t = tensors[name]
        tensors[name] = Tensor(name, t.shape, t.dtype, data, t.quant)
    return g.with_nodes(g.nodes, tensors)
