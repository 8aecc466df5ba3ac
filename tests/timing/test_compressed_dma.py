"""Timing of a decompressing DMA, worked by hand on u55-256 (flash: 1 B a cycle, 64 cycles
latency; DMA setup 16 cycles, 32-byte bursts, 4 cycles issue overhead)."""
from __future__ import annotations

from npukit.arch import load_arch
from npukit.codegen.replay import _Replay
from npukit.isa import instructions as I
from npukit.cost.timing import simulate

FLASH = I.REGION0 + 1      # u55-256's regions: sram, flash


def _load(raw: int, **kw) -> I.Dma:
    return I.Dma(0, (), FLASH, 0, (0,) * 4, I.WBUF, 0, (0,) * 4, (1, 1, 1, 1), raw, **kw)


def test_compressed_load_books_the_stream_and_the_decoder():
    arch = load_arch("u55-256")
    # plain: 16 + 64 fixed, 1000 B = 32 bursts = 1024 port cycles, + 4
    plain = simulate(_Replay([_load(1000)]), arch)
    assert plain.total_cycles == 80 + 1024 + 4
    # compressed to 100 B: 4 bursts = 128 port cycles; the decoder's 1000 / 32 = 32 cycles
    # from setup (16) end at 52, inside the read
    packed = simulate(_Replay([_load(1000, codec=1, packed=100)]), arch)
    assert packed.total_cycles == 80 + 128 + 4
    assert sum(c.region_bytes["flash"] for c in packed.counts) == 100
    assert sum(c.sram_bytes[I.WBUF] for c in packed.counts) == 1000
    # a decoder at 2 B a cycle paces the load: 16 + 500 + 4
    slow = arch.replace({"dma.decode_bytes_per_cycle": 2.0})
    assert simulate(_Replay([_load(1000, codec=1, packed=100)]), slow).total_cycles == 16 + 500 + 4


def test_one_decoder_serves_consecutive_loads():
    """Two loads of 100 B streams: the flash port serialises the reads (128 cycles each);
    at 2 B a cycle the shared decoder takes 500 cycles each, so the second ends at 1020 + 4."""
    slow = load_arch("u55-256").replace({"dma.decode_bytes_per_cycle": 2.0})
    loads = [_load(1000, codec=1, packed=100), I.Dma(0, (), FLASH, 128, (0,) * 4, I.WBUF, 1024, (0,) * 4,
                                                     (1, 1, 1, 1), 1000, codec=1, packed=100)]
    t = simulate(_Replay(loads), slow)
    assert t.end[0] == 16 + 500 + 4 and t.total_cycles == 16 + 1000 + 4
