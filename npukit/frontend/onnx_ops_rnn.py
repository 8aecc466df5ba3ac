"""ONNX LSTM -> IR LSTM nodes (quantised later into TFLite's integer LSTM, kernels_lstm).

Default activations (sigmoid, tanh, tanh), layout 0, sequence_lens absent or a constant equal
to the sequence length; input_forget (f = 1 - i) is TFLite's CIFG (i = 1 - f) whose forget gate is
the negated input gate (sigmoid(-z) = 1 - sigmoid(z); ONNX's f gate operands are unused);
constant peephole weights TFLite's peephole LSTM (P's i, o, f rows as the IR's i, f, (0), o); a
clip of the gates' pre-activations LstmAttrs.gate_clip (not with a peephole: the integer cell
clips before it, onnxruntime after). The gates (ONNX order i, o, f, c) are reordered to i, f, g, o; the two
ONNX biases are summed; X [T, B, I] is transposed to batch-major around the nodes. Each
direction is one IR LSTM (a reverse one runs its steps last to first); Y [T, dirs, B, H], Y_h
and Y_c [dirs, B, H] are reshapes of their outputs, concatenated over the directions for a
bidirectional LSTM. Other configurations run in float on the host (the converter refuses
them).
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import ConcatAttrs, DType, LstmAttrs, Op, ReshapeAttrs, SliceAttrs, TransposeAttrs
from .onnx_builder import Builder
from .onnx_const import attributes

_GATES = [0, 2, 3, 1]                   # ONNX i, o, f, c -> i, f, c (g), o


def initial_state(b: Builder, node, index: int, d: int, batch: int, hidden: int, what: str) -> str:
    """Direction d's initial_h / initial_c [dirs, B, H] as a [B, H] tensor (zeros when absent)."""
    name = node.input[index] if len(node.input) > index else ""
    src = b.source[-1]
    if not name:
        return b.add_const(np.zeros((batch, hidden), np.float32), f"{src}/{what}0_{d}")
    if b.is_const(name):
        return b.add_const(b.const(name)[d].reshape(batch, hidden), f"{src}/{what}0_{d}")
    v = b.onnx_layout(name)
    if b.act(name).shape[0] > 1:
        v = b.emit(Op.SLICE, [v], SliceAttrs((d, 0, 0), (d + 1, batch, hidden), (1, 1, 1)), b.fresh(f"{name}/{d}"))
    return b.emit(Op.RESHAPE, [v], ReshapeAttrs((batch, hidden)), b.fresh(f"{name}/2d"))


def _refusal(b: Builder, node, at: dict, steps: int) -> str:
    """Why the integer LSTM does not cover this node ('' when it does)."""
    refused = [k for k in ("activations", "activation_alpha", "activation_beta") if k in at]
    if refused or at.get("layout", 0):
        return f"LSTM with {refused or 'a layout'} other than the default cell"
    if len(node.input) > 7 and node.input[7] and not b.is_const(node.input[7]):
        return "LSTM with computed peephole weights"
    if len(node.input) > 7 and node.input[7] and at.get("clip", 0) > 0:
        return "LSTM with both clip and peephole weights"
    if len(node.input) > 4 and node.input[4]:
        if not b.is_const(node.input[4]) or np.any(b.const(node.input[4]) != steps):
            return "LSTM with sequence_lens other than a constant full length"
    return ""


def lstm(b: Builder, node) -> None:
    at = attributes(node)
    direction = at.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    x = b.act(node.input[0])
    if x.rank != 3:
        raise UnsupportedOpError(f"LSTM input of shape {x.shape}")
    steps, batch, n_in = x.shape
    why = _refusal(b, node, at, steps)
    if why or direction not in ("forward", "reverse", "bidirectional"):
        raise UnsupportedOpError(why or f"LSTM direction {direction!r}")
    w, r = b.const(node.input[1], "LSTM weight W"), b.const(node.input[2], "LSTM weight R")
    hidden = r.shape[-1]
    bias = b.opt_const(node, 3)
    dirs = w.shape[0]
    if dirs != (2 if direction == "bidirectional" else 1):
        raise ModelError(f"LSTM {direction} with weights for {dirs} directions")
    bias = np.zeros((dirs, 8 * hidden), np.float32) if bias is None else bias
    src, coupled = b.source[-1], bool(at.get("input_forget", 0))
    xb = b.emit(Op.TRANSPOSE, [b.onnx_layout(node.input[0])], TransposeAttrs((1, 0, 2)), b.fresh(f"{src}/x"))
    per_dir: list[list[str]] = [[], [], []]               # a bidirectional LSTM's Y, Y_h, Y_c
    for d in range(dirs):
        tag = "" if dirs == 1 else f"_{d}"
        # input_forget (f = 1 - i) is TFLite's CIFG (i = 1 - f) with f = sigmoid(-z_i): the negated i gate
        gates = [0, 3, 1] if coupled else _GATES
        w_in = w[d].reshape(4, hidden, n_in)[gates]
        w_rec = r[d].reshape(4, hidden, hidden)[gates]
        bias_ir = (bias[d, :4 * hidden] + bias[d, 4 * hidden:]).reshape(4, hidden)[gates]
        if coupled:
            w_in[0], w_rec[0], bias_ir[0] = -w_in[0], -w_rec[0], -bias_ir[0]
        ins = [xb, b.add_const(w_in, f"{src}/w_input{tag}"), b.add_const(w_rec, f"{src}/w_recurrent{tag}"),
               b.add_const(bias_ir, f"{src}/bias{tag}"), initial_state(b, node, 5, d, batch, hidden, "h"),
               initial_state(b, node, 6, d, batch, hidden, "c")]
        peephole = len(node.input) > 7 and bool(node.input[7])
        if peephole:                                      # P [dirs, 3H] in ONNX order i, o, f
            p_i, p_o, p_f = b.const(node.input[7])[d].reshape(3, hidden)
            rows = [-p_i, np.zeros(hidden, np.float32), p_o] if coupled else \
                [p_i, p_f, np.zeros(hidden, np.float32), p_o]
            ins.append(b.add_const(np.stack(rows), f"{src}/peephole{tag}"))
        outs = [b.fresh(f"{src}/y{tag}"), b.fresh(f"{src}/h{tag}"), b.fresh(f"{src}/c{tag}")]
        back = direction == "reverse" or d == 1
        attrs = LstmAttrs(0.0, 0, reverse=back, peephole=peephole, gate_clip=float(at.get("clip", 0.0)))
        b.emit_outputs(Op.LSTM, ins, attrs, outs, [DType.F32] * 3, b.claim_name())
        direction_outputs(b, node, outs, d, dirs, (steps, batch, hidden), per_dir)
    concat_directions(b, node, per_dir)


def direction_outputs(b: Builder, node, outs: list[str], d: int, dirs: int, dims: tuple[int, int, int],
                      per_dir: list[list[str]]) -> None:
    """Direction d's batch-major outputs (Y (B, T, H), then final states (B, H)) in ONNX's
    layout: the node's outputs for one direction, else appended to per_dir for the concat."""
    steps, batch, hidden = dims
    src, tag = b.source[-1], "" if dirs == 1 else f"_{d}"
    for k, v in enumerate(outs):
        if len(node.output) <= k or not node.output[k]:
            continue
        shape = (steps, 1, batch, hidden) if k == 0 else (1, batch, hidden)
        if k == 0:
            v = b.emit(Op.TRANSPOSE, [v], TransposeAttrs((1, 0, 2)), b.fresh(f"{src}/y_time_major{tag}"))
        if dirs == 1:
            b.reshape_to_onnx(node.output[k], v, shape)
        else:
            per_dir[k].append(b.emit(Op.RESHAPE, [v], ReshapeAttrs(shape), b.fresh(f"{v}/{d}")))


def concat_directions(b: Builder, node, per_dir: list[list[str]]) -> None:
    """A bidirectional node's outputs: the directions' concatenated (Y on axis 1, states on 0)."""
    for k, parts in enumerate(per_dir):
        if parts:
            b.emit_result(node.output[k], Op.CONCAT, parts, ConcatAttrs(1 if k == 0 else 0), nhwc=False)


RNN_CONVERTERS = {"LSTM": lstm}
