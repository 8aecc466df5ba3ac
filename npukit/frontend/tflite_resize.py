"""TFLite inputs with dynamic dimensions (-1 in the file's shape signature) resized to the
shapes the user gives: LiteRT propagates them through the graph (`resize_tensor_input`,
`allocate_tensors`) and the resolved shape of every tensor of the main subgraph replaces the
placeholder the converter stored (often 1 for each dynamic dimension). Tensors whose shapes
the graph computes from the input's are sized by running the model once on zeros."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..errors import DynamicBatchWarning, InputError, ModelError, first_line
from . import tflite_read as rd


def dynamic_dims(t: tfl.TensorT) -> tuple[int, ...]:
    """The axes the file marks dynamic (-1 in its shape signature)."""
    sig = t.shapeSignature
    return () if sig is None or len(sig) == 0 else tuple(i for i, d in enumerate(sig) if int(d) < 0)


def dynamic_inputs(model: tfl.ModelT) -> dict[str, tuple[int, ...]]:
    """{input name: its dynamic axes} for the main subgraph's inputs that have any."""
    sg = model.subgraphs[0]
    named = {rd.tensor_name(sg.tensors[i], int(i)): dynamic_dims(sg.tensors[i]) for i in sg.inputs}
    return {k: v for k, v in named.items() if v}


def resize_inputs(model: tfl.ModelT, path: Path, shapes: dict[str, tuple[int, ...]]) -> None:
    """Give the inputs named in `shapes` those shapes, in place, with every tensor of the
    main subgraph reshaped as LiteRT resolves it (running it once on zeros, which sizes the
    tensors whose shapes are computed). Only dynamic axes may change (InputError)."""
    sg = model.subgraphs[0]
    index = {rd.tensor_name(sg.tensors[i], int(i)): int(i) for i in sg.inputs}
    wanted: dict[int, tuple[int, ...]] = {}
    for name, shape in shapes.items():
        if name not in index:
            raise InputError(f"--input-shape names {name!r}, but the model's inputs are {list(index)}")
        t = sg.tensors[index[name]]
        stored, free = rd.shape(t), dynamic_dims(t)
        shape = tuple(int(d) for d in shape)
        if shape == stored and not free:
            continue
        if len(shape) != len(stored) or any(a != b and i not in free for i, (a, b) in enumerate(zip(shape, stored))):
            sig = [int(d) for d in t.shapeSignature] if free else list(stored)
            raise InputError(f"input {name!r}: the TFLite file fixes its shape to {sig} (-1: dynamic); "
                             f"cannot override with {list(shape)}")
        if any(d < 1 for d in shape):
            raise InputError(f"input {name!r}: shape {list(shape)} has a dimension < 1")
        wanted[index[name]] = shape
    if not wanted:
        return
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    try:
        it = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        for i, shape in wanted.items():
            it.resize_tensor_input(i, list(shape), strict=True)
        it.allocate_tensors()
        # a shape computed from the input's (SHAPE ... RESHAPE, e.g. tf.signal.frame's frame
        # count) makes its tensors dynamic: LiteRT sizes them only when it runs
        for d in it.get_input_details():
            it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        it.invoke()
        resolved = {int(d["index"]): tuple(int(x) for x in d["shape"]) for d in it.get_tensor_details()}
    except (RuntimeError, ValueError) as e:
        raise InputError(f"{path}: LiteRT cannot resize the inputs to "
                         f"{ {rd.tensor_name(sg.tensors[i], i): list(s) for i, s in wanted.items()} }: "
                         f"{first_line(str(e))}") from None
    for i, t in enumerate(sg.tensors):
        if i in resolved and t.shape is not None and len(t.shape) == len(resolved[i]):
            t.shape = np.asarray(resolved[i], np.int32)


def _open_batches(model: tfl.ModelT, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """{input: its stored shape} for the inputs whose only dynamic axis is the batch and that
    `shapes` leaves unsized (a malformed file: none; the import check names its fault)."""
    try:
        sg = model.subgraphs[0]
        stored = {rd.tensor_name(sg.tensors[i], int(i)): rd.shape(sg.tensors[i]) for i in sg.inputs}
        return {k: stored[k] for k, axes in dynamic_inputs(model).items() if axes == (0,) and k not in shapes}
    except (IndexError, TypeError, AttributeError, ValueError):
        return {}


def read_resized(path: Path, shapes: dict[str, tuple[int, ...]], sizes_given: bool = True) -> tfl.ModelT:
    """The model read and validated at the input shapes given. An input whose only open axis
    is the batch is sized at its stored batch (1, with a DynamicBatchWarning) and LiteRT
    resolves the shapes the graph computes from it (a model LiteRT cannot run keeps its stored
    shapes). A file whose stored placeholder shapes do not validate, with other dynamic axes
    left unsized, is an error that says to size them (unless not `sizes_given`: the caller
    reads only its interface)."""
    from .tflite_check import check_model
    model = rd.read_model(path, check=False)
    batch = _open_batches(model, shapes) if sizes_given else {}
    failed: ModelError | None = None
    try:
        check_model(model, str(path))
    except ModelError as e:
        try:
            unsized = {k: v for k, v in dynamic_inputs(model).items() if k not in shapes and k not in batch}
        except (IndexError, TypeError, AttributeError, ValueError):    # malformed beyond the shapes
            raise e from None
        if unsized and not sizes_given:
            return model
        if unsized:
            hint = ", ".join(f"{k!r} (dynamic axes {list(v)})" for k, v in unsized.items())
            raise type(e)(f"{e} (the file leaves input {hint} unsized: give --input-shape)") from None
        if not shapes and not batch:
            raise
        failed = e
    for name, shape in batch.items():
        warnings.warn(f"input {name!r} has a dynamic batch dimension: compiled for batch {shape[0]} "
                      f"(--input-shape {name}=... chooses another)", DynamicBatchWarning, stacklevel=3)
    if batch or shapes:
        try:
            resize_inputs(model, path, {**shapes, **batch})
        except InputError:
            if shapes or failed is not None:
                raise
            return model        # LiteRT cannot run it (a custom operator): its stored shapes, which import
        check_model(model, str(path))
    return model
