"""Work several compiles of one model share, held by their caller.

A transformer compiled once per token count (or a model lowered for several arches) stores
the same weight blocks each time: `Reuse` remembers each block's compressed stream and
each weight tensor's estimated compression ratio by their bytes (a SHA-256 digest of
them, so the blocks themselves are not held), so a later compile takes them instead of
encoding again. Both are pure functions of the bytes, so a program compiled with a `Reuse`
is byte-identical to one compiled alone. Compiles with `scales` also keep there the quantised
constants and params of dense layers and embedding tables (`quantised`, quant.quantize's
`known`: by a digest of the float data and the scales they depend on), and every compile's
ONNX import the checked and fused model and the values that depend on the file alone
(`imported`, frontend.onnx.load_onnx's `memo`: by a digest of the file's bytes). The caller makes one
(`npukit.Reuse()`), passes it to every compile that should share (`reuse=`) and drops it
when done: nothing is kept between compiles that are not given the same object.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..isa import wcodec


@dataclass
class Reuse:
    streams: dict[bytes, bytes] = field(default_factory=dict)   # digest of a weight block -> its wcodec stream
    ratios: dict[bytes, float] = field(default_factory=dict)    # digest of a weight tensor -> estimated ratio
    quantised: dict = field(default_factory=dict)               # quant.quantize.remembered's memo
    imported: dict = field(default_factory=dict)                # frontend.onnx.load_onnx's memo

    def encode(self, raw: bytes) -> bytes:
        """`wcodec.encode(raw)`, encoded once per distinct block (a stream taken from here is
        remembered for the simulator's decode as a fresh encoding is)."""
        key = _digest(raw)
        stream = self.streams.get(key)
        if stream is None:
            return self.streams.setdefault(key, wcodec.encode(raw))
        wcodec.remember(stream, raw)
        return stream

    def encode_many(self, raws: list[bytes]) -> list[bytes]:
        """`[self.encode(r) for r in raws]`, the blocks not seen before encoded together."""
        keys = [_digest(r) for r in raws]
        new = {k: r for k, r in zip(keys, raws) if k not in self.streams}
        self.streams.update(zip(new, wcodec.encode_many(list(new.values()))))
        for k, r in zip(keys, raws):
            if k not in new:
                wcodec.remember(self.streams[k], r)
        return [self.streams[k] for k in keys]

    def ratio(self, data: np.ndarray, estimate) -> float:
        """`estimate(data)` (a ratio that depends only on the bytes), once per distinct tensor."""
        key = _digest(np.ascontiguousarray(data).tobytes())
        if key not in self.ratios:
            self.ratios[key] = estimate(data)
        return self.ratios[key]


def checked(reuse) -> Reuse | None:
    """`reuse` if it is None or a Reuse; InputError otherwise."""
    if reuse is not None and not isinstance(reuse, Reuse):
        raise InputError(f"reuse must be an npukit.Reuse(), not {type(reuse).__name__}")
    return reuse


def _digest(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()
