"""Validation of the compiler options (CompileOptions fields), by name: one place for every
field's allowed values, used by CompileOptions itself, `options=` of npukit.compile and the
CLI's `--option NAME=VALUE`. Every problem is a one-line InputError naming the field."""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Literal, Mapping, get_args

from ..errors import InputError

Dataflow = Literal["arch", "ws", "os"]               # "arch" follows [mxu] dataflow
DepthwiseEngine = Literal["auto", "mxu", "vpu"]
LoopOrder = Literal["auto", "k_outer", "rows_outer"]
Fuse = Literal["auto", "always", "never"]
AutoNever = Literal["auto", "never"]
Gptq = Literal["auto", "sequential", "never"]   # "sequential": each layer on the rounded layers' outputs
Precision = Literal["int8", "auto", "int16"]    # "auto": int16 where int8 loses too much (min_sqnr)

# fields with a fixed set of values: the literal types CompileOptions declares
CHOICES: dict[str, tuple[str, ...]] = {
    "dataflow": get_args(Dataflow),
    "depthwise_engine": get_args(DepthwiseEngine),
    "loop_order": get_args(LoopOrder),
    "fuse_depthwise": get_args(Fuse),
    "fuse_expansion": get_args(Fuse),
    "compress_weights": get_args(AutoNever),
    "equalize": get_args(AutoNever),
    "bias_correction": get_args(AutoNever),
    "gptq": get_args(Gptq),
    "flat_clip": get_args(AutoNever),
    "precision": get_args(Precision),
    "recurrent_host": get_args(AutoNever),
}
# fields the quantiser reads (ptq.quantise), not lowering: the explorer quantises once per setting
QUANT_OPTIONS = ("equalize", "bias_correction", "flat_clip", "precision", "min_sqnr", "gptq")
# numeric fields: (low, high, high included)
RANGES: dict[str, tuple[float, float | None, bool]] = {
    "max_tile_rows": (0, None, True),
    "timed_candidates": (1, None, True),
    "onchip_fraction": (0.0, 1.0, False),
    "energy_tie": (0.0, 1.0, False),
    "min_sqnr": (0.0, 200.0, True),
}


def allowed(name: str, kind: type) -> str:
    """The allowed values of a field, as a phrase for messages."""
    if name in CHOICES:
        return "one of " + " | ".join(CHOICES[name])
    if kind is bool:
        return "a bool (true | false)"
    noun = "an integer" if kind is int else "a number"
    lo, hi, closed = RANGES.get(name, (None, None, True))
    if lo is None:
        return noun if kind in (int, float) else f"a {kind.__name__}"
    if hi is None:
        return f"{noun} >= {lo}"
    return f"{noun} in [{lo}, {hi}{']' if closed else ')'}"


def check_option(name: str, value: Any, kind: type) -> Any:
    """`value` for field `name` of type `kind`, checked (an int is accepted for a float field)."""
    is_bool = isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b"
    ok = {bool: is_bool, str: isinstance(value, str),
          int: isinstance(value, numbers.Integral) and not is_bool,
          float: isinstance(value, numbers.Real) and not is_bool}.get(kind, isinstance(value, kind))
    if ok and name in CHOICES:
        ok = value in CHOICES[name]
    if ok and name in RANGES:
        lo, hi, closed = RANGES[name]
        ok = value >= lo and (hi is None or value < hi or (closed and value == hi))
    if not ok:
        raise InputError(f"option {name}={value!r} is not {allowed(name, kind)}")
    return kind(value)


def field_types(cls) -> dict[str, type]:
    return {f.name: type(f.default) for f in dataclasses.fields(cls)}


def validate(options) -> None:
    """Check every field of a CompileOptions instance (its __post_init__ calls this)."""
    for name, kind in field_types(type(options)).items():
        object.__setattr__(options, name, check_option(name, getattr(options, name), kind))


def options_from(cls, given) -> Any:
    """A `cls` (CompileOptions) from None, an instance or a {field: value} mapping."""
    if given is None:
        return cls()
    if isinstance(given, cls):
        return given
    if not isinstance(given, Mapping):
        raise InputError(f"options must be a dict of option names to values or CompileOptions, "
                         f"not {type(given).__name__}")
    kinds = field_types(cls)
    unknown = [k for k in given if k not in kinds]
    if unknown:
        raise InputError(f"unknown option {unknown[0]!r} (options: {', '.join(kinds)})")
    return cls(**given)


def parse_option(cls, spec: str) -> tuple[str, Any]:
    """`NAME=VALUE` (the CLI's --option) -> (name, value parsed by the field's type)."""
    kinds = field_types(cls)
    name, sep, text = spec.partition("=")
    name, text = name.strip(), text.strip()
    if not sep or not name:
        raise InputError(f"--option {spec!r}: expected NAME=VALUE (options: {', '.join(kinds)})")
    if name not in kinds:
        raise InputError(f"unknown option {name!r} (options: {', '.join(kinds)})")
    kind = kinds[name]
    value: Any = text
    try:
        if kind is bool:
            value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[text.lower()]
        elif kind is int:
            value = int(text)
        elif kind is float:
            value = float(text)
    except (KeyError, ValueError):
        raise InputError(f"option {name}={text!r} is not {allowed(name, kind)}") from None
    return name, check_option(name, value, kind)
