"""State shared by the lowering of one program: emitter, memory plan, SRAM slots, options."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..arch.config import Arch
from ..errors import ScheduleError
from ..isa import instructions as I
from ..isa import wcodec
from ..cost.costs import SRAM_BYTES_PER_CYCLE
from ..schedule.memo import Memo
from .emitter import Emitter
from .memory import ArenaPlan, ConstImage
from .options import AutoNever, Dataflow, DepthwiseEngine, Fuse, Gptq, LoopOrder, Precision, validate


@dataclass(frozen=True)
class CompileOptions:
    """Named compiler options: scheduling and quantisation steps (the explorer sweeps them;
    allowed values: codegen/options.py, checked on construction)."""
    dataflow: Dataflow = "arch"     # arch | ws | os: "arch" follows [mxu] dataflow
    depthwise_engine: DepthwiseEngine = "auto"
    double_buffer: bool = True
    loop_order: LoopOrder = "auto"
    max_tile_rows: int = 0          # 0 = no limit (a knob to force small tiles in tests)
    onchip_fraction: float = 0.5    # share of ABUF that keeps activations on chip between layers
    fuse_depthwise: Fuse = "auto"   # auto | always | never: a depthwise conv and the 1x1 after it
                                    # run band by band (auto: where the event model times it faster)
    fuse_expansion: Fuse = "auto"   # auto | always | never: the expansion 1x1 before a fused depthwise
                                    # joins its bands (auto: where the event model times it faster)
    timed_candidates: int = 4       # cheapest tilings per layer timed with the event model (1: closed forms)
    energy_tie: float = 0.01        # timed tilings within this fraction of the fastest's cycles:
                                    # the one with the least dynamic energy wins (0: fastest only)
    compress_weights: AutoNever = "auto"  # auto | never: weight and parameter blocks stored compressed
                                    # (npukit.isa.wcodec) where that saves bytes, decoded by the weight DMA
    equalize: AutoNever = "never"   # auto | never: cross-layer equalisation of conv pairs before
                                    # calibration (npukit.opt.equalize; float outputs unchanged)
    bias_correction: AutoNever = "never"  # auto | never: conv / FC biases corrected for the mean output
                                    # shift of int8 weights, measured on calibration data
    flat_clip: AutoNever = "never"  # auto | never: a range clipped where every reader is constant beyond
                                    # a bound (hard-swish below -3, clamps; npukit.quant.saturate)
    precision: Precision = "int8"   # int8 | auto | int16: activations int16 (16x8) where the NPU runs
                                    # them: nowhere, where needed for min_sqnr, or everywhere it can
    min_sqnr: float = 30.0          # precision=auto: the worst output SQNR (dB) to reach on held-out samples
    recurrent_host: AutoNever = "auto"  # auto | never: an LSTM / GRU the NPU fits runs on the host where
                                    # the closed-form estimate is lower (host="never" sets "never")
    gptq: Gptq = "never"            # auto | sequential | never: conv / FC int8 weights rounded with GPTQ's error
                                    # feedback on the calibration inputs (npukit.quant.gptq; scales unchanged);
                                    # sequential: on the inputs the rounded layers before give, re-fitted to
                                    # the float output (npukit.quant.gptq_seq; scales follow the re-fit)

    def __post_init__(self):
        validate(self)


class SramSlots:
    """Bump allocation of one SRAM for one layer; each request returns `count` slot addresses.

    Consecutive lowered layers (a fused pair counts once) allocate from opposite ends, so the next layer's first loads (its
    weights above all) do not wait for the current layer to release the same bytes: the
    dependency tracker then lets them overlap the current layer's compute.
    """

    def __init__(self, space: int, size: int, name: str, from_top: bool = False, log: list | None = None):
        self.space, self.size, self.name, self.top, self.from_top = space, size, name, 0, from_top
        self.log = log      # receives (space, address, aligned bytes, size) of every slot taken

    def take(self, nbytes: int, count: int) -> list[int]:
        n = I.align(max(nbytes, 1))
        out = []
        for _ in range(count):
            if self.top + n > self.size:
                raise ScheduleError(f"{self.name} too small: needs {self.top + n} bytes of {self.size}")
            out.append(self.size - self.top - n if self.from_top else self.top)
            self.top += n
            if self.log is not None:
                self.log.append((self.space, out[-1], n, self.size))
        return out


class SlotPair:
    """Ping-pong buffers with content keys: a tile already resident is not loaded again."""

    def __init__(self, addrs: list[int]):
        self.addrs, self.keys, self.cur = addrs, [None] * len(addrs), len(addrs) - 1

    def lookup(self, key) -> tuple[int, bool]:
        """(address, needs_load) for `key`, evicting the slot not in current use."""
        if key in self.keys:
            self.cur = self.keys.index(key)
            return self.addrs[self.cur], False
        self.cur = (self.cur + 1) % len(self.addrs)
        self.keys[self.cur] = key
        return self.addrs[self.cur], True

    def next(self) -> int:
        self.cur = (self.cur + 1) % len(self.addrs)
        self.keys[self.cur] = None
        return self.addrs[self.cur]


class OwnSlots:
    """One slot per content key, taken on first use: nothing is evicted or loaded twice."""

    def __init__(self, slots: SramSlots, nbytes: int):
        self.slots, self.nbytes = slots, nbytes
        self.addrs: dict[object, int] = {}

    def lookup(self, key) -> tuple[int, bool]:
        if key in self.addrs:
            return self.addrs[key], False
        self.addrs[key] = self.slots.take(self.nbytes, 1)[0]
        return self.addrs[key], True


@dataclass
class Ctx:
    arch: Arch
    options: CompileOptions
    arena: ArenaPlan
    consts: ConstImage
    onchip_bytes: int = 0          # top of ABUF kept for resident activations
    emitter: Emitter = field(default_factory=Emitter)
    flip: bool = False             # this layer's SRAM slots come from the top (alternates)
    ratios: dict = field(default_factory=dict)   # tensor -> compressed / raw bytes of its weights
    memo: Memo = field(default_factory=Memo)     # the compile's remembered searches (one per schedule)
    slot_log: list | None = None   # a recording's SRAM slots: (entries before, slots) per slots() call

    def space(self, tensor: str) -> int:
        """Where an activation lives: an off-chip region, or ABUF's resident area."""
        return self.arena.where[tensor].space

    def bytes_per_cycle(self, tensor: str) -> float:
        """Bandwidth of the space holding a tensor (constants: the weights region)."""
        where = self.arena.where.get(tensor)
        space = self.consts.space if where is None else where.space
        if space < I.REGION0:
            return float(SRAM_BYTES_PER_CYCLE)
        return self.arch.region_bytes_per_cycle(self.arch.regions[space - I.REGION0].name)

    def weight_bytes_per_cycle(self, tensor: str, data: np.ndarray) -> float:
        """Decoded weight bytes per cycle a load of `tensor` delivers: the region's bandwidth
        over the tensor's compression ratio (when weights are compressed), at most the
        decoder's rate. The tiling search costs weight transfers with it."""
        bpc = self.bytes_per_cycle(tensor)
        if not self.consts.compress or data.size == 0:
            return bpc
        if tensor not in self.ratios:
            reuse = self.consts.reuse
            self.ratios[tensor] = reuse.ratio(data, estimated_ratio) if reuse is not None else estimated_ratio(data)
        ratio = self.ratios[tensor]
        if ratio >= 1.0:
            return bpc
        rate = min(bpc / ratio, self.arch.dma.decode_bytes_per_cycle)
        return round(rate, 4) if rate >= 0.01 else float(f"{rate:.4g}")    # a slow rate never rounds to 0

    def compression_key(self, *tensors: str) -> tuple:
        """What a remembered tiling choice depends on beyond shapes: whether blocks are
        compressed and the measured ratios of these weight tensors."""
        return self.consts.compress, tuple(round(self.ratios.get(t, 1.0), 3) for t in tensors)

    def addr(self, tensor: str) -> int:
        return self.arena.where[tensor].addr

    def const(self, array: np.ndarray, packable: bool = False) -> int:
        """Address of a constant block in the image; `packable`: it is only ever loaded whole
        into WBUF, so it may be stored compressed."""
        return self.consts.add(array, packable)

    def consts_many(self, arrays: list[np.ndarray], packable: bool = False) -> list[int]:
        """`[self.const(a, packable) for a in arrays]`, the new compressed blocks encoded together."""
        return self.consts.add_many(arrays, packable)

    def slots(self):
        """Fresh SRAM allocators for a layer (ABUF, WBUF, ACC)."""
        a = self.arch
        flip = self.flip
        log = None
        if self.slot_log is not None:       # a recording (scheduler.emitted): its slots, for flipped
            log = []
            self.slot_log.append((len(getattr(self.emitter, "entries", ())), log))
        return (SramSlots(I.ABUF, a.abuf_bytes - self.onchip_bytes, "ABUF", flip, log),
                SramSlots(I.WBUF, a.wbuf_bytes, "WBUF", flip, log), SramSlots(I.ACC, a.acc_bytes, "ACC", flip, log))

    @property
    def nbuf(self) -> int:
        return 2 if self.options.double_buffer else 1


SAMPLE_GROUPS = 2048    # groups of wcodec.GROUP values encoded to estimate a tensor's ratio


def estimated_ratio(data: np.ndarray) -> float:
    """Compressed / raw size of a weight tensor (at most 1), from up to SAMPLE_GROUPS evenly
    spaced groups of its values: a cost estimate, so a sample is enough."""
    raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    n_groups = raw.size // wcodec.GROUP
    if n_groups > SAMPLE_GROUPS:
        pick = np.linspace(0, n_groups - 1, SAMPLE_GROUPS).astype(np.int64)
        raw = raw[:n_groups * wcodec.GROUP].reshape(n_groups, wcodec.GROUP)[pick].reshape(-1)
    return min(1.0, wcodec.encoded_size(raw.tobytes()) / max(raw.size, 1))
