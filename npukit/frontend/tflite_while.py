"""A TFLite WHILE whose trip count is fixed at import, unrolled (as frontend/onnx_loop does
for an ONNX Loop).

A Keras RNN converted to TFLite (the Precise VAD's GRU) is a WHILE over the time steps: its
condition compares a counter with a constant, its body reads step t of the input (a GATHER
by the counter) and carries the state. With the counter a constant at import, the condition
folds in every iteration, so the importer converts the body once per iteration (its inputs
bound to the values the previous iteration made), each operator as any other (NPU, or the
host with its reason). A condition that does not fold, more than `MAX_UNROLL` iterations,
control flow or resource variables inside the loop, or a converter error leaves the WHILE
to the host, whole, as before. An empty value (a Keras TensorList grown from [0, ...]) is a
constant: a CONCATENATION drops it. Each body value's per-iteration copies are tied
(ir.ties): one scale for every iteration.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..errors import ModelError, UnsupportedOpError
from . import tflite_read as rd
from .unroll_ties import Iteration, iteration, iteration_ties

MAX_UNROLL = 32
_REFUSED = {"WHILE", "IF", "CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}

Value = np.ndarray | str          # a constant, or the IR tensor holding an activation


class NotUnrolled(Exception):
    """The WHILE stays one host node."""


@dataclass
class _Context:
    sg: tfl.SubGraphT
    names: dict
    computed: dict
    folded: dict
    made: set
    skip: set
    complex: dict


def unroll_while(cv, op: tfl.OperatorT) -> bool:
    """Convert `op` (a WHILE of the main subgraph) iteration by iteration; False, with the
    converter as before, when it is not unrolled."""
    o = op.builtinOptions
    saved = len(cv.nodes), dict(cv.tensors), dict(cv.names), dict(cv.computed), len(cv.ties)
    label, index, source = cv.op_label, cv.op_index, cv.op_source
    try:
        values: list[Value] = [cv.const(i) if cv.const(i) is not None else cv.name(i) for i in op.inputs]
        copies: list[Iteration] = []
        for k in range(MAX_UNROLL + 1):
            flag = _run(cv, int(o.condSubgraphIndex), values, f"{source}/cond{k}")[0][0]
            if isinstance(flag, str) or np.size(flag) != 1:
                raise NotUnrolled
            if not bool(np.asarray(flag).ravel()[0]):
                break
            if k == MAX_UNROLL:
                raise NotUnrolled
            start = len(cv.nodes)
            values, named = _run(cv, int(o.bodySubgraphIndex), values, f"{source}/iteration{k}")
            copies.append(iteration(cv.nodes[start:], cv.tensors, named))
        for out, v in zip(op.outputs, values):
            if out < 0:
                continue
            if not isinstance(v, str):
                if out in cv.sg.outputs:
                    raise NotUnrolled          # (a constant graph output)
                cv.computed[int(out)] = np.asarray(v)
            elif cv.tensors[v].shape != rd.shape(cv.sg.tensors[out]):
                raise NotUnrolled
            else:
                cv.names[int(out)] = v
        cv.ties.extend(iteration_ties(copies))
        return True
    except (NotUnrolled, UnsupportedOpError, ModelError):
        del cv.nodes[saved[0]:]
        cv.tensors, cv.names, cv.computed = saved[1], saved[2], saved[3]
        del cv.ties[saved[4]:]
        return False
    finally:
        cv.op_label, cv.op_index, cv.op_source = label, index, source


def _run(cv, index: int, values: list[Value], tag: str) -> tuple[list[Value], dict]:
    """Convert subgraph `index` with its inputs bound to `values`; its outputs' values, and
    the IR tensor of each activation it holds (by TFLite tensor index)."""
    from .tflite_complex import convert_complex
    from .tflite_ops import CONVERTERS
    if not 0 < index < len(cv.model.subgraphs):
        raise ModelError(f"{cv.where()}: WHILE names missing subgraph {index}")
    sg = cv.model.subgraphs[index]
    if len(sg.inputs) != len(values):
        raise NotUnrolled
    outer = _Context(cv.sg, cv.names, cv.computed, cv.folded, cv.made, cv.skip, cv.complex)
    cv.sg, cv.names, cv.computed, cv.folded, cv.skip, cv.complex = sg, {}, {}, {}, set(), {}
    cv.made = {int(i) for s in sg.operators or [] for i in s.outputs} | {int(i) for i in sg.inputs}
    start = len(cv.nodes)
    try:
        for i, v in zip(sg.inputs, values):
            if isinstance(v, str):
                cv.names[int(i)] = v
            else:
                cv.computed[int(i)] = np.asarray(v)
        cv._fold_constant_weights()
        used = {int(i) for s in sg.operators or [] for i in s.inputs if i >= 0} | {int(i) for i in sg.outputs}
        for k, sop in enumerate(sg.operators or []):
            cv.op_index, cv.op_label = k, rd.op_name(cv.model, sop)
            outs = [rd.tensor_name(sg.tensors[i], i) for i in sop.outputs if i >= 0]
            cv.op_source = f"{tag}/{cv.op_label}:{outs[0] if outs else k}"
            if k in cv.skip:
                continue
            if cv.op_label in _REFUSED:
                raise NotUnrolled
            if _empty(cv, sop) or convert_complex(cv, sop):
                continue
            ins = [i for i in sop.inputs if i >= 0]     # (the counter: a constant, though a body output)
            if ins and all(cv.const(i) is not None for i in ins) and cv._fold(sop):
                continue
            cv._convert_op(sop, CONVERTERS.get(cv.op_label), used)
        out = [cv.const(i) if cv.const(i) is not None else cv.name(i) for i in sg.outputs]
        named = {i: n for i, n in cv.names.items() if not cv.tensors[n].is_const}
    finally:
        cv.sg, cv.names, cv.computed, cv.folded = outer.sg, outer.names, outer.computed, outer.folded
        cv.made, cv.skip, cv.complex = outer.made, outer.skip, outer.complex
    cv.nodes[start:] = [n.with_(name=f"{tag}/{n.name}") for n in cv.nodes[start:]]
    return out, named


def _empty(cv, op: tfl.OperatorT) -> bool:
    """An operator making only empty values makes constants; a CONCATENATION of empty pieces
    and one that is not is that one (True: handled)."""
    outs = [i for i in op.outputs if i >= 0]
    if outs and all(0 in rd.shape(cv.sg.tensors[i]) for i in outs):
        for i in outs:
            cv.computed[int(i)] = np.zeros(rd.shape(cv.sg.tensors[i]), rd.np_dtype(cv.sg.tensors[i], i))
        return True
    if cv.op_label != "CONCATENATION":
        return False
    kept = [i for i in op.inputs if 0 not in rd.shape(cv.sg.tensors[i])]
    if len(kept) == len(op.inputs):
        return False
    if len(kept) == 1 and getattr(op.builtinOptions, "fusedActivationFunction", 0) == 0:
        src = cv.const(kept[0])
        if src is not None:
            cv.computed[int(outs[0])] = src
        else:
            cv.names[int(outs[0])] = cv.name(kept[0])
        return True
    trimmed = copy.copy(op)
    trimmed.inputs = kept
    from .tflite_ops import CONVERTERS
    cv._convert_op(trimmed, CONVERTERS.get(cv.op_label), {int(i) for i in op.outputs})
    return True
