"""The machine an instruction runs on: SRAMs and off-chip regions as flat byte arrays."""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import BinaryError
from ..isa import instructions as I
from ..isa.strided import extent
from . import gemm_int8, plans


class Machine:
    """SRAMs and off-chip regions as byte arrays, plus the prepared kernels' scratch buffers
    and the exact int8 GEMM the MXU's products run on (None: the float32 kernels).

    The arrays are allocated once: bound instructions hold views into them."""

    def __init__(self, sram_bytes: dict[int, int], regions: list[np.ndarray],
                 gemm: gemm_int8.Int8Gemm | None = None):
        self.gemm = gemm
        self.mem = {space: np.zeros(n, np.uint8) for space, n in sram_bytes.items()}
        self.sram = list(self.mem.values())
        for i, region in enumerate(regions):
            self.mem[I.REGION0 + i] = region
        self.scratch = plans.Scratch()

    def clear_sram(self) -> None:
        """SRAM contents do not survive between inferences; the regions do."""
        for mem in self.sram:
            mem.fill(0)

    def view(self, space: int, addr: int, shape, dtype=np.int8) -> np.ndarray:
        """A writable view of a contiguous block; raises BinaryError when out of bounds."""
        mem = self.space(space)
        n = int(math.prod(shape)) * np.dtype(dtype).itemsize
        if addr < 0 or n < 0 or addr + n > mem.size:
            raise BinaryError(f"access [{addr}, {addr + n}) outside space {space} of {mem.size} bytes")
        return mem[addr:addr + n].view(dtype).reshape(shape)

    def strided(self, space: int, addr: int, shape, strides, elem: int) -> np.ndarray:
        mem = self.space(space)
        if elem < 1 or min(shape, default=0) < 0:
            raise BinaryError(f"strided access of {list(shape)} elements of {elem} bytes")
        if min(shape) <= 0:
            return np.zeros((0, elem), np.uint8)
        lo, hi = extent(addr, shape, strides, elem)
        if lo < 0 or hi > mem.size:
            raise BinaryError(f"strided access [{lo}, {hi}) outside space {space} of {mem.size} bytes")
        return as_strided(mem[addr:], shape=tuple(shape) + (elem,), strides=tuple(strides) + (1,))

    def space(self, space: int) -> np.ndarray:
        if space not in self.mem:
            raise BinaryError(f"instruction names memory space {space}, which does not exist")
        return self.mem[space]
