"""Random instances of every opcode (with the valid parameter blocks they read) and random
machine states, for the tests that check the ISA's ranges and the fast paths."""
from __future__ import annotations

import numpy as np

from npukit.codegen.conv import requant_params
from npukit.codegen.norm import param_block
from npukit.ir.graph import Clamp
from npukit.isa import instructions as I
from npukit.isa import wcodec
from npukit.isa.immediates import params_to_ints
from npukit.kernels import kernels_gru as kg
from npukit.kernels import kernels_lstm as kl
from npukit.kernels import kernels_mxu as kx
from npukit.kernels import kernels_transformer as kt
from npukit.kernels import kernels_vpu as kv
from npukit.kernels import kernels_vpu16 as k16
from npukit.kernels import kernels_vpu_compare as kc
from npukit.kernels import kernels_wide as kw
from npukit.sim.machine import Machine

SIZE = {I.ABUF: 8192, I.WBUF: 8192, I.ACC: 16384, I.REGION0: 8192}
SPACES = tuple(SIZE)


class Gen:
    """Random instances of each opcode, with the valid parameter blocks they read."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.blocks: list[tuple[int, int, bytes]] = []    # (space, addr, bytes) written before the run

    def i(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def at(self, space: int, n: int) -> int:
        return self.i(0, SIZE[space] - max(n, 1))

    def block(self, space: int, data: np.ndarray) -> int:
        raw = np.ascontiguousarray(data).tobytes()
        addr = self.at(space, len(raw)) // 8 * 8
        self.blocks.append((space, addr, raw))
        return addr

    def al(self, space: int, n: int, a: int = 8) -> int:
        """An address aligned to `a` bytes with room for `n`."""
        return self.at(space, n) // a * a

    def scale(self) -> float:
        return float(self.rng.uniform(0.01, 0.2))

    def dma(self) -> I.Dma:
        shape = tuple(self.i(1, 4) for _ in range(4))
        elem = self.i(1, 4)
        dense = (shape[1] * shape[2] * shape[3] * elem, shape[2] * shape[3] * elem, shape[3] * elem, elem)
        src_space, dst_space = (SPACES[self.i(0, 3)] for _ in range(2))
        dst = self.at(dst_space, dense[0] * shape[0])
        if self.i(0, 2) == 0:          # a compressed stream
            data = self.rng.integers(-8, 8, dense[0] * shape[0] // elem * elem, dtype=np.int8)
            stream = np.frombuffer(wcodec.encode(data), np.uint8)
            src = self.block(src_space, stream)
            return I.Dma(0, (), src_space, src, (0,) * 4, dst_space, dst, dense, (1, 1, 1, 1), data.size,
                         codec=wcodec.RICE, packed=stream.size)
        strides = tuple(s * self.i(0, 2) * (-1 if self.i(0, 4) == 0 else 1) for s in dense)
        lo = sum(min(0, s * (n - 1)) for s, n in zip(strides, shape))
        hi = sum(max(0, s * (n - 1)) for s, n in zip(strides, shape)) + elem
        src = self.i(-lo, SIZE[src_space] - hi)
        return I.Dma(0, (), src_space, src, strides, dst_space, dst, dense, shape, elem)

    def fill(self) -> I.Fill:
        space, n = SPACES[self.i(0, 3)], self.i(0, 300)
        return I.Fill(0, (), space, self.at(space, n), n, self.i(0, 255))

    def conv(self) -> I.Conv:
        in_bytes = self.i(1, 2)
        in_h, in_w, c_off, c_len, k = self.i(1, 5), self.i(1, 5), self.i(0, 2), self.i(1, 4), self.i(1, 4)
        c_stride = c_off + c_len + self.i(0, 2)
        kernel = (self.i(1, 3), self.i(1, 3))
        out_h, out_w = self.i(1, 4), self.i(1, 4)
        return I.Conv(0, (), self.al(I.ABUF, 2 * in_h * in_w * c_stride), in_h, in_w, c_stride, c_off, c_len,
                      self.at(I.WBUF, k * kernel[0] * kernel[1] * c_len), self.al(I.ACC, 4 * in_bytes * out_h * out_w * k),
                      out_h, out_w, k, kernel, (self.i(1, 2), self.i(1, 2)), (self.i(1, 2), self.i(1, 2)),
                      (self.i(1, 2), self.i(1, 2)), self.i(0, 1), self.i(0, 1),
                      self.i(-128, 127) if in_bytes == 1 else 0, self.i(0, 1), 0, in_bytes)

    def _conv_params(self, k: int, mode: int) -> np.ndarray:
        p = kx.prepare_conv(self.scale(), self.rng.uniform(0.001, 0.02, k), self.scale(), 0, self.i(-10, 10),
                            Clamp(), np.int16 if mode in (2, 3) else np.int8)
        return requant_params(self.rng.integers(-500, 500, k).astype(np.int32), p, k, mode)

    def dwconv(self) -> I.DwConv:
        in_h, in_w, c, mult = self.i(1, 5), self.i(1, 5), self.i(1, 4), self.i(1, 2)
        kernel, out_h, out_w = (self.i(1, 3), self.i(1, 3)), self.i(1, 4), self.i(1, 4)
        k = c * mult
        in_bytes, out_bytes = self.i(1, 2), self.i(1, 2)       # int16 sides (16x8, QUANTIZE)
        mode = 2 if in_bytes == out_bytes == 2 and self.i(0, 1) else 0
        params = self.block(I.WBUF, self._conv_params(k, mode))
        lo, hi = (-32768, 32767) if out_bytes == 2 else (-128, 127)
        return I.DwConv(0, (), self.al(I.ABUF, in_h * in_w * c * in_bytes), in_h, in_w, c,
                        self.at(I.WBUF, kernel[0] * kernel[1] * k), params,
                        self.al(I.ABUF, out_h * out_w * k * out_bytes),
                        out_h, out_w, mult, kernel, (self.i(1, 2), self.i(1, 2)), (self.i(1, 2), self.i(1, 2)),
                        self.i(0, 1), self.i(0, 1), self.i(-128, 127) if in_bytes == 1 else 0, self.i(-10, 10),
                        lo, hi, int(I.Engine.MXU if self.i(0, 1) else I.Engine.VPU), in_bytes, out_bytes, mode)

    def requant(self) -> I.Requant:
        mode, n_pix, k = self.i(0, 3), self.i(1, 6), self.i(1, 5)
        params = self.block(I.WBUF, self._conv_params(k, mode))
        wide = mode in (2, 3)       # int64 accumulators, int16 output
        b = 2 if wide else 1
        off = self.i(0, 2)
        lo, hi = (-32768, 32767) if wide else (-128, 127)
        return I.Requant(0, (), self.al(I.ACC, 4 * b * n_pix * k), n_pix, k, params,
                         self.al(I.ABUF, b * (n_pix * k + off)), k, off, self.i(-10, 10) if mode != 2 else 0,
                         lo, hi, mode)

    def elementwise(self) -> I.Elementwise:
        if self.i(0, 2) == 0:
            return self._elementwise16()
        kind = I.Eltwise(self.i(0, len(I.Eltwise) - 1))
        rows, cols = self.i(1, 5), self.i(1, 6)
        s1, s2, so, z1, z2, zo = self.scale(), self.scale(), self.scale(), self.i(-5, 5), self.i(-5, 5), self.i(-5, 5)
        params = {I.Eltwise.ADD: lambda: kv.prepare_add(s1, z1, s2, z2, so, zo, None),
                  I.Eltwise.SUB: lambda: kv.prepare_add(s1, z1, s2, z2, so, zo, None, sub=True),
                  I.Eltwise.MUL: lambda: kv.prepare_mul(s1, z1, s2, z2, so, zo, None),
                  I.Eltwise.PRELU: lambda: kv.prepare_prelu(s1, z1, s2, z2, so, zo),
                  I.Eltwise.COMPARE: lambda: kc.prepare_comparison("greater", s1, z1, s2, z2),
                  I.Eltwise.LOGICAL: lambda: kc.LogicalParams(self.i(0, 2))}.get(kind)
        b_strides = (cols * self.i(0, 1), self.i(0, 1))
        a_space, b_space = SPACES[self.i(0, 2)], SPACES[self.i(0, 2)]
        return I.Elementwise(0, (), int(kind), a_space, self.at(a_space, rows * cols), b_space,
                             self.at(b_space, rows * cols), b_strides, self.at(I.ABUF, rows * cols), rows, cols,
                             params_to_ints(params()) if params else ())

    def _elementwise16(self) -> I.Elementwise:
        """elem 2: ADD / SUB / MUL / MAX / MIN on int16 (zero points 0)."""
        kind = (I.Eltwise.ADD, I.Eltwise.SUB, I.Eltwise.MUL, I.Eltwise.MAX, I.Eltwise.MIN)[self.i(0, 4)]
        rows, cols = self.i(1, 5), self.i(1, 6)
        s1, s2, so = self.scale(), self.scale(), self.scale()
        params = {I.Eltwise.ADD: lambda: kv.prepare_add(s1, 0, s2, 0, so, 0, None, dtype=np.int16),
                  I.Eltwise.SUB: lambda: kv.prepare_add(s1, 0, s2, 0, so, 0, None, sub=True, dtype=np.int16),
                  I.Eltwise.MUL: lambda: kv.prepare_mul(s1, 0, s2, 0, so, 0, None, dtype=np.int16)}.get(kind)
        b_strides = (cols * self.i(0, 1), self.i(0, 1))
        a_space, b_space = SPACES[self.i(0, 2)], SPACES[self.i(0, 2)]
        return I.Elementwise(0, (), int(kind), a_space, self.al(a_space, 2 * rows * cols), b_space,
                             self.al(b_space, 2 * rows * cols), b_strides, self.al(I.ABUF, 2 * rows * cols), rows,
                             cols, params_to_ints(params()) if params else (), 2)

    def lut(self) -> I.Lut:
        n = self.i(1, 300)
        return I.Lut(0, (), self.at(I.ABUF, n), n, self.at(I.WBUF, 256), self.at(I.ABUF, n))

    def pool(self) -> I.Pool:
        in_h, in_w, c = self.i(1, 6), self.i(1, 6), self.i(1, 4)
        stride, kernel = (self.i(1, 2), self.i(1, 2)), (self.i(1, min(3, in_h)), self.i(1, min(3, in_w)))
        pads = [self.i(0, min(1, kernel[i % 2] - 1)) for i in range(4)]
        out_h = max(1, (in_h + pads[0] + pads[2] - kernel[0]) // stride[0] + 1)
        out_w = max(1, (in_w + pads[1] + pads[3] - kernel[1]) // stride[1] + 1)
        eb = self.i(1, 2)
        lo, hi = (-32768, 32767) if eb == 2 else (-128, 127)
        return I.Pool(0, (), self.i(0, 1), self.al(I.ABUF, eb * in_h * in_w * c), in_h, in_w, c,
                      self.al(I.ABUF, eb * out_h * out_w * c), out_h, out_w, kernel, stride, *pads, lo, hi, eb)

    def mean(self) -> I.Mean:
        eb = self.i(1, 2)
        kind, n, c = self.i(0, 3 if eb == 1 else 2), self.i(1, 8), self.i(1, 8)
        zi, zo = (3, -2) if eb == 1 else (0, 0)
        q = {0: lambda: params_to_ints(kv.prepare_mean(self.scale(), zi, self.scale(), zo, n)),
             3: lambda: params_to_ints(kv.prepare_sum(self.scale(), 3, self.scale(), -2, n))}.get(kind, tuple)()
        return I.Mean(0, (), self.al(I.ABUF, eb * n * c), n, c, self.al(I.ABUF, eb * c), q, kind, eb)

    def argmax(self) -> I.ArgMax:
        n, c, elem = self.i(1, 8), self.i(1, 8), 4 * self.i(1, 2)
        return I.ArgMax(0, (), self.at(I.ABUF, n * c), n, c, self.at(I.ABUF, c * elem), elem, self.i(0, 1), self.i(0, 1))

    def select(self) -> I.Select:
        n = self.i(1, 200)
        return I.Select(0, (), *(self.at(I.ABUF, n) for _ in range(4)), n)

    def matmul(self) -> I.MatMul:
        m, k_len, n = self.i(1, 5), self.i(1, 9), self.i(1, 5)
        return I.MatMul(0, (), self.at(I.ABUF, m * k_len), m, k_len, self.at(I.WBUF, n * k_len), n,
                        self.at(I.ACC, 4 * m * n), self.i(-128, 127), self.i(-128, 127), self.i(0, 1))

    def softmax(self) -> I.Softmax:
        ins = self._softmax16() if self.i(0, 2) == 0 else self._softmax8()
        phase = self.i(I.SOFTMAX_WHOLE, I.SOFTMAX_OUT)
        if phase == I.SOFTMAX_WHOLE:
            return ins
        hi = 32767 if ins.kind == 2 else 127      # a row state a run could leave: a code, a positive sum
        total = np.float32(self.rng.uniform(1, 50)).view(np.int32) if ins.kind == 1 else self.i(1, 1 << 30)
        block = np.array([[self.i(-hi, hi), total] for _ in range(ins.rows)], np.int32)
        return I.Softmax(0, (), ins.src, ins.rows, ins.cols, ins.dst, ins.qparams, ins.kind, phase,
                         self.block(I.ABUF, block))

    def _softmax8(self) -> I.Softmax:
        rows, cols, kind = self.i(1, 4), self.i(1, 12), self.i(0, 1)
        prepare = kv.prepare_softmax_table if kind else kv.prepare_softmax
        q = params_to_ints(prepare(float(self.rng.uniform(0.05, 0.5)), 1.0, 1 / 256, -128))
        return I.Softmax(0, (), self.at(I.ABUF, rows * cols), rows, cols, self.at(I.ABUF, rows * cols), q, kind)

    def _softmax16(self) -> I.Softmax:
        rows, cols = self.i(1, 4), self.i(1, 12)
        q = params_to_ints(k16.prepare_softmax16(float(self.rng.uniform(1e-4, 1e-3)), 0, 1.0, k16.OUT_SCALE_16, 0))
        return I.Softmax(0, (), self.al(I.ABUF, 2 * rows * cols), rows, cols, self.al(I.ABUF, 2 * rows * cols), q, 2)

    def sigmoid16(self) -> I.Sigmoid16:
        n, tanh = self.i(1, 200), bool(self.i(0, 1))
        q = params_to_ints(k16.prepare_sigmoid16(float(self.rng.uniform(1e-4, 1e-3)), 0, k16.OUT_SCALE_16, 0, tanh))
        return I.Sigmoid16(0, (), self.al(I.ABUF, 2 * n), n, self.al(I.ABUF, 2 * n), q)

    def lut16(self) -> I.Lut16:
        n, ob = self.i(1, 200), self.i(1, 2)
        table = self.block(I.WBUF, self.rng.integers(-32768, 32768, k16.LUT16_ENTRIES).astype(np.int16))
        return I.Lut16(0, (), self.al(I.ABUF, 2 * n), n, table, self.al(I.ABUF, ob * n), ob,
                       self.i(-128, 127) if ob == 1 else 0)

    def gather(self) -> I.Gather:
        n, rows, row_bytes, id_bytes = self.i(0, 6), self.i(1, 8), self.i(1, 12), 4 * self.i(1, 2)
        ids_space, src_space, dst_space = (SPACES[(0, 1, 3)[self.i(0, 2)]] for _ in range(3))
        ids = self.block(ids_space, self.rng.integers(0, rows, n).astype(f"<i{id_bytes}"))
        return I.Gather(0, (), ids_space, ids, n, id_bytes, src_space, self.at(src_space, rows * row_bytes), rows,
                        row_bytes, dst_space, self.at(dst_space, n * row_bytes))

    def layernorm(self) -> I.LayerNorm:
        rows, n, ib, ob = self.i(1, 4), self.i(1, 40), self.i(1, 2), self.i(1, 2)
        gamma, beta = self.rng.normal(1, 0.3, n), self.rng.normal(0, 0.5, n)
        p = kt.prepare_layer_norm(self.scale() * (1e-2 if ib == 2 else 1), gamma, beta, 1e-5, self.scale(),
                                  self.i(-5, 5) if ob == 1 else 0, np.int16 if ob == 2 else np.int8)
        params = self.block(I.ABUF, param_block(p))
        return I.LayerNorm(0, (), self.al(I.ABUF, ib * rows * n), rows, n, ib, params, self.al(I.ABUF, ob * rows * n),
                           ob, p.output_zp, p.act_min, p.act_max)

    def resize(self) -> I.Resize:
        in_h, in_w, c, out_h, out_w = self.i(1, 4), self.i(1, 4), self.i(1, 3), self.i(1, 6), self.i(1, 6)
        align, eb = self.i(0, 1), self.i(1, 2)
        return I.Resize(0, (), self.i(0, 1), self.al(I.ABUF, eb * in_h * in_w * c), in_h, in_w, c,
                        self.al(I.ABUF, eb * out_h * out_w * c), out_h, out_w, align, 0 if align else self.i(0, 1),
                        eb)

    def magnitude(self) -> I.Magnitude:
        outer, c, inner = self.i(1, 3), self.i(1, 4), self.i(1, 3)
        n = outer * c * inner
        q = params_to_ints(kw.prepare_magnitude(self.scale() / 100, self.scale(), self.i(-5, 5)))
        return I.Magnitude(0, (), self.at(I.ABUF, 4 * n) // 2 * 2, outer, c, inner, self.at(I.ABUF, n), q)

    def lstmcell(self) -> I.LstmCell:
        n, c, variant = self.i(1, 3), self.i(1, 4), self.i(0, 15)
        if not variant & I.LSTM_LAYER_NORM:     # Q4.11 gates (a float model's), not with layer norm
            variant |= I.LSTM_GATE_Q4 * self.i(0, 1)
        g = I.lstm_gates(variant) * c
        stride = g + self.i(0, 3)
        mults = self.rng.integers(1 << 30, (1 << 31) - 1, (2, g))
        rows = [self.rng.integers(-5000, 5000, g), mults[0], self.rng.integers(-12, 3, g), mults[1],
                self.rng.integers(-12, 3, g)]
        if variant & I.LSTM_PEEPHOLE:       # int16 weights, multiplier, shift
            rows += [self.rng.integers(-30000, 30000, g), self.rng.integers(1 << 30, (1 << 31) - 1, g),
                     self.rng.integers(-12, 0, g)]
        if variant & I.LSTM_LAYER_NORM:     # coefficient, bias, multiplier, shift + 12, variance guard
            rows += [self.rng.integers(-30000, 30000, g), self.rng.integers(-(1 << 22), 1 << 22, g),
                     self.rng.integers(1 << 30, (1 << 31) - 1, g), self.rng.integers(-8, 4, g),
                     self.rng.integers(1, 100, g)]
        if variant & I.LSTM_GATE_CLIP:      # each gate channel's bound
            rows.append(self.rng.integers(0, 32768, g))
        block = np.stack(rows).astype(np.int32)
        q = params_to_ints(kl.LstmCellParams(self.i(-15, -9), self.i(0, 1) * self.i(1, 30000), int(mults[0, 0]),
                                             self.i(-20, -5), self.i(-10, 10)))
        return I.LstmCell(0, (), self.al(I.ACC, 4 * ((n - 1) * stride + g), 4), stride, self.al(I.ACC, 4 * n * g, 4),
                          self.block(I.WBUF, block), self.al(I.ABUF, 2 * n * c, 2), self.at(I.ABUF, n * c), n, c, q,
                          variant)

    def grucell(self) -> I.GruCell:
        n, c, mode = self.i(1, 3), self.i(1, 4), self.i(0, 3)
        read, gates = I.gru_cell_gates(mode)
        g = gates * c
        stride = read * c + self.i(0, 3)
        mults = self.rng.integers(1 << 30, (1 << 31) - 1, (2, g))
        block = np.stack([self.rng.integers(-5000, 5000, g), mults[0], self.rng.integers(-12, 3, g), mults[1],
                          self.rng.integers(-12, 3, g), self.rng.integers(-5000, 5000, g)]).astype(np.int32)
        q = params_to_ints(kg.GruCellParams(self.i(0, 1), int(mults[0, 0]), self.i(-20, -5), self.i(-10, 10)))
        rec = (1 if mode >= 2 else 2) * c
        return I.GruCell(0, (), self.al(I.ACC, 4 * ((n - 1) * stride + read * c), 4), stride,
                         self.al(I.ACC, 4 * n * rec, 4), self.al(I.ACC, 4 * n * c, 4), self.block(I.WBUF, block),
                         self.at(I.ABUF, n * c), self.at(I.ABUF, n * c), n, c, mode, q)


OPCODES = [op for op in I.OPCODES if op is not I.Host]


def machine(state: dict[int, np.ndarray]) -> Machine:
    m = Machine({s: SIZE[s] for s in (I.ABUF, I.WBUF, I.ACC)}, [state[I.REGION0].copy()])
    for s in (I.ABUF, I.WBUF, I.ACC):
        m.mem[s][...] = state[s]
    return m



def state(gen: Gen, seed: int) -> dict[int, np.ndarray]:
    """Random bytes in every space, with the instance's parameter blocks in place."""
    rng = np.random.default_rng(seed)
    s0 = {s: rng.integers(0, 256, n, dtype=np.uint8) for s, n in SIZE.items()}
    for space, addr, raw in gen.blocks:
        s0[space][addr:addr + len(raw)] = np.frombuffer(raw, np.uint8)
    return s0
