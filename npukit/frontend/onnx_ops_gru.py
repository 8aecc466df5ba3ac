"""ONNX GRU and RNN -> IR GRU nodes (quantised later into npukit's integer GRU, kernels_gru; an
RNN is its single-gate cell, GruAttrs.rnn "tanh" or "relu", the two biases summed).

Default activations (sigmoid, tanh), no clip, no sequence_lens, layout 0; linear_before_reset
0 or 1; direction forward, reverse or bidirectional. Gates keep ONNX's order z, r, h (n). The
input-side bias sums Wb and Rb (R_n's only when linear_before_reset is 0; with 1 it stays apart,
inside the reset product). X [T, B, I] is transposed to batch-major around the nodes, and each
direction is one IR GRU (a reverse one runs its steps last to first), its outputs put in ONNX's
layout as the LSTM's are (onnx_ops_rnn). Other configurations run in float on the host (the
converter refuses them).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import DType, GruAttrs, Op, TransposeAttrs
from .onnx_builder import Builder
from .onnx_const import attributes
from .onnx_ops_rnn import concat_directions, direction_outputs, initial_state


def gru(b: Builder, node) -> None:
    _recurrent(b, node, "")


def rnn(b: Builder, node) -> None:
    """ONNX RNN with tanh or relu (the same in every direction): GRU_CELL's single-gate modes."""
    acts = attributes(node).get("activations", [b"Tanh"])
    names = {(a.decode() if isinstance(a, bytes) else a).lower() for a in acts}
    if len(names) != 1 or not names <= {"tanh", "relu"}:
        raise UnsupportedOpError(f"RNN with activations {sorted(names)} other than one of tanh or relu")
    _recurrent(b, node, names.pop())


def _recurrent(b: Builder, node, kind: str) -> None:
    """A GRU (kind "") or an RNN (kind "tanh" / "relu") per direction."""
    what, gates = ("RNN", 1) if kind else ("GRU", 3)
    at = attributes(node)
    refused = [k for k in ("clip", "activation_alpha", "activation_beta") + (() if kind else ("activations",))
               if k in at]
    lbr = 0 if kind else int(at.get("linear_before_reset", 0))
    direction = at.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional") or at.get("layout", 0) or refused:
        raise UnsupportedOpError(f"{what} with {refused or 'a direction or layout'} other than the default cell")
    if len(node.input) > 4 and node.input[4]:
        raise UnsupportedOpError(f"{what} with sequence_lens")
    x = b.act(node.input[0])
    if x.rank != 3:
        raise UnsupportedOpError(f"{what} input of shape {x.shape}")
    steps, batch, n_in = x.shape
    w, r = b.const(node.input[1], f"{what} weight W"), b.const(node.input[2], f"{what} weight R")
    hidden, dirs = r.shape[-1], w.shape[0]
    if dirs != (2 if direction == "bidirectional" else 1):
        raise ModelError(f"{what} {direction} with weights for {dirs} directions")
    bias = b.opt_const(node, 3)
    bias = np.zeros((dirs, 2 * gates * hidden), np.float32) if bias is None else bias
    src = b.source[-1]
    xb = b.emit(Op.TRANSPOSE, [b.onnx_layout(node.input[0])], TransposeAttrs((1, 0, 2)), b.fresh(f"{src}/x"))
    per_dir: list[list[str]] = [[], []]                    # a bidirectional node's Y, Y_h
    inside = np.repeat(np.asarray([1, 1, 1 - lbr][-gates:], np.float32), hidden)   # R's biases outside the reset
    for d in range(dirs):
        tag = "" if dirs == 1 else f"_{d}"
        rb = bias[d, gates * hidden:]
        bias_in = bias[d, :gates * hidden] + rb * inside
        rec_bias = rb[(gates - 1) * hidden:] * (lbr if not kind else 0)
        ins = [xb, b.add_const(w[d].reshape(gates, hidden, n_in), f"{src}/w_input{tag}"),
               b.add_const(r[d].reshape(gates, hidden, hidden), f"{src}/w_recurrent{tag}"),
               b.add_const(bias_in.reshape(gates, hidden).astype(np.float32), f"{src}/bias{tag}"),
               b.add_const(rec_bias.astype(np.float32), f"{src}/recurrent_bias{tag}"),
               initial_state(b, node, 5, d, batch, hidden, "h")]
        outs = [b.fresh(f"{src}/y{tag}"), b.fresh(f"{src}/h{tag}")]
        back = direction == "reverse" or d == 1
        b.emit_outputs(Op.GRU, ins, GruAttrs(0 if kind else lbr, back, kind), outs, [DType.F32] * 2, b.claim_name())
        direction_outputs(b, node, outs, d, dirs, (steps, batch, hidden), per_dir)
    concat_directions(b, node, per_dir)


GRU_CONVERTERS = {"GRU": gru, "RNN": rnn}
