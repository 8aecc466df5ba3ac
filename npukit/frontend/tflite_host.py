"""TFLite operators without an NPU lowering -> HOST_TFLITE nodes, run by LiteRT on the host.

The node's one-operator flatbuffer is cut from the model: the operator with its options and
version, its tensors with their types and quantisation, its constant inputs embedded (dense,
DEQUANTIZE-folded weights as float32). An operator that calls subgraphs (IF, WHILE: control
flow on computed values) carries them: every subgraph it reaches is copied after the main one,
with its constants, operator codes and subgraph indices renumbered. An operator whose inputs
are all constant is run once here and its outputs become constants; SHAPE of a (static) tensor
is its shape.
"""
from __future__ import annotations

import base64
import copy

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..arch.config import HOST_OP_CLASSES
from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import Node, Op
from ..kernels.host_tflite import HostTfliteAttrs, interpreter, invoke
from . import tflite_read as rd


def _indices(v) -> list[int]:
    return [int(i) for i in (v if v is not None else [])]


def subgraph_fields(op: tfl.OperatorT) -> list[str]:
    """The option fields of `op` that name subgraphs (IF's then/else, WHILE's cond/body)."""
    o = op.builtinOptions
    return sorted(k for k in vars(o) if k.endswith("SubgraphIndex")) if o is not None else []


def _called(cv, op: tfl.OperatorT) -> list[int]:
    """Every subgraph `op` reaches (through nested control flow too), in order of first call."""
    order: list[int] = []
    todo = [op]
    while todo:
        o = todo.pop(0)
        for f in subgraph_fields(o):
            s = int(getattr(o.builtinOptions, f))
            if not 0 < s < len(cv.model.subgraphs):
                raise ModelError(f"{cv.where()}: {f} names subgraph {s}, the model has "
                                         f"{len(cv.model.subgraphs)}")
            if s not in order:
                order.append(s)
                todo.extend(cv.model.subgraphs[s].operators)
    return order


Work = dict[str, int]      # host op class -> MACs ("conv") or elements, as arch.host charges them
MAC_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL")
CLASS_OF = {**dict.fromkeys(("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "PRELU"), "eltwise"),
            **dict.fromkeys(("LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU", "RELU", "RELU6"), "lut"),
            **dict.fromkeys(("MAX_POOL_2D", "AVERAGE_POOL_2D"), "pool"),
            **dict.fromkeys(("MEAN", "SUM", "REDUCE_MAX"), "reduce"), "SOFTMAX": "softmax",
            **dict.fromkeys(("RESHAPE", "TRANSPOSE", "CONCATENATION", "PAD", "SLICE", "STRIDED_SLICE",
                             "GATHER", "SQUEEZE", "EXPAND_DIMS"), "copy")}   # host op classes (arch.host)


def _op_work(model, sg, op: tfl.OperatorT) -> Work:
    """What the host does for one operator of a called subgraph: MACs for a matrix product or
    convolution, else the elements of its outputs and computed inputs; an IF its costlier
    branch, a WHILE one run of its condition and body."""
    name, shape = rd.op_name(model, op), (lambda i: [max(d, 1) for d in rd.shape(sg.tensors[i])])
    if subgraph_fields(op):
        return _control_work(model, op, name)[0]
    ins, outs = [i for i in _indices(op.inputs) if i >= 0], [i for i in _indices(op.outputs) if i >= 0]
    out = int(np.prod(shape(outs[0]))) if outs else 0
    if name in MAC_OPS and len(ins) >= 2:
        w = shape(ins[1])
        adj = name == "BATCH_MATMUL" and bool(getattr(op.builtinOptions, "adjX", False))
        k = {"FULLY_CONNECTED": w[-1], "CONV_2D": int(np.prod(w[1:])), "DEPTHWISE_CONV_2D": int(np.prod(w[1:3])),
             "BATCH_MATMUL": shape(ins[0])[-2 if adj else -1]}[name]
        return {"conv": out * k}
    n = sum(int(np.prod(shape(i))) for i in (*ins, *outs) if not rd.is_constant(model, sg.tensors[i]))
    return {CLASS_OF.get(name, "other"): n}


def _subgraph_work(model, s: int) -> Work:
    sg, total = model.subgraphs[s], Work()
    for op in sg.operators:
        for k, v in _op_work(model, sg, op).items():
            total[k] = total.get(k, 0) + v
    return total


def _control_work(model, op: tfl.OperatorT, name: str) -> tuple[Work, list[Work]]:
    """(the work charged, the alternatives): an IF's branches, the costlier by the default host
    table charged; a WHILE's condition and body once (its trip count is unknown at compile time)."""
    subs = [_subgraph_work(model, int(getattr(op.builtinOptions, f))) for f in subgraph_fields(op)]
    if name != "IF":
        merged: Work = {}
        for w in subs:
            for k, v in w.items():
                merged[k] = merged.get(k, 0) + v
        return merged, [merged]
    return max(subs, key=lambda w: sum(HOST_OP_CLASSES[k] * v for k, v in w.items())), subs


def _renumbered(op: tfl.OperatorT, code: int, subgraphs: dict[int, int]) -> tfl.OperatorT:
    new = copy.copy(op)
    new.opcodeIndex = code
    if subgraph_fields(op):
        new.builtinOptions = copy.copy(op.builtinOptions)
        for f in subgraph_fields(op):
            setattr(new.builtinOptions, f, subgraphs[int(getattr(op.builtinOptions, f))])
    return new


def _copy_subgraphs(cv, op: tfl.OperatorT, buffers: list, codes: list) -> tuple[tfl.OperatorT, list]:
    """`op` with its subgraph indices renumbered, and copies of the subgraphs it reaches, their
    constants appended to `buffers` and operator codes to `codes` (shared where equal)."""
    called = _called(cv, op)
    if not called:
        return op, []
    where = {s: k + 1 for k, s in enumerate(called)}
    code_of: dict[int, int] = {op.opcodeIndex: 0}
    out = []
    for s in called:
        sg = copy.copy(cv.model.subgraphs[s])
        sg.tensors = [copy.copy(t) for t in sg.tensors]
        for t in sg.tensors:
            if rd.is_constant(cv.model, t):
                src = cv.model.buffers[t.buffer]
                if src.offset and src.offset > 1:
                    raise UnsupportedOpError(f"{cv.where()}: buffers stored outside the flatbuffer "
                                             f"are not supported")
                b = tfl.BufferT()
                b.data = np.asarray(src.data, np.uint8)
                buffers.append(b)
                t.buffer = len(buffers) - 1
            else:
                t.buffer = 0
        ops = []
        for o in sg.operators:
            if o.opcodeIndex not in code_of:
                code_of[o.opcodeIndex] = len(codes)
                codes.append(copy.copy(cv.model.operatorCodes[o.opcodeIndex]))
            ops.append(_renumbered(o, code_of[o.opcodeIndex], where))
        sg.operators = ops
        out.append(sg)
    return _renumbered(op, 0, where), out


def one_op_model(cv, op: tfl.OperatorT) -> tuple[str, list[int]]:
    """The base64 flatbuffer running `op` alone (with the subgraphs it calls), and the TFLite
    tensors that are its inputs."""
    tensors: list[tfl.TensorT] = []
    buffers = [tfl.BufferT()]
    index: dict[int, int] = {}
    feeds: list[int] = []

    def add(i: int, operand: bool) -> int:
        if i < 0:
            return -1
        if i in index:
            return index[i]
        t = copy.copy(cv.sg.tensors[i])
        t.shapeSignature, t.sparsity, t.buffer = None, None, 0
        data = cv.const(i) if operand else None
        if data is not None:
            if i in cv.folded:       # DEQUANTIZE-folded weights: float32 now
                t.type, t.quantization = tfl.TensorType.FLOAT32, None
            b = tfl.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            buffers.append(b)
            t.buffer = len(buffers) - 1
        elif operand and not t.isVariable:
            feeds.append(i)
        index[i] = len(tensors)
        tensors.append(t)
        return index[i]

    codes = [copy.copy(cv.model.operatorCodes[op.opcodeIndex])]
    new, called = _copy_subgraphs(cv, op, buffers, codes)
    new = copy.copy(new)
    new.opcodeIndex = 0
    new.inputs = [add(i, True) for i in _indices(op.inputs)]
    new.outputs = [add(i, False) for i in _indices(op.outputs)]
    if op.intermediates is not None:
        new.intermediates = [add(i, False) for i in _indices(op.intermediates)]
    sg = tfl.SubGraphT()
    sg.tensors, sg.operators, sg.name = tensors, [new], "host"
    sg.inputs, sg.outputs = [index[i] for i in feeds], list(new.outputs)
    model = tfl.ModelT()
    model.version, model.subgraphs, model.buffers = 3, [sg, *called], buffers
    model.operatorCodes = codes
    model.description = f"npukit host operator {cv.where()}"
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return base64.b64encode(bytes(b.Output())).decode("ascii"), feeds


def _interpreter_for(cv, text: str):
    try:
        return interpreter(text)
    except UnsupportedOpError as e:
        raise UnsupportedOpError(f"{cv.where()}: {e}") from None


def fold(cv, op: tfl.OperatorT) -> bool:
    """Constant outputs for SHAPE, or for an operator whose inputs are all constant."""
    if cv.op_label == "SHAPE":
        out = op.outputs[0]
        dtype = rd.np_dtype(cv.sg.tensors[out], out)
        cv.computed[out] = np.asarray(rd.shape(cv.sg.tensors[op.inputs[0]]), dtype)
        return True
    ins = [i for i in _indices(op.inputs) if i >= 0]
    if not ins or any(cv.const(i) is None for i in ins):
        return False
    text, feeds = one_op_model(cv, op)
    it = _interpreter_for(cv, text)
    invoke(it, cv.where())
    for d, i in zip(it.get_output_details(), _indices(op.outputs)):
        cv.computed[i] = it.get_tensor(d["index"]).copy()
    return True


def emit_host(cv, op: tfl.OperatorT, reason: str, used: set[int]) -> None:
    """One HOST_TFLITE node for `op` carrying all its used outputs (so it runs once)."""
    text, feeds = one_op_model(cv, op)
    ir_inputs = tuple(cv.name(i) for i in feeds)
    details = _interpreter_for(cv, text).get_output_details()
    outs = [(k, i) for k, i in enumerate(_indices(op.outputs)) if i >= 0 and i in used]
    if not outs:
        return
    names = tuple(cv.name(i) for _, i in outs)
    shapes = tuple(cv.tensors[n].shape for n in names)
    for (k, _), shape in zip(outs, shapes):
        if tuple(int(d) for d in details[k]["shape"]) != shape:
            raise UnsupportedOpError(f"{cv.where()}: output {k} has a dynamic shape "
                                     f"({[int(d) for d in details[k]['shape']]} vs {list(shape)} in the model)")
    work: tuple = ()
    if subgraph_fields(op):
        work = tuple(tuple(sorted(w.items())) for w in _control_work(cv.model, op, cv.op_label)[1])
        if cv.op_label == "WHILE":
            reason += "; charged one iteration of its condition and body (trip count unknown at compile time)"
    attrs = HostTfliteAttrs(text, cv.op_label, tuple(k for k, _ in outs), shapes, not cv.quantised, reason, work)
    cv.nodes.append(Node(Op.HOST_TFLITE, f"{cv.op_label.lower()}_{cv.op_index}", ir_inputs, names, attrs,
                         source=(cv.op_source,)))
