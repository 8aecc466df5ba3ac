"""An instruction's parameter record as its integer immediates, and back.

Codegen writes a kernel's prepared parameters (a frozen dataclass of integers) into the
instruction's `params` tuple; the simulator rebuilds the record from them, range-checked.
"""
from __future__ import annotations

from dataclasses import MISSING, astuple, fields

from ..errors import BinaryError


def params_to_ints(p) -> tuple[int, ...]:
    return tuple(int(v) for v in astuple(p))


def params_from_ints(cls, ints: tuple[int, ...]):
    """The parameter record of an instruction's immediates: int32 values, shifts within +-63
    (BinaryError otherwise: a corrupt binary must not reach the kernels' arithmetic)."""
    every = fields(cls)
    required = sum(f.default is MISSING and f.default_factory is MISSING for f in every)
    if not required <= len(ints) <= len(every):      # trailing defaulted fields are extensions (2.1)
        want = f"{required} to {len(every)}" if required < len(every) else str(len(every))
        raise BinaryError(f"{cls.__name__}: expected {want} parameters, got {len(ints)}")
    for f, v in zip(every, ints):
        lo, hi = (-63, 63) if "shift" in f.name else (-(1 << 31), (1 << 31) - 1)
        if not lo <= v <= hi:
            raise BinaryError(f"{cls.__name__}: {f.name} = {v} outside [{lo}, {hi}]")
    return cls(*ints)
