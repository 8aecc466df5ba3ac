"""ONNX operators imported as HOST_FLOAT nodes: run in float on the host beside the NPU.

Only the operators listed here take this path (recurrent cells, powers, non-constant
padding modes but reflect); any other operator without a converter is still refused, so a model never
silently falls back to the CPU for something the NPU should run.
"""
from __future__ import annotations

import numpy as np
import onnx

from ..ir.graph import Op
from ..quant.host_float import make_attrs
from .onnx_builder import Builder

HOST_OPS = frozenset({"LSTM", "GRU", "RNN", "Pow"})
_HOST_PAD_MODES = (b"edge", b"wrap")        # reflect is an IR PAD (DMA with negative strides)


def runs_on_host(node: onnx.NodeProto, values: dict) -> bool:
    if node.domain not in ("", "ai.onnx"):
        return False
    if node.op_type == "Gather":        # picking rows of an activation (a recurrent state)
        return len(node.input) == 2 and not isinstance(values.get(node.input[0]), np.ndarray) \
            and isinstance(values.get(node.input[1]), np.ndarray)
    if node.op_type == "Pad":
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        return mode in _HOST_PAD_MODES
    return node.op_type in HOST_OPS


def emit_host(b: Builder, node: onnx.NodeProto, opset: int) -> None:
    """One HOST_FLOAT IR node per used output of `node`, each in ONNX layout. Float constants
    (weights) become IR constants; integer ones (pads, axes, indices) go inside the node."""
    ir_inputs: list[str] = []
    examples: list[np.ndarray] = []
    embedded: dict[str, np.ndarray] = {}
    renamed = onnx.NodeProto()
    renamed.CopyFrom(node)
    del renamed.input[:]
    del renamed.output[:]
    for i, name in enumerate(node.input):
        local = f"in{i}" if name else ""
        renamed.input.append(local)
        if not name:
            continue
        value = b.values[name]
        if isinstance(value, np.ndarray) and value.dtype.kind != "f":
            embedded[local] = value
        elif isinstance(value, np.ndarray):
            ir_inputs.append(b.add_const(value, name))
            examples.append(value.astype(np.float32))
        else:
            ir_inputs.append(b.onnx_layout(name))
            examples.append(np.zeros(value.shape, np.float32))
    renamed.output.extend(f"out{k}" if out else "" for k, out in enumerate(node.output))
    for k, out in enumerate(node.output):
        if not out:
            continue
        attrs = make_attrs(renamed, k, examples, embedded, opset)
        name = b.out_name(out, False) if len(attrs.out_shape) == 4 else b.fresh(out, own=out)
        b.emit(Op.HOST_FLOAT, ir_inputs, attrs, name)
        b.set_onnx_layout(out, name)
