"""Sequential GPTQ (option `gptq=sequential`): each layer rounded against the inputs it gets
once the layers before it are rounded, and re-fitted to the float layer's output.

`quant.gptq` rounds every conv / FC on the float model's own inputs X, so the error of the
rounded layers before it reaches each layer uncorrected, and adds up along the chain. Here
the float model runs layer by layer with every conv / FC before the current one already at
its rounded weights, giving the layer's inputs X_q beside the float inputs X_f. A row w
(an output channel) is first re-fitted so that X_q w' reproduces the float output X_f w:

    w' = (X_q^T X_q + lam I)^-1 (X_q^T X_f w + lam w),   lam = FIT_DAMP x mean diag(X_q^T X_q)

(ridge least squares shrunk towards w, not towards 0: with few calibration samples X_q^T X_q
is of low rank and the undamped fit follows the samples), then w' is rounded with GPTQ on
H = X_q^T X_q at its own per-channel scale (max |w'| / 127). With no error upstream (X_q =
X_f) w' = w and this is `gptq=auto`'s rounding of that layer.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..ir.graph import Graph, Node, Op
from ..kernels.float_exec import run_outputs
from ..threads import single_threaded
from .gptq import CHUNK, _taps, eligible_layers, gptq_rows, hessian

FIT_DAMP = 0.1      # of X_q^T X_q's mean diagonal: how far the re-fit may move w (measured, docs/numerics.md)


def cross_gram(node: Node, w: np.ndarray, xa: list[np.ndarray], xb: list[np.ndarray]) -> np.ndarray:
    """A^T B of the layer's im2col rows of inputs `xa` and `xb` (sample by sample, same
    shapes), laid out as `quant.gptq.hessian` (which is cross_gram(x, x))."""
    if node.op is Op.FULLY_CONNECTED:
        k = w.shape[1]
        return sum((np.asarray(a, np.float64).reshape(-1, k).T @ np.asarray(b, np.float64).reshape(-1, k)
                    for a, b in zip(xa, xb)), np.zeros((k, k)))
    kh, kw, cin = w.shape[1], w.shape[2], w.shape[3]
    total: np.ndarray | None = None
    for a, b in zip(xa, xb):
        wa, wb = _taps(node, a, kh, kw), _taps(node, b, kh, kw)
        oh, ow = wa.shape[1:3]
        if node.attrs.depthwise:
            c_in, t = a.shape[3], kh * kw
            part = np.einsum("nac,nbc->cab", wa.reshape(-1, t, c_in), wb.reshape(-1, t, c_in), dtype=np.float64)
            part = np.repeat(part, w.shape[3] // c_in, axis=0)
        else:
            groups = node.attrs.groups
            part = np.zeros((groups, kh * kw * cin, kh * kw * cin))
            step = max(1, CHUNK // max(ow * kh * kw * a.shape[3], 1))
            for r in range(0, oh, step):
                for gi in range(groups):
                    ca = wa[:, r:r + step, ..., gi * cin:(gi + 1) * cin].reshape(-1, kh * kw * cin)
                    cb = wb[:, r:r + step, ..., gi * cin:(gi + 1) * cin].reshape(-1, kh * kw * cin)
                    part[gi] += np.asarray(ca.T @ cb, np.float64)
        total = part if total is None else total + part
    assert total is not None, "no inputs"
    return total


def by_rows(node: Node, w: np.ndarray, mats: Sequence[np.ndarray],
            fn: Callable[..., np.ndarray]) -> np.ndarray:
    """`w` with its rows (output channels: [R, K] with K the im2col taps) replaced by
    fn(rows, *mats sliced to them) (float rows), for `mats` in `hessian`'s layout: one [K, K]
    (fully connected), one per group (conv) or one per row (depthwise, [R, K, K])."""
    w64 = np.asarray(w, np.float64)
    if node.op is Op.FULLY_CONNECTED:
        return fn(w64, *mats).astype(np.float32)
    if node.attrs.depthwise:        # [1, kh, kw, C]: one row of kh x kw taps per channel
        return fn(w64.reshape(-1, w.shape[3]).T, *mats).T.reshape(w.shape).astype(np.float32)
    rows, groups = w64.reshape(w.shape[0], -1), mats[0].shape[0]
    per = w.shape[0] // groups
    return np.concatenate([fn(rows[i * per:(i + 1) * per], *(m[i] for m in mats))
                           for i in range(groups)]).reshape(w.shape).astype(np.float32)


def refit(rows: np.ndarray, hq: np.ndarray, c: np.ndarray, fit_damp: float = FIT_DAMP) -> np.ndarray:
    """Rows [R, K] re-fitted so that X_q w' reproduces X_f w, shrunk towards w: the minimiser
    of ||X_q w' - X_f w||^2 + lam ||w' - w||^2 (`hq` = X_q^T X_q, `c` = X_q^T X_f: [K, K] or one
    per row [R, K, K]; lam = fit_damp x hq's mean diagonal)."""
    k = rows.shape[1]
    mean = np.mean(np.diagonal(hq, axis1=-2, axis2=-1), axis=-1)
    lam = fit_damp * np.where(mean > 0, mean, 1.0)
    if hq.ndim == 2:
        return np.linalg.solve(hq + lam * np.eye(k), c @ rows.T + lam * rows.T).T
    rhs = np.einsum("rkl,rl->rk", c, rows) + lam[:, None] * rows
    return np.linalg.solve(hq + lam[:, None, None] * np.eye(k), rhs[..., None])[..., 0]


def refit_rounded(rows: np.ndarray, hq: np.ndarray, c: np.ndarray, fit_damp: float = FIT_DAMP) -> np.ndarray:
    """`refit`'s rows GPTQ-rounded on `hq` at their own per-channel scales: the dequantised rows."""
    target = refit(rows, hq, c, fit_damp)
    amax = np.max(np.abs(target), axis=1)
    scales = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32).astype(np.float64)
    return gptq_rows(target, scales, hq).astype(np.float64) * scales[:, None]


def sequential_subsets(g: Graph, values: list[dict[str, np.ndarray]], subsets: list[Sequence[int]],
                       fit_damp: float = FIT_DAMP) -> list[dict[str, np.ndarray]]:
    """Sequential GPTQ's weights (name -> dequantised float32) on each subset of `values`
    (the calibration samples' float tensors, as calibrate.observe keeps them): one pass of
    the graph per subset, every conv / FC rounded on the inputs the rounded layers before it
    give (`quant.gptq.eligible_layers`: the layers `gptq=auto` rounds)."""
    layers = eligible_layers(g)
    consts = {n: t.const_data for n, t in g.tensors.items() if t.is_const}
    out: list[dict[str, np.ndarray]] = []
    with single_threaded():
        for subset in subsets:
            vals = [values[i] for i in subset]
            cur = [{n: v[n] for n in g.inputs if n in v} for v in vals]
            got: dict[str, np.ndarray] = {}
            for node in g.nodes:
                if not cur or not all(t in consts or t in cur[0] for t in node.inputs):
                    continue
                wname = node.inputs[1] if node.name in layers else None
                if wname is not None and all(node.inputs[0] in v for v in vals):
                    w = consts[wname]
                    xf, xq = [v[node.inputs[0]] for v in vals], [c[node.inputs[0]] for c in cur]
                    got[wname] = by_rows(node, w, [hessian(node, w, xq), cross_gram(node, w, xq, xf)],
                                         lambda r, hq, c: refit_rounded(r, hq, c, fit_damp))
                for c in cur:
                    made = run_outputs(node, [got[t] if t in got else c[t] if t in c else consts[t]
                                              for t in node.inputs])
                    c.update(zip(node.outputs, made))
            out.append(got)
    return out
