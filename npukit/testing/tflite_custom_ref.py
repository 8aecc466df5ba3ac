"""Oracles for the TFLite CUSTOM operators npukit lowers, written from MediaPipe's kernels
(mediapipe/util/tflite/operations/) independently of npukit's frontend.

`transpose_conv_bias` is MediaPipe's Convolution2DTransposeBias as its kernel computes it: a
scatter of every input pixel through the kernel, output initialised to the bias.
`litert_runnable` rewrites a model's Convolution2DTransposeBias operators into LiteRT
builtins (TRANSPOSE_CONV with VALID padding onto the full output, then SLICE of the part
MediaPipe keeps), so LiteRT can run the whole model as a float reference.
"""
from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

TRANSPOSE_CONV_BIAS = "Convolution2DTransposeBias"


def transpose_params(custom_options) -> tuple[bool, int, int]:
    """(SAME?, stride_h, stride_w) from TfLiteTransposeConvParams {padding, stride_w, stride_h}."""
    padding, stride_w, stride_h = np.frombuffer(bytes(np.asarray(custom_options, np.uint8))[:12], "<i4")
    return int(padding) == 1, int(stride_h), int(stride_w)     # kTfLitePaddingSame == 1


def _geometry(size: int, kernel: int, stride: int, same: bool) -> tuple[int, int]:
    """(output size, offset of output pixel 0 in the full scatter) along one axis."""
    pad = max(0, kernel - (size - 1) % stride - 1) if same else 0
    return stride * (size - 1) + kernel - pad, pad // 2


def transpose_conv_bias(x: np.ndarray, w: np.ndarray, bias: np.ndarray, same: bool,
                        stride: tuple[int, int]) -> np.ndarray:
    """x [N, H, W, I], w [O, kh, kw, I], bias [O] -> [N, oh, ow, O], in float64."""
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    (oh, py), (ow, px) = _geometry(h, kh, stride[0], same), _geometry(wd, kw, stride[1], same)
    out = np.broadcast_to(bias.astype(np.float64), (n, oh, ow, o)).copy()
    for iy in range(h):
        for ix in range(wd):
            for fy in range(kh):
                for fx in range(kw):
                    y, xo = iy * stride[0] - py + fy, ix * stride[1] - px + fx
                    if 0 <= y < oh and 0 <= xo < ow:
                        out[:, y, xo] += x[:, iy, ix].astype(np.float64) @ w[:, fy, fx].astype(np.float64).T
    return out


def _code(builtin: int, version: int) -> tfl.OperatorCodeT:
    oc = tfl.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), version
    return oc


def _const(model: tfl.ModelT, sg: tfl.SubGraphT, name: str, values) -> int:
    data = np.asarray(values, np.int32)
    b = tfl.BufferT()
    b.data = np.frombuffer(data.tobytes(), np.uint8)
    model.buffers.append(b)
    return _tensor(sg, name, data.shape, tfl.TensorType.INT32, len(model.buffers) - 1)


def _tensor(sg: tfl.SubGraphT, name: str, shape, ttype: int, buffer: int = 0) -> int:
    t = tfl.TensorT()
    t.name, t.shape, t.type, t.buffer = name, [int(d) for d in shape], ttype, buffer
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def litert_runnable(model_bytes: bytes) -> bytes:
    """The model with each Convolution2DTransposeBias replaced by TRANSPOSE_CONV + SLICE."""
    if TRANSPOSE_CONV_BIAS.encode() not in model_bytes:
        return model_bytes
    model = tfl.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    custom = {k for k, oc in enumerate(model.operatorCodes)
              if oc.customCode is not None and bytes(oc.customCode).decode() == TRANSPOSE_CONV_BIAS}
    if not custom:
        return model_bytes
    tconv = min(custom)
    model.operatorCodes[tconv] = _code(tfl.BuiltinOperator.TRANSPOSE_CONV, 3)
    model.operatorCodes.append(_code(tfl.BuiltinOperator.SLICE, 1))
    slice_ = len(model.operatorCodes) - 1
    for sg in model.subgraphs:
        ops = []
        for op in sg.operators:
            if op.opcodeIndex not in custom:
                ops.append(op)
                continue
            same, sh, sw = transpose_params(op.customOptions)
            x, w, b = (int(i) for i in op.inputs)
            n, h, wd, _ = sg.tensors[x].shape
            o, kh, kw, _ = sg.tensors[w].shape
            (oh, py), (ow, px) = _geometry(h, kh, sh, same), _geometry(wd, kw, sw, same)
            full = (n, sh * (h - 1) + kh, sw * (wd - 1) + kw, o)
            y = int(op.outputs[0])
            mid = _tensor(sg, f"{bytes(sg.tensors[y].name or b'').decode()}/full", full, sg.tensors[y].type)
            t = tfl.OperatorT()
            t.opcodeIndex, t.outputs = tconv, [mid]
            t.inputs = [_const(model, sg, "full_shape", full), w, x, b]
            t.builtinOptionsType = tfl.BuiltinOptions.TransposeConvOptions
            t.builtinOptions = tfl.TransposeConvOptionsT()
            t.builtinOptions.padding, t.builtinOptions.strideH, t.builtinOptions.strideW = tfl.Padding.VALID, sh, sw
            s = tfl.OperatorT()
            s.opcodeIndex, s.outputs = slice_, [y]
            s.inputs = [mid, _const(model, sg, "begin", [0, py, px, 0]), _const(model, sg, "size", [n, oh, ow, o])]
            ops += [t, s]
        sg.operators = ops
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
