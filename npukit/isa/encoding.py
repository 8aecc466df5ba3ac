"""Binary encoding of the instruction stream and its disassembly.

Stream = little-endian int64 words. One instruction:
  opcode, layer, n_deps, deps..., then each payload field in declaration order
  (a fixed tuple as its words, a variable tuple as its length then its words).
The opcode word's bits 16 and up count extension words (integer fields with a default,
e.g. Conv.in_bytes) that follow the payload; they are written only when one differs from
its default, so an instruction that does not use them encodes as before (and an older
reader rejects one that does as an unknown opcode, not a misread).
"""
from __future__ import annotations

import numpy as np

from ..errors import BinaryError
from ..limits import INSTRUCTIONS
from .instructions import OPCODES, REGION0, SPACE_NAMES, Instr, engine_of, extension_fields, field_layout

_LAYOUTS = {cls: field_layout(cls) for cls in OPCODES}
_EXTENSIONS = {cls: extension_fields(cls) for cls in OPCODES}
_EXT_SHIFT = 16
_OPCODE = {cls: i for i, cls in enumerate(OPCODES)}


def encode(program: list[Instr]) -> bytes:
    words: list[int] = []
    for ins in program:
        cls = type(ins)
        ext = [int(getattr(ins, name)) for name in _EXTENSIONS[cls]]
        if all(v == cls.__dataclass_fields__[name].default for v, name in zip(ext, _EXTENSIONS[cls])):
            ext = []
        words += [_OPCODE[cls] | (len(ext) << _EXT_SHIFT), ins.layer, len(ins.deps), *ins.deps]
        for name, arity in _LAYOUTS[cls]:
            value = getattr(ins, name)
            if arity == 1:
                words.append(int(value))
            elif arity == -1:
                words += [len(value), *map(int, value)]
            else:
                words += list(map(int, value))
        words += ext
    return np.asarray(words, dtype="<i8").tobytes()


def decode(data: bytes) -> list[Instr]:
    if len(data) % 8:
        raise BinaryError(f"instruction stream length {len(data)} is not a multiple of 8")
    words = np.frombuffer(data, dtype="<i8").tolist()
    program: list[Instr] = []
    pos, n = 0, len(words)

    def take(k: int) -> list[int]:
        nonlocal pos
        if k < 0 or pos + k > n:
            raise BinaryError(f"instruction stream truncated in instruction {len(program)}")
        out = words[pos:pos + k]
        pos += k
        return out

    while pos < n:
        INSTRUCTIONS.check(len(program) + 1, "the binary's instruction stream", BinaryError)
        word, layer, n_deps = take(3)
        op, n_ext = word & ((1 << _EXT_SHIFT) - 1), word >> _EXT_SHIFT
        if not 0 <= op < len(OPCODES) or not 0 <= n_ext <= len(_EXTENSIONS[OPCODES[op]]):
            raise BinaryError(f"unknown opcode {word} at instruction {len(program)}")
        deps = tuple(take(n_deps))
        if any(not 0 <= d < len(program) for d in deps):
            raise BinaryError(f"instruction {len(program)} waits on a later or missing instruction")
        cls = OPCODES[op]
        values: dict[str, int | tuple[int, ...]] = {}
        for name, arity in _LAYOUTS[cls]:
            if arity == 1:
                values[name] = take(1)[0]
            elif arity == -1:
                values[name] = tuple(take(take(1)[0]))
            else:
                values[name] = tuple(take(arity))
        values.update(zip(_EXTENSIONS[cls], take(n_ext)))
        program.append(cls(layer=layer, deps=deps, **values))
    return program


def space_name(space: int, regions: list[str]) -> str:
    if space in SPACE_NAMES:
        return SPACE_NAMES[space]
    idx = space - REGION0
    return regions[idx] if 0 <= idx < len(regions) else f"space{space}"


def disassemble(program: list[Instr], regions: list[str], layer_names: list[str] | None = None) -> str:
    lines, current = [], None
    for i, ins in enumerate(program):
        if layer_names is not None and ins.layer != current:
            current = ins.layer
            name = layer_names[ins.layer] if 0 <= ins.layer < len(layer_names) else "?"
            lines.append(f"; layer {ins.layer}: {name}")
        parts = []
        ext = [(n, 1) for n in _EXTENSIONS[type(ins)] if getattr(ins, n) != type(ins).__dataclass_fields__[n].default]
        for name, _ in _LAYOUTS[type(ins)] + ext:
            value = getattr(ins, name)
            if name.endswith("space"):
                value = space_name(value, regions)
            elif isinstance(value, tuple):
                value = "x".join(map(str, value)) if value else "-"
            parts.append(f"{name}={value}")
        wait = f" wait={','.join(map(str, ins.deps))}" if ins.deps else ""
        lines.append(f"{i:6d} {engine_of(ins).name.lower():7s} {type(ins).__name__.upper():11s} "
                     + " ".join(parts) + wait)
    return "\n".join(lines)
