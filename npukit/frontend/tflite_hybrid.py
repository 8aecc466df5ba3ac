"""Hybrid (dynamic-range quantised) TFLite models read as float models.

The TFLite converter's dynamic-range quantisation (`optimizations=[DEFAULT]` without a
representative dataset) stores the weights of FULLY_CONNECTED, CONV_2D, the recurrent cells,
EMBEDDING_LOOKUP and the like as int8 with a scale (per tensor or per channel) while the
activations stay float32; LiteRT's "hybrid" kernels quantise the input on the fly. npukit
quantises the activations itself, so such a weight is its float values, scale x (q - zero
point): `dequantise_hybrid` rewrites each constant int8 / uint8 tensor with quantisation
parameters that only operators with float32 outputs read into a float32 constant, before the
model is validated, and the model is then a float model like any other (calibrated, int8 on
the NPU). A weight also read by an integer operator (a fully quantised model) is left as it is.
"""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from . import tflite_read as rd

_INT_WEIGHTS = (tfl.TensorType.INT8, tfl.TensorType.UINT8)


def _hybrid_weights(model: tfl.ModelT, sg: tfl.SubGraphT) -> set[int]:
    """Constant int8 / uint8 quantised tensors of `sg` read only by operators whose outputs
    are all float32 (DEQUANTIZE aside: it is folded as it is)."""
    readers: dict[int, list[tfl.OperatorT]] = {}
    for op in sg.operators:
        for i in op.inputs if op.inputs is not None else []:
            if i >= 0:
                readers.setdefault(int(i), []).append(op)
    found = set()
    outputs = {int(o) for o in (sg.outputs if sg.outputs is not None else [])}
    for i, ops in readers.items():
        t = sg.tensors[i] if i < len(sg.tensors) else None
        if t is None or t.type not in _INT_WEIGHTS or t.quantization is None or t.quantization.scale is None \
                or len(t.quantization.scale) == 0 or not rd.is_constant(model, t) or i in outputs:
            continue
        if all(rd.op_name(model, op) != "DEQUANTIZE" and op.outputs is not None and len(op.outputs)
               and all(o >= 0 and sg.tensors[o].type == tfl.TensorType.FLOAT32 for o in op.outputs)
               for op in ops):
            found.add(i)
    return found


def dequantise_hybrid(model: tfl.ModelT) -> tfl.ModelT:
    """`model` (changed in place) with each hybrid weight a float32 constant."""
    for sg in model.subgraphs:
        try:
            weights = _hybrid_weights(model, sg)
        except (IndexError, TypeError, AttributeError, ValueError):    # malformed: the validation says how
            continue
        for i in sorted(weights):
            t = sg.tensors[i]
            try:
                data = rd.buffer_data(model, t, i)
                q = rd.qparams(t)
            except Exception:       # a malformed buffer or quantisation: the validation says so
                continue
            if data is None or q is None:
                continue
            shape = [1] * data.ndim
            if q.axis is not None:
                if not 0 <= q.axis < data.ndim or data.shape[q.axis] != len(q.scale):
                    continue
                shape[q.axis] = -1
            scale = np.asarray(q.scale, np.float32).reshape(shape)
            zp = np.asarray(q.zero_point, np.float32).reshape(shape)
            values = ((data.astype(np.float32) - zp) * scale).astype(np.float32)
            buf = tfl.BufferT()
            buf.data = np.frombuffer(values.tobytes(), np.uint8).copy()
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
            t.type = tfl.TensorType.FLOAT32
            t.quantization = None
            t.sparsity = None
    return model
