"""ONNX LSTM -> one IR LSTM node (quantised later into TFLite's integer LSTM, kernels_lstm).

Forward direction, default activations (sigmoid, tanh, tanh), no clip, no peephole, no
input_forget, no sequence_lens, layout 0. The gates (ONNX order i, o, f, c) are reordered to
i, f, g, o; the two ONNX biases are summed; X [T, B, I] is transposed to batch-major around
the node, and Y [T, 1, B, H], Y_h and Y_c [1, B, H] are reshapes of its outputs. Other
configurations run in float on the host (the converter refuses them).
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import DType, LstmAttrs, Op, ReshapeAttrs, TransposeAttrs
from .onnx_builder import Builder
from .onnx_const import attributes

_GATES = [0, 2, 3, 1]                   # ONNX i, o, f, c -> i, f, c (g), o


def _state(b: Builder, node, index: int, batch: int, hidden: int, what: str) -> str:
    """initial_h / initial_c [1, B, H] as a [B, H] tensor (zeros when absent)."""
    name = node.input[index] if len(node.input) > index else ""
    if not name:
        return b.add_const(np.zeros((batch, hidden), np.float32), f"{b.source[-1]}/{what}0")
    if b.is_const(name):
        return b.add_const(b.const(name).reshape(batch, hidden), f"{b.source[-1]}/{what}0")
    return b.emit(Op.RESHAPE, [b.onnx_layout(name)], ReshapeAttrs((batch, hidden)), b.fresh(f"{name}/2d"))


def lstm(b: Builder, node) -> None:
    at = attributes(node)
    refused = [k for k in ("clip", "activations", "activation_alpha", "activation_beta") if k in at]
    if at.get("direction", b"forward") not in (b"forward", "forward") or at.get("layout", 0) or \
            at.get("input_forget", 0) or refused:
        raise UnsupportedOpError(f"LSTM with {refused or 'a direction, layout or input_forget'} other than the "
                                 "default forward cell")
    if any(len(node.input) > k and node.input[k] for k in (4, 7)):
        raise UnsupportedOpError("LSTM with sequence_lens or peephole weights")
    x = b.act(node.input[0])
    if x.rank != 3:
        raise UnsupportedOpError(f"LSTM input of shape {x.shape}")
    steps, batch, n_in = x.shape
    w, r = b.const(node.input[1], "LSTM weight W"), b.const(node.input[2], "LSTM weight R")
    hidden = r.shape[-1]
    bias = b.opt_const(node, 3)
    bias = np.zeros((1, 8 * hidden), np.float32) if bias is None else bias
    w_in = w[0].reshape(4, hidden, n_in)[_GATES]
    w_rec = r[0].reshape(4, hidden, hidden)[_GATES]
    bias_ir = (bias[0, :4 * hidden] + bias[0, 4 * hidden:]).reshape(4, hidden)[_GATES]
    src = b.source[-1]
    xb = b.emit(Op.TRANSPOSE, [b.onnx_layout(node.input[0])], TransposeAttrs((1, 0, 2)), b.fresh(f"{src}/x"))
    ins = [xb, b.add_const(w_in, f"{src}/w_input"), b.add_const(w_rec, f"{src}/w_recurrent"),
           b.add_const(bias_ir, f"{src}/bias"), _state(b, node, 5, batch, hidden, "h"),
           _state(b, node, 6, batch, hidden, "c")]
    outs = [b.fresh(f"{src}/y"), b.fresh(f"{src}/h"), b.fresh(f"{src}/c")]
    b.emit_outputs(Op.LSTM, ins, LstmAttrs(0.0, 0), outs, [DType.F32] * 3, b.claim_name())
    y, h, c = outs
    if len(node.output) > 0 and node.output[0]:
        tm = b.emit(Op.TRANSPOSE, [y], TransposeAttrs((1, 0, 2)), b.fresh(f"{src}/y_time_major"))
        b.reshape_to_onnx(node.output[0], tm, (steps, 1, batch, hidden))
    for k, state in ((1, h), (2, c)):
        if len(node.output) > k and node.output[k]:
            b.reshape_to_onnx(node.output[k], state, (1, batch, hidden))


RNN_CONVERTERS = {"LSTM": lstm}
