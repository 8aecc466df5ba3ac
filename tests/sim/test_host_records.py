"""Host segments are typed records: every kind's attribute and parameter records are written
as their fields alone and read back field by field, and a binary names no Python class."""
from __future__ import annotations

import dataclasses
import enum
import json
import random
import types
import typing

import numpy as np
import pytest

from npukit.errors import BinaryError
from npukit.ir.graph import Node, Op
from npukit.isa.serial import from_data, to_data
from npukit.quant.records import KINDS, PARAMS, decode_node, encode_node


def _value(hint, rng: random.Random):
    """A random value of `hint` (the declared type of a record field)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _value(rng.choice(args), rng)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], rng) for _ in range(rng.randrange(4)))
        return tuple(_value(a, rng) for a in args)
    if hint is type(None):
        return None
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return rng.choice(list(hint))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _instance(hint, rng)
    if hint is np.ndarray:
        return np.arange(rng.randrange(1, 5), dtype=np.int32)
    return {bool: lambda: rng.random() < 0.5, int: lambda: rng.randrange(2),
            float: lambda: rng.uniform(-2, 2), str: lambda: rng.choice(("", "a", "tanh"))}[hint]()


def _instance(cls: type, rng: random.Random):
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _value(hints[f.name], rng) for f in dataclasses.fields(cls)})


def _wire(obj) -> tuple[str, list]:
    blobs: list[np.ndarray] = []
    return json.dumps(to_data(obj, blobs)), [b.tolist() for b in blobs]


@pytest.mark.parametrize("op", list(Op), ids=lambda o: o.value)
def test_every_kind_round_trips_through_json(op):
    rng = random.Random(op.value)
    kind = KINDS[op]
    for tag in kind.params or (None,):
        for _ in range(5):
            params = None if tag is None else _instance(PARAMS[tag], rng)
            node = Node(op, "n", ("in0",), ("out0",), _instance(kind.attrs, rng), params)
            blobs: list[np.ndarray] = []
            rec = json.loads(json.dumps({**encode_node(node, blobs), "inputs": [{}], "outputs": [{}]}))
            back = decode_node(rec, blobs)
            assert (back.op, back.name) == (op, "n")
            assert _wire(back.attrs) == _wire(node.attrs) and _wire(back.params) == _wire(node.params)
            assert type(back.attrs) is type(node.attrs) and type(back.params) is type(node.params)


def test_no_class_name_is_written():
    names = {c.__name__ for k in KINDS.values() for c in (k.attrs,)} | {c.__name__ for c in PARAMS.values()}
    rng = random.Random(0)
    for op, kind in KINDS.items():
        for tag in kind.params:
            text = json.dumps(encode_node(Node(op, "n", (), (), _instance(kind.attrs, rng),
                                               _instance(PARAMS[tag], rng)), []))
            assert not any(n in text for n in names) and "__" not in text


@pytest.mark.parametrize("hint, data, message", [
    (int, True, "a bool, not a int"),
    (tuple[int, int], [1], "has 1 entries, not 2"),
    (np.ndarray, {"array": 3}, "does not refer to one of the binary's 0 arrays"),
    (Op, "no_such_op", "not one of the Op values"),
    (KINDS[Op.CONV2D].attrs, {"stride": [1, 1], "evil": 1}, "unknown field 'evil'"),
    (KINDS[Op.LEAKY_RELU].attrs, {}, "has no 'alpha'"),
])
def test_fields_of_another_type_are_refused(hint, data, message):
    with pytest.raises(BinaryError, match=message):
        from_data(hint, data, [], "attrs")


def test_a_kind_with_the_wrong_params_is_refused():
    rec = {"kind": "softmax", "name": "s", "attrs": {}, "params_kind": "lut", "params": {"table": {"array": 0}},
           "inputs": [], "outputs": []}
    with pytest.raises(BinaryError, match="params_kind 'lut' is not one a softmax segment takes"):
        decode_node(rec, [np.zeros(256, np.int8)])
    with pytest.raises(BinaryError, match="needs parameters"):
        decode_node({**rec, "params_kind": None, "params": None}, [])
