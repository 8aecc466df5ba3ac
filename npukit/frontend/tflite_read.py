"""Reading a TFLite flatbuffer through LiteRT's generated schema (its object API): operator
names, tensor types, constant buffers and quantisation. No hand-written format parsing."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..errors import InputError, ModelError, UnsupportedOpError, first_line
from ..limits import MODEL_BYTES
from ..ir.graph import Clamp, DType, QParams

NP_TYPES = {tfl.TensorType.FLOAT32: np.float32, tfl.TensorType.FLOAT16: np.float16,
            tfl.TensorType.INT32: np.int32, tfl.TensorType.INT64: np.int64,
            tfl.TensorType.UINT8: np.uint8, tfl.TensorType.INT8: np.int8,
            tfl.TensorType.INT16: np.int16, tfl.TensorType.BOOL: np.bool_}
IR_TYPES = {np.dtype(np.float32): DType.F32, np.dtype(np.int32): DType.I32, np.dtype(np.int64): DType.I64,
            np.dtype(np.uint8): DType.U8, np.dtype(np.int8): DType.I8, np.dtype(np.int16): DType.I16,
            np.dtype(np.bool_): DType.BOOL}
_OP_NAMES = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(tfl.TensorType).items() if not k.startswith("_")}


def read_model(path: str | Path, check: bool = True) -> tfl.ModelT:
    """The parsed model, validated (tflite_check) before anything else reads it (unless
    `check` is False: then the caller validates it)."""
    try:
        MODEL_BYTES.check(Path(path).stat().st_size, f"{path}", ModelError)
        data = Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read the model: {e.strerror or type(e).__name__}") from None
    from .tflite_check import check_model
    model = parse_model(data, str(path))
    from .tflite_hybrid import dequantise_hybrid
    dequantise_hybrid(model)        # int8 weights beside float activations: float weights
    if check:
        check_model(model, str(path))
    return model


def parse_model(data: bytes, where: str) -> tfl.ModelT:
    """A flatbuffer image parsed, every absent vector made an empty list; ModelError naming
    `where`. Validate it (tflite_check.check_model) before reading anything else of it."""
    MODEL_BYTES.check(len(data), where, ModelError)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError(f"{where}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        model = tfl.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as e:  # flatbuffers raises assorted low-level errors on garbage
        raise ModelError(f"{where}: unreadable TFLite flatbuffer: {type(e).__name__}: {first_line(e, 200)}") from None
    if not model.subgraphs:
        raise ModelError(f"{where}: the model has no subgraph")
    for sg in model.subgraphs:      # an absent vector reads as None: make every one a list
        for field in ("tensors", "operators", "inputs", "outputs"):
            if getattr(sg, field) is None:
                setattr(sg, field, [])
    for field in ("buffers", "operatorCodes"):
        if getattr(model, field) is None:
            setattr(model, field, [])
    return model


def op_name(model: tfl.ModelT, op: tfl.OperatorT) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == tfl.BuiltinOperator.CUSTOM:
        return "CUSTOM:" + (code.customCode or b"").decode(errors="replace")
    return _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def tensor_name(t: tfl.TensorT, index: int) -> str:
    name = t.name.decode(errors="replace") if isinstance(t.name, bytes) else (t.name or "")
    return name or f"tensor_{index}"


def np_dtype(t: tfl.TensorT, index: int) -> np.dtype:
    if t.type not in NP_TYPES:
        raise UnsupportedOpError(f"tensor {tensor_name(t, index)!r} has TFLite type "
                                 f"{TYPE_NAMES.get(t.type, t.type)}, which npukit does not support")
    return np.dtype(NP_TYPES[t.type])


def shape(t: tfl.TensorT) -> tuple[int, ...]:
    return tuple(int(d) for d in (t.shape if t.shape is not None else ()))


def is_constant(model: tfl.ModelT, t: tfl.TensorT) -> bool:
    """Whether `t` has contents in the flatbuffer (without decoding them)."""
    return 0 < t.buffer < len(model.buffers) and model.buffers[t.buffer].data is not None \
        and len(model.buffers[t.buffer].data) > 0


def buffer_data(model: tfl.ModelT, t: tfl.TensorT, index: int) -> np.ndarray | None:
    """The constant contents of tensor `t`, or None for an activation."""
    if t.buffer <= 0 or t.buffer >= len(model.buffers):
        return None
    buf = model.buffers[t.buffer]
    if buf.offset and buf.offset > 1:
        raise UnsupportedOpError(f"tensor {tensor_name(t, index)!r}: buffers stored outside the "
                                 f"flatbuffer (models over 2 GB) are not supported")
    if buf.data is None or len(buf.data) == 0:
        return None
    raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
    dtype = np_dtype(t, index)
    if t.sparsity is not None:      # a sparse constant: its stored values, made dense
        from .tflite_sparse import densify
        if len(raw) % dtype.itemsize:
            raise ModelError(f"tensor {tensor_name(t, index)!r}: sparse buffer of {len(raw)} bytes")
        return densify(np.frombuffer(raw, dtype=dtype), shape(t), t.sparsity, tensor_name(t, index))
    want = int(np.prod(shape(t), dtype=np.int64)) * dtype.itemsize
    if len(raw) != want:
        raise ModelError(f"tensor {tensor_name(t, index)!r}: buffer holds {len(raw)} bytes, "
                         f"shape {list(shape(t))} needs {want}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape(t)).copy()


def qparams(t: tfl.TensorT) -> QParams | None:
    """Scale and zero point, per tensor or per axis (quantizedDimension)."""
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return None
    scale = tuple(float(s) for s in q.scale)
    zps = tuple(int(z) for z in q.zeroPoint) if q.zeroPoint is not None and len(q.zeroPoint) else (0,)
    if len(zps) == 1 and len(scale) > 1:
        zps = zps * len(scale)
    if len(zps) != len(scale):
        raise ModelError(f"tensor {tensor_name(t, 0)!r}: {len(scale)} scales but {len(zps)} zero points")
    return QParams(scale, zps, int(q.quantizedDimension) if len(scale) > 1 else None)


def fused_clamp(code: int, where: str) -> Clamp | None:
    """A TFLite fused activation as a real-valued clamp."""
    A = tfl.ActivationFunctionType
    clamps = {A.NONE: None, A.RELU: Clamp(0.0, None), A.RELU6: Clamp(0.0, 6.0),
              A.RELU_N1_TO_1: Clamp(-1.0, 1.0)}
    if code not in clamps:
        names = {v: k for k, v in vars(A).items() if not k.startswith("_")}
        raise UnsupportedOpError(f"{where}: fused activation {names.get(code, code)} is not supported")
    return clamps[code]
