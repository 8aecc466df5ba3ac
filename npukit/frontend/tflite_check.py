"""Validation of a parsed TFLite model, before any import work: every index in range, every
tensor's type, shape, constant buffer and quantisation sound, every operator's options table
the one its opcode takes and its geometry (strides, dilations, filters, paddings, fused
activation) legal, operand counts and types what npukit's lowering of it assumes.

A model that passes cannot make the importer index out of range, divide by zero, overflow
on a scale or build a program that fails only at run time. Errors are ModelError, one line,
naming the operator (index and opcode) or the tensor (index and name).
"""
from __future__ import annotations

import math

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..errors import ModelError
from ..limits import GRAPH_NODES, TENSOR_ELEMENTS, TENSOR_RANK
from . import tflite_read as rd

_OPTION_NAMES = {v: k for k, v in vars(tfl.BuiltinOptions).items() if not k.startswith("_")}
_BY_LOWER = {k.lower(): k for k in _OPTION_NAMES.values()}
# opcodes whose options table is not named after the opcode
_OPTIONS_OF = {"AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions", "L2_POOL_2D": "Pool2DOptions",
               "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions",
               "REDUCE_MIN": "ReducerOptions", "REDUCE_PROD": "ReducerOptions", "REDUCE_ANY": "ReducerOptions",
               "REDUCE_ALL": "ReducerOptions", "MAXIMUM": "MaximumMinimumOptions",
               "MINIMUM": "MaximumMinimumOptions", "L2_NORMALIZATION": "L2NormOptions",
               "CONV_3D_TRANSPOSE": "Conv3DOptions", "UNIDIRECTIONAL_SEQUENCE_RNN": "SequenceRNNOptions",
               "EMBEDDING_LOOKUP_SPARSE": "EmbeddingLookupSparseOptions"}
# lowered opcodes whose converter reads its options: a model without them is malformed
_NEEDS_OPTIONS = {"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "AVERAGE_POOL_2D", "MAX_POOL_2D",
                  "STRIDED_SLICE", "SPLIT", "CONCATENATION", "PACK", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
                  "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX", "LEAKY_RELU", "CALL_ONCE",
                  "VAR_HANDLE"}
_AT_LEAST_ONE = ("strideH", "strideW", "strideD", "dilationHFactor", "dilationWFactor", "dilationDFactor",
                 "filterHeight", "filterWidth", "blockSize", "numSplits")
_PADDINGS = set(vars(tfl.Padding).values()) - {None}
_ACTIVATIONS = {v for k, v in vars(tfl.ActivationFunctionType).items() if not k.startswith("_")}


def _options_name(op_name: str) -> str | None:
    """The BuiltinOptions member `op_name` takes, as LiteRT's schema names it, or None."""
    if op_name in _OPTIONS_OF:
        return _OPTIONS_OF[op_name]
    return _BY_LOWER.get(op_name.replace("_", "").lower() + "options")


def _arity(lo: int, hi: int | None = -1, outs: int = 1) -> tuple[int, int | None, int]:
    """`hi` -1: exactly `lo` inputs; None: any number; `outs` 0: any number, at least one."""
    return lo, lo if hi == -1 else hi, outs


# lowered opcodes: (required inputs, most inputs (None: any), outputs); required inputs are never -1
_ARITY = {**{k: _arity(2, 3) for k in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")},
          "TRANSPOSE_CONV": _arity(3, 4),
          **{k: _arity(2) for k in ("ADD", "SUB", "MUL", "MAXIMUM", "MINIMUM", "EQUAL", "NOT_EQUAL", "GREATER",
                                     "GREATER_EQUAL", "LESS", "LESS_EQUAL", "LOGICAL_AND", "LOGICAL_OR",
                                     "PRELU", "EXPAND_DIMS", "PAD", "TRANSPOSE", "RESIZE_BILINEAR",
                                     "RESIZE_NEAREST_NEIGHBOR", "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN",
                                     "ARG_MAX", "ARG_MIN")},
          **{k: _arity(1) for k in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "LOGISTIC", "TANH", "HARD_SWISH", "RELU",
                                     "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "LOG", "EXP", "ABS",
                                     "SQRT", "RSQRT", "ELU", "SIN", "COS", "SQUARE", "NEG", "LOGICAL_NOT",
                                     "GELU", "SQUEEZE", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "SOFTMAX",
                                     "QUANTIZE", "DEQUANTIZE", "DENSIFY", "SHAPE", "READ_VARIABLE")},
          "RESHAPE": _arity(1, 2), "PADV2": _arity(2, 3), "STRIDED_SLICE": _arity(4), "SLICE": _arity(3),
          "SELECT": _arity(3), "SELECT_V2": _arity(3), "SPLIT": _arity(2, 2, 0), "SPLIT_V": _arity(3, 3, 0),
          "CONCATENATION": _arity(1, None), "PACK": _arity(1, None), "CALL_ONCE": _arity(0, 0, 0),
          "VAR_HANDLE": _arity(0, 0), "ASSIGN_VARIABLE": _arity(2, 2, 0)}


class _Checker:
    def __init__(self, model: tfl.ModelT, path: str):
        self.model, self.path = model, path
        self.sub = 0

    def fail(self, msg: str) -> None:
        where = f"subgraph {self.sub}, " if self.sub else ""
        raise ModelError(f"{self.path}: {where}{msg}")

    # ---- the model ----------------------------------------------------------------------

    def run(self) -> None:
        m = self.model
        codes = m.operatorCodes or []
        for k, code in enumerate(codes):
            if code is None:
                self.fail(f"operator code {k} is missing")
        GRAPH_NODES.check(sum(len(sg.operators or []) for sg in m.subgraphs), "the model's operator count",
                          ModelError)
        for self.sub, sg in enumerate(m.subgraphs):
            if sg is None:
                self.fail("an empty subgraph record")
            tensors = sg.tensors or []
            for i, t in enumerate(tensors):
                self.tensor(i, t)
            for what, idx in (("input", sg.inputs), ("output", sg.outputs)):
                for i in (idx if idx is not None else []):
                    if not 0 <= i < len(tensors):
                        self.fail(f"model {what} names tensor {int(i)}, but the subgraph has {len(tensors)}")
            for i in (sg.inputs if sg.inputs is not None else []):
                if rd.is_constant(m, tensors[i]):
                    self.fail(f"model input {self.tname(i)} holds constant data")
            for k, op in enumerate(sg.operators or []):
                self.operator(k, op, tensors, len(codes))
            made = {int(i) for op in sg.operators or [] for i in (op.outputs if op.outputs is not None else [])}
            for i in (sg.outputs if sg.outputs is not None else []):
                if int(i) not in made and i not in list(sg.inputs if sg.inputs is not None else []):
                    self.fail(f"model output {self.tname(i)} is computed by no operator")
        self.sub = 0

    # ---- tensors ------------------------------------------------------------------------

    def tname(self, i: int) -> str:
        t = self.model.subgraphs[self.sub].tensors[i]
        return f"tensor {i} {rd.tensor_name(t, i)!r}"

    def tensor(self, i: int, t: tfl.TensorT) -> None:
        if t is None:
            self.fail(f"tensor {i} record is missing")
        if t.type not in rd.TYPE_NAMES:
            self.fail(f"{self.tname(i)} has unknown TFLite type {int(t.type)}")
        dims = [int(d) for d in (t.shape if t.shape is not None else [])]
        TENSOR_RANK.check(len(dims), f"{self.tname(i)}'s rank", ModelError)
        if any(d < 0 for d in dims):
            self.fail(f"{self.tname(i)} has a negative dimension in shape {dims}")
        TENSOR_ELEMENTS.check(math.prod(dims), f"{self.tname(i)}'s size", ModelError)
        nbuf = len(self.model.buffers or [])
        if not 0 <= t.buffer < max(nbuf, 1):
            self.fail(f"{self.tname(i)} names buffer {int(t.buffer)}, but the model has {nbuf}")
        self.buffer_size(i, t, dims)
        self.quantisation(i, t, dims)

    def buffer_size(self, i: int, t: tfl.TensorT, dims: list[int]) -> None:
        if not rd.is_constant(self.model, t) or t.sparsity is not None or t.type not in rd.NP_TYPES:
            return
        have = len(self.model.buffers[t.buffer].data)
        want = math.prod(dims) * np.dtype(rd.NP_TYPES[t.type]).itemsize
        if have != want:
            self.fail(f"{self.tname(i)}: constant buffer holds {have} bytes, shape {dims} needs {want}")

    def quantisation(self, i: int, t: tfl.TensorT, dims: list[int]) -> None:
        q = t.quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return
        scale = np.asarray(q.scale, np.float64)
        tiny, huge = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
        bad = ~(np.isfinite(scale) & (scale >= tiny) & (scale <= huge))
        if bad.any():
            self.fail(f"{self.tname(i)}: quantisation scale {float(scale[bad][0]):g} is not a finite "
                      f"positive float32")
        zps = np.asarray(q.zeroPoint if q.zeroPoint is not None else [], np.int64)
        if zps.size not in (0, 1, scale.size):
            self.fail(f"{self.tname(i)}: {scale.size} quantisation scales but {zps.size} zero points")
        if t.type in rd.NP_TYPES and np.dtype(rd.NP_TYPES[t.type]).kind in "iu" and zps.size:
            info = np.iinfo(rd.NP_TYPES[t.type])
            out = (zps < info.min) | (zps > info.max)
            if out.any():
                self.fail(f"{self.tname(i)}: zero point {int(zps[out][0])} is outside "
                          f"{rd.TYPE_NAMES[t.type]} [{info.min}, {info.max}]")
        if scale.size > 1:
            axis = int(q.quantizedDimension)
            if not 0 <= axis < len(dims):
                self.fail(f"{self.tname(i)}: quantised dimension {axis} is outside rank {len(dims)}")
            if dims[axis] != scale.size:
                self.fail(f"{self.tname(i)}: {scale.size} per-channel scales for dimension {axis} "
                          f"of size {dims[axis]}")

    # ---- operators ----------------------------------------------------------------------

    def operator(self, k: int, op: tfl.OperatorT, tensors: list, ncodes: int) -> None:
        if op is None:
            self.fail(f"operator {k} record is missing")
        if not 0 <= op.opcodeIndex < ncodes:
            self.fail(f"operator {k} has opcode index {int(op.opcodeIndex)}, but the model has {ncodes} "
                      f"operator codes")
        name = rd.op_name(self.model, op)
        where = f"operator {k} ({name})"
        ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
        outs = [int(i) for i in (op.outputs if op.outputs is not None else [])]
        mids = [int(i) for i in (op.intermediates if op.intermediates is not None else [])]
        for what, idx, optional in (("input", ins, True), ("output", outs, False), ("intermediate", mids, False)):
            for i in idx:
                if not (0 <= i < len(tensors) or (optional and i == -1)):
                    self.fail(f"{where}: {what} names tensor {i}, but the subgraph has {len(tensors)}")
        if name in _ARITY:
            lo, hi, nout = _ARITY[name]
            if len(ins) < lo or (hi is not None and len(ins) > hi) or any(i < 0 for i in ins[:lo]) \
                    or (len(outs) != nout if nout else not outs and name.startswith("SPLIT")):
                takes = f"{lo}" if hi == lo else f"{lo} or more" if hi is None else f"{lo} to {hi}"
                self.fail(f"{where}: has {len(ins)} inputs and {len(outs)} outputs; {name} takes {takes} "
                          f"inputs (the first {lo} present) and {nout or 'some'} output{'s' if nout != 1 else ''}")
        self.options(where, name, op)
        from .tflite_check_ops import check_operator
        check_operator(self, where, name, op, ins, outs)

    def options(self, where: str, name: str, op: tfl.OperatorT) -> None:
        if name.startswith("CUSTOM:"):
            return
        want = _options_name(name)
        have = _OPTION_NAMES.get(op.builtinOptionsType)
        if have is None:
            self.fail(f"{where}: unknown options type {int(op.builtinOptionsType)}")
        if op.builtinOptionsType != tfl.BuiltinOptions.NONE and want is not None and have != want:
            self.fail(f"{where}: options table {have}, but {name} takes {want}")
        o = op.builtinOptions
        if o is None:
            if name in _NEEDS_OPTIONS:
                self.fail(f"{where}: {want} missing")
            return
        for field in _AT_LEAST_ONE:
            v = getattr(o, field, None)
            if v is not None and v < 1:
                self.fail(f"{where}: {field} {int(v)} (must be at least 1)")
        if getattr(o, "padding", None) is not None and name != "MIRROR_PAD" and o.padding not in _PADDINGS:
            self.fail(f"{where}: unknown padding {int(o.padding)}")
        act = getattr(o, "fusedActivationFunction", None)
        if act is not None and act not in _ACTIVATIONS:
            self.fail(f"{where}: unknown fused activation {int(act)}")
        for field in ("alpha", "beta"):
            v = getattr(o, field, None)
            if isinstance(v, float) and not math.isfinite(v):
                self.fail(f"{where}: {field} {v} is not finite")


def check_model(model: tfl.ModelT, path: str) -> None:
    """Raise ModelError (one line) on the first malformed part of `model`."""
    _Checker(model, path).run()
