"""Build single-operator TFLite models in memory and run them on LiteRT's reference kernels
(or, where npukit follows them, its default kernels: `run_default`).

Used to pin npukit's integer kernels to an oracle nobody here wrote: a test builds a one-op
int8 model with chosen scales, zero points and constants, runs it through LiteRT with the
BUILTIN_REF op resolver, and compares element for element with npukit's kernel.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from npukit.errors import ModelError

_TENSOR_TYPES = {
    "float32": tfl.TensorType.FLOAT32,
    "int32": tfl.TensorType.INT32,
    "int64": tfl.TensorType.INT64,
    "uint8": tfl.TensorType.UINT8,
    "int8": tfl.TensorType.INT8,
    "int16": tfl.TensorType.INT16,
    "bool": tfl.TensorType.BOOL,
    "complex64": tfl.TensorType.COMPLEX64,
}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the model; `data` set means a constant (weights, bias, shape operand)."""
    name: str
    shape: tuple[int, ...]
    dtype: str = "int8"
    scale: float | Sequence[float] | None = None
    zero_point: int | Sequence[int] = 0
    quantized_dimension: int = 0
    data: np.ndarray | None = None
    sparsity: Any = None              # tfl.SparsityParametersT: `data` holds the stored values
    variable: bool = False            # a variable (state) tensor: neither input nor constant


def options(cls, **fields):
    """A TFLite options object (e.g. tfl.Conv2DOptionsT) with `fields` set."""
    o = cls()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def _operator_code(op: str, version: int) -> tfl.OperatorCodeT:
    """A builtin by name, or "CUSTOM:<custom code>"."""
    op, _, custom = op.partition(":")
    code = getattr(tfl.BuiltinOperator, op, None)
    if code is None:
        raise ModelError(f"unknown TFLite builtin operator {op!r}")
    oc = tfl.OperatorCodeT()
    oc.builtinCode = code
    oc.deprecatedBuiltinCode = min(code, 127)  # codes >= 127 live only in builtin_code
    oc.version = version
    if custom:
        oc.customCode = custom
    return oc


def _quantization(spec: TensorSpec) -> tfl.QuantizationParametersT | None:
    if spec.scale is None:
        return None
    scales = np.atleast_1d(np.asarray(spec.scale, dtype=np.float32))
    zps = np.atleast_1d(np.asarray(spec.zero_point, dtype=np.int64))
    if zps.size == 1 and scales.size > 1:
        zps = np.repeat(zps, scales.size)
    if zps.size != scales.size:
        raise ModelError(f"tensor {spec.name!r}: {scales.size} scales but {zps.size} zero points")
    q = tfl.QuantizationParametersT()
    q.scale = [float(s) for s in scales]
    q.zeroPoint = [int(z) for z in zps]
    q.quantizedDimension = int(spec.quantized_dimension)
    return q


def _tensor(spec: TensorSpec, buffer_index: int) -> tfl.TensorT:
    if spec.dtype not in _TENSOR_TYPES:
        raise ModelError(f"tensor {spec.name!r}: unsupported dtype {spec.dtype!r}")
    t = tfl.TensorT()
    t.name = spec.name
    t.shape = [int(d) for d in spec.shape]
    t.type = _TENSOR_TYPES[spec.dtype]
    t.buffer = buffer_index
    t.quantization = _quantization(spec)
    t.sparsity = spec.sparsity
    t.isVariable = spec.variable
    return t


def _buffer(spec: TensorSpec) -> tfl.BufferT:
    b = tfl.BufferT()
    if spec.data is not None:
        data = np.array(spec.data, dtype=np.dtype(spec.dtype), order="C")      # 0-d stays 0-d
        if spec.sparsity is None and tuple(data.shape) != tuple(spec.shape):
            raise ModelError(f"tensor {spec.name!r}: data shape {data.shape} != {tuple(spec.shape)}")
        b.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
    return b


def _options_type(options: Any) -> int:
    """BuiltinOptions union tag from an *OptionsT instance's class name."""
    name = type(options).__name__[:-1]   # Conv2DOptionsT -> Conv2DOptions
    tag = getattr(tfl.BuiltinOptions, name, None)
    if tag is None:
        raise ModelError(f"{type(options).__name__} is not a BuiltinOptions member")
    return tag


def build_single_op(op: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                    options: Any = None, version: int = 1, intermediates: Sequence[TensorSpec] = ()) -> bytes:
    """A .tflite flatbuffer with one subgraph running one builtin operator.

    Non-constant, non-variable inputs become the model's inputs (in order); constants get their
    own buffer. A TensorSpec named "" in `inputs` marks an omitted optional operand (index -1).
    """
    model_in = [s for s in inputs if s.name and s.data is None and not s.variable]
    return build_model([Operator(op, tuple(inputs), tuple(outputs), options, version,
                                 intermediates=tuple(intermediates))], model_in, outputs)


@dataclass(frozen=True)
class Operator:
    """One operator of a `build_model` graph; tensors are matched by name. A custom operator
    is "CUSTOM:<custom code>" with its raw `custom_options` bytes."""
    op: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    options: Any = None
    version: int = 1
    custom_options: bytes | None = None
    intermediates: tuple[TensorSpec, ...] = ()  # e.g. the integer LSTM's five scale carriers


@dataclass(frozen=True)
class Subgraph:
    """A further subgraph of a `build_model` model (an IF's branch, a WHILE's body): number k
    of `subgraphs` is subgraph k + 1, the index an IfOptionsT / WhileOptionsT names."""
    operators: tuple[Operator, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    name: str = ""


def build_model(operators: Sequence[Operator], inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                description: str = "npukit single-op test model", subgraphs: Sequence[Subgraph] = ()) -> bytes:
    """A .tflite flatbuffer running `operators` in order; a tensor used by several operators
    is one tensor (the first spec of a name wins) of its subgraph."""
    buffers = [tfl.BufferT()]                      # buffer 0 is the mandatory empty buffer
    codes: dict[tuple[str, int], int] = {}
    graphs = [_subgraph(Subgraph(tuple(operators), tuple(inputs), tuple(outputs), "main"), buffers, codes)]
    graphs += [_subgraph(sg, buffers, codes) for sg in subgraphs]
    model = tfl.ModelT()
    model.version = 3
    model.operatorCodes = [_operator_code(op, version) for op, version in codes]
    model.subgraphs = graphs
    model.buffers = buffers
    model.description = description

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _subgraph(sg: Subgraph, buffers: list, codes: dict[tuple[str, int], int]) -> tfl.SubGraphT:
    tensors: list[tfl.TensorT] = []
    index: dict[str, int] = {}
    for spec in [*[s for o in sg.operators for s in (*o.inputs, *o.outputs, *o.intermediates)], *sg.inputs]:
        if not spec.name or spec.name in index:
            continue
        buf = 0
        if spec.data is not None:
            buffers.append(_buffer(spec))
            buf = len(buffers) - 1
        index[spec.name] = len(tensors)
        tensors.append(_tensor(spec, buf))
    ops = []
    for o in sg.operators:
        operator = tfl.OperatorT()
        operator.opcodeIndex = codes.setdefault((o.op, o.version), len(codes))
        operator.inputs = [index[s.name] if s.name else -1 for s in o.inputs]
        operator.outputs = [index[s.name] for s in o.outputs]
        if o.intermediates:
            operator.intermediates = [index[s.name] for s in o.intermediates]
        if o.options is not None:
            operator.builtinOptionsType = _options_type(o.options)
            operator.builtinOptions = o.options
        if o.custom_options is not None:
            operator.customOptions = np.frombuffer(o.custom_options, np.uint8)
        ops.append(operator)
    subgraph = tfl.SubGraphT()
    subgraph.tensors = tensors
    subgraph.inputs = [index[s.name] for s in sg.inputs]
    subgraph.outputs = [index[s.name] for s in sg.outputs]
    subgraph.operators = ops
    subgraph.name = sg.name
    return subgraph


def run_reference(model_bytes: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run a model on LiteRT's reference (BUILTIN_REF) kernels; outputs in subgraph order."""
    from ai_edge_litert.interpreter import OpResolverType
    return _run(model_bytes, inputs, OpResolverType.BUILTIN_REF)


def run_default(model_bytes: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run a model on LiteRT's default kernels (the optimized builtins and default delegates),
    for the cases npukit follows them: where a reference kernel refuses what they run."""
    from ai_edge_litert.interpreter import OpResolverType
    return _run(model_bytes, inputs, OpResolverType.AUTO)


def _run(model_bytes: bytes, inputs: Sequence[np.ndarray], resolver) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=bytes(model_bytes), experimental_op_resolver_type=resolver)
    details = interp.get_input_details()
    if len(details) != len(inputs):
        raise ModelError(f"model has {len(details)} inputs, {len(inputs)} given")
    for d, x in zip(details, inputs):
        x = np.asarray(x)
        if tuple(d["shape"]) != x.shape:
            interp.resize_tensor_input(d["index"], x.shape)
    interp.allocate_tensors()
    for d, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(d["index"], np.asarray(x, dtype=d["dtype"]))
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]
