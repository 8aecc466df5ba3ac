"""The constant image's blocks added together (`ConstImage.add_many`, the new compressed ones
encoded in one pass) are placed as added one at a time, and each address holds its block:
raw, or a stream the decoder turns back into it."""
from __future__ import annotations

import numpy as np

from npukit.codegen.memory import ConstImage
from npukit.codegen.reuse import Reuse
from npukit.isa import instructions as I
from npukit.isa import wcodec


def _blocks() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = [np.clip(np.round(rng.laplace(0, s, n)), -127, 127).astype(np.int8) for s, n in
           ((2, 700), (30, 333), (0.5, 64), (90, 40))]
    out += [np.zeros(96, np.int8), out[0].copy(), rng.integers(-128, 128, 50).astype(np.int8), out[2].copy()]
    return out


def test_blocks_added_together_are_placed_as_one_at_a_time():
    blocks = _blocks()
    for reuse in (None, Reuse()):
        alone = ConstImage(I.REGION0, 4096, compress=True, reuse=reuse)
        one = [alone.add(b, True) for b in blocks]
        together = ConstImage(I.REGION0, 4096, compress=True, reuse=reuse)
        many = together.add_many(blocks, True)
        assert many == one and together.data == alone.data and together.packed == alone.packed
    assert many[5] == many[0] and many[7] == many[2]         # identical blocks stored once
    assert together.packed and len(together.packed) < len(set(many))   # some compressed, not all
    data = np.frombuffer(bytes(together.data), np.uint8)
    for b, addr in zip(blocks, many):
        at = addr - together.base
        assert at % I.ALIGN == 0
        if addr in together.packed:
            n, stored = together.packed[addr]
            np.testing.assert_array_equal(wcodec.decode(data[at:at + stored], n).view(np.int8), b)
        else:
            np.testing.assert_array_equal(data[at:at + b.size].view(np.int8), b)
