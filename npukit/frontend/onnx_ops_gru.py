"""ONNX GRU -> IR GRU nodes (quantised later into npukit's integer GRU, kernels_gru).

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
    at = attributes(node)
    refused = [k for k in ("clip", "activations", "activation_alpha", "activation_beta") if k in at]
    lbr = int(at.get("linear_before_reset", 0))
    direction = at.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    if direction not in ("forward", "reverse", "bidirectional") or at.get("layout", 0) or refused:
        raise UnsupportedOpError(f"GRU with {refused or 'a direction or layout'} other than the default cell")
    if len(node.input) > 4 and node.input[4]:
        raise UnsupportedOpError("GRU with sequence_lens")
    x = b.act(node.input[0])
    if x.rank != 3:
        raise UnsupportedOpError(f"GRU input of shape {x.shape}")
    steps, batch, n_in = x.shape
    w, r = b.const(node.input[1], "GRU weight W"), b.const(node.input[2], "GRU weight R")
    hidden, dirs = r.shape[-1], w.shape[0]
    if dirs != (2 if direction == "bidirectional" else 1):
        raise ModelError(f"GRU {direction} with weights for {dirs} directions")
    bias = b.opt_const(node, 3)
    bias = np.zeros((dirs, 6 * hidden), np.float32) if bias is None else bias
    src = b.source[-1]
    xb = b.emit(Op.TRANSPOSE, [b.onnx_layout(node.input[0])], TransposeAttrs((1, 0, 2)), b.fresh(f"{src}/x"))
    per_dir: list[list[str]] = [[], []]                    # a bidirectional GRU's Y, Y_h
    for d in range(dirs):
        tag = "" if dirs == 1 else f"_{d}"
        rb = bias[d, 3 * hidden:]
        bias_in = bias[d, :3 * hidden] + rb * np.repeat(np.asarray([1, 1, 1 - lbr], np.float32), hidden)
        ins = [xb, b.add_const(w[d].reshape(3, hidden, n_in), f"{src}/w_input{tag}"),
               b.add_const(r[d].reshape(3, hidden, hidden), f"{src}/w_recurrent{tag}"),
               b.add_const(bias_in.reshape(3, hidden).astype(np.float32), f"{src}/bias{tag}"),
               b.add_const((rb[2 * hidden:] * lbr).astype(np.float32), f"{src}/recurrent_bias{tag}"),
               initial_state(b, node, 5, d, batch, hidden, "h")]
        outs = [b.fresh(f"{src}/y{tag}"), b.fresh(f"{src}/h{tag}")]
        back = direction == "reverse" or d == 1
        b.emit_outputs(Op.GRU, ins, GruAttrs(lbr, back), outs, [DType.F32] * 2, b.claim_name())
        direction_outputs(b, node, outs, d, dirs, (steps, batch, hidden), per_dir)
    concat_directions(b, node, per_dir)


GRU_CONVERTERS = {"GRU": gru}
