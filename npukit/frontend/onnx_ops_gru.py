"""ONNX GRU -> one IR GRU node (quantised later into npukit's integer GRU, kernels_gru).

Forward direction, default activations (sigmoid, tanh), no clip, no sequence_lens, layout 0;
linear_before_reset 0 or 1. Gates keep ONNX's order z, r, h (n). The input-side bias sums Wb
and Rb (R_n's only when linear_before_reset is 0; with 1 it stays apart, inside the reset
product). X [T, B, I] is transposed to batch-major around the node, as for the LSTM
(onnx_ops_rnn); Y [T, 1, B, H] and Y_h [1, B, H] are reshapes of its outputs. Other
configurations run in float on the host (the converter refuses them).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, GruAttrs, Op, TransposeAttrs
from .onnx_builder import Builder
from .onnx_const import attributes
from .onnx_ops_rnn import initial_state


def gru(b: Builder, node) -> None:
    at = attributes(node)
    refused = [k for k in ("clip", "activations", "activation_alpha", "activation_beta") if k in at]
    lbr = int(at.get("linear_before_reset", 0))
    if at.get("direction", b"forward") not in (b"forward", "forward") or at.get("layout", 0) or refused:
        raise UnsupportedOpError(f"GRU with {refused or 'a direction or layout'} other than the default forward cell")
    if len(node.input) > 4 and node.input[4]:
        raise UnsupportedOpError("GRU with sequence_lens")
    x = b.act(node.input[0])
    if x.rank != 3:
        raise UnsupportedOpError(f"GRU input of shape {x.shape}")
    steps, batch, n_in = x.shape
    w, r = b.const(node.input[1], "GRU weight W"), b.const(node.input[2], "GRU weight R")
    hidden = r.shape[-1]
    bias = b.opt_const(node, 3)
    bias = np.zeros((1, 6 * hidden), np.float32) if bias is None else bias
    rb = bias[0, 3 * hidden:]
    bias_in = (bias[0, :3 * hidden] + rb * np.repeat(np.asarray([1, 1, 1 - lbr], np.float32), hidden)).reshape(3, hidden)
    src = b.source[-1]
    xb = b.emit(Op.TRANSPOSE, [b.onnx_layout(node.input[0])], TransposeAttrs((1, 0, 2)), b.fresh(f"{src}/x"))
    ins = [xb, b.add_const(w[0].reshape(3, hidden, n_in), f"{src}/w_input"),
           b.add_const(r[0].reshape(3, hidden, hidden), f"{src}/w_recurrent"),
           b.add_const(bias_in.astype(np.float32), f"{src}/bias"),
           b.add_const((rb[2 * hidden:] * lbr).astype(np.float32), f"{src}/recurrent_bias"),
           initial_state(b, node, 5, 0, batch, hidden, "h")]
    outs = [b.fresh(f"{src}/y"), b.fresh(f"{src}/h")]
    b.emit_outputs(Op.GRU, ins, GruAttrs(lbr), outs, [DType.F32] * 2, b.claim_name())
    y, h = outs
    if len(node.output) > 0 and node.output[0]:
        tm = b.emit(Op.TRANSPOSE, [y], TransposeAttrs((1, 0, 2)), b.fresh(f"{src}/y_time_major"))
        b.reshape_to_onnx(node.output[0], tm, (steps, 1, batch, hidden))
    if len(node.output) > 1 and node.output[1]:
        b.reshape_to_onnx(node.output[1], h, (1, batch, hidden))


GRU_CONVERTERS = {"GRU": gru}
