"""The functional simulator: executes a Program's instructions alone, in program order.

It reads only the Program (the decoded `.npub`) and the input tensors; host segments run
through the same integer kernels a CPU beside the NPU would run. The program is decoded once:
on the first run every instruction is lowered against one Machine (semantics.lower) into a
Plan, with the operands it never changes bound as constants (constants.py), and each run
after that clears the SRAMs and runs the plan. The off-chip regions persist across runs (a
streaming model's state) until `reset`.
"""
from __future__ import annotations

from time import perf_counter
from typing import Mapping

import numpy as np

from ..errors import BinaryError, InputError
from ..isa import instructions as I
from ..isa.program import Program
from ..kernels.qexec import run_qoutputs
from ..quant.records import decode_node
from ..threads import blas_threads
from . import gemm_int8
from .batching import batched_program
from .constants import known_operands
from .plan import Action, Plan
from .segments import const_of, quant_of
from .semantics import Machine, lower


def check_feeds(inputs, feeds: Mapping[str, np.ndarray], boundary: bool = False) -> dict[str, np.ndarray]:
    """The feeds as arrays, in the program's input order; InputError naming any mismatch of
    name, shape or dtype. `boundary`: in the model's own types (an input the model declares as
    float takes float32 or float16, finite, quantised later); otherwise every input in the
    NPU's own type. An integer input takes exactly its own dtype (no silent wrap or
    truncation). O(1) per integer input, one vectorised finiteness pass per float input."""
    if not isinstance(feeds, Mapping):
        raise InputError(f"feeds must be a dict of input name -> array, not {type(feeds).__name__}")
    names = [t.name for t in inputs]
    unknown = [n for n in feeds if n not in names]
    if unknown:
        raise InputError(f"feeds[{str(unknown[0])[:60]!r}]: the model has no such input (inputs: {names})")
    out = {}
    for t in inputs:
        if t.name not in feeds:
            raise InputError(f"feeds[{t.name!r}] is missing (inputs: {names})")
        out[t.name] = _checked(t, feeds[t.name], boundary and t.is_float, boundary)
    return out


FLOATS = (np.dtype("float32"), np.dtype("float16"))     # what a float input takes


def _checked(t, value, real: bool, boundary: bool) -> np.ndarray:
    """One input's array, checked against its IoTensor `t`; `real`: it takes float values;
    `boundary`: an integer input the model declares wider (ONNX int64 ids) takes that type,
    its values within the NPU's type."""
    where = f"feeds[{t.name!r}]"
    if not isinstance(value, (np.ndarray, np.generic)):     # a list's dtype would be a guess
        raise InputError(f"{where} is a {type(value).__name__}, not a numpy array: pass an array of "
                         f"dtype {'float32' if real else t.dtype} and shape {list(t.shape)}")
    x = np.asarray(value)
    if tuple(x.shape) != t.shape:
        raise InputError(f"{where} has shape {list(x.shape)}; the model was compiled for {list(t.shape)}")
    want = np.dtype("float32" if real else (boundary and t.declared) or t.dtype)
    if want.kind == "f":
        if x.dtype not in FLOATS:
            how = ": pass x.astype(np.float32)" if x.dtype.kind in "iuf" else ""
            raise InputError(f"{where} is {x.dtype}; input {t.name!r} takes float32 or float16{how}")
        if not np.isfinite(x).all():
            raise InputError(f"{where} holds NaN or infinite values; input {t.name!r} takes finite numbers")
        return x.astype(want, copy=False)
    if x.dtype != want:
        hint = (f" (quantised: q = round(x / {t.scale:g}) + {t.zero_point})"
                if x.dtype.kind == "f" and (t.scale, t.zero_point) != (1.0, 0) else "")
        raise InputError(f"{where} is {x.dtype} but input {t.name!r} is {want}: pass an array of dtype {want}"
                         f"{hint}; no other dtype is converted")
    if want != np.dtype(t.dtype):
        held = np.iinfo(np.dtype(t.dtype))
        if x.size and (x.min() < held.min or x.max() > held.max):
            raise InputError(f"{where} holds values outside [{held.min}, {held.max}], the {t.dtype} "
                             f"the NPU holds input {t.name!r} in")
        return x.astype(t.dtype)
    return x


class Simulator:
    def __init__(self, prog: Program, sram: dict[int, int], threads: int = 1, int8_gemm: bool = True,
                 fold_constants: bool = True, plain: bool = False):
        self.prog = prog
        self.plain = plain          # every instruction on its plain definition (sim/plain.py): nothing compiled loads
        self.threads = threads      # BLAS and int8 GEMM threads during a run
        self.int8_gemm = int8_gemm  # products on the exact int8 GEMM where this CPU has one
        self.fold_constants = fold_constants    # bind operands the program never changes once (constants.py)
        self.sram = sram
        self._state = [np.frombuffer(r.image, np.uint8).copy() for r in prog.regions]
        self._spaces = {r.space: i for i, r in enumerate(prog.regions)}
        self._bound: tuple[Machine, Plan] | None = None

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        """The off-chip regions, read-only: only the program's instructions write them (what they
        never write are constants, read once when the program is bound)."""
        views = tuple(s.view() for s in self._state)
        for v in views:
            v.flags.writeable = False
        return views

    def reset(self) -> None:
        """The regions return to the program's initial images (a stateful model restarts)."""
        for state, r in zip(self._state, self.prog.regions):
            np.copyto(state, np.frombuffer(r.image, np.uint8))

    def _machine(self) -> Machine:
        n = max(self._spaces) - I.REGION0 + 1 if self._spaces else 0
        regions = [np.zeros(0, np.uint8)] * n
        for space, i in self._spaces.items():
            regions[space - I.REGION0] = self._state[i]
        gemm = gemm_int8.backend(self.threads) if self.int8_gemm and not self.plain else None
        return Machine(self.sram, regions, gemm)

    def _bind(self) -> tuple[Machine, Plan]:
        """The machine and the program bound to it, built on first use (BinaryError then)."""
        if self._bound is None:
            m = self._machine()
            fold = I.WBUF in m.mem and self.fold_constants and not self.plain
            known = known_operands(self.prog, m.mem[I.WBUF].size) if fold else {}
            steps = [lower(m, ins, lambda seg: self._host(m, seg), known.get(i), fast=not self.plain)
                     for i, ins in enumerate(self.prog.instructions)]
            program = batched_program(m, self.prog, steps, known) if m.gemm is not None else None
            self._bound = m, Plan(steps, [type(ins).__name__.upper() for ins in self.prog.instructions], program)
        return self._bound

    def run(self, feeds: Mapping[str, np.ndarray], order: list[int] | None = None) -> dict[str, np.ndarray]:
        """Integer inputs in, integer outputs out. `order` runs instructions in another
        (dependency-respecting) order, as the timing model schedules them."""
        with blas_threads(self.threads):
            return self._run(feeds, order)

    def _start(self, feeds) -> tuple[Machine, Plan]:
        """The bound machine with its SRAMs cleared and the checked inputs written."""
        arrays = check_feeds(self.prog.inputs, feeds)
        m, plan = self._bind()
        m.clear_sram()
        self._write_inputs(m, arrays)
        return m, plan

    def _run(self, feeds, order):
        m, plan = self._start(feeds)
        if order is None:
            plan.run(plan.program)
        else:
            plan.run([call for idx in order for call in plan.instructions[idx]])
        return {t.name: self._output(m, t) for t in self.prog.outputs}

    def seconds_by_kind(self, feeds: dict[str, np.ndarray]) -> dict[str, tuple[int, float]]:
        """One run in program order (a run like any other: a streaming model's state advances),
        timed per instruction kind: {kind: (count, seconds)}."""
        with blas_threads(self.threads):
            _, plan = self._start(feeds)
            out: dict[str, tuple[int, float]] = {}
            for ins, calls in zip(self.prog.instructions, plan.instructions):
                t0 = perf_counter()
                plan.run(calls)
                n, s = out.get(type(ins).__name__, (0, 0.0))
                out[type(ins).__name__] = (n + 1, s + perf_counter() - t0)
        return out

    def _write_inputs(self, m: Machine, arrays: dict[str, np.ndarray]) -> None:
        for t in self.prog.inputs:
            x = arrays[t.name]
            if t.perm:
                x = x.transpose(t.perm)
            m.view(t.space, t.addr, x.shape, np.dtype(t.dtype))[...] = x.astype(t.dtype)

    @staticmethod
    def _output(m: Machine, t) -> np.ndarray:
        if not t.perm:
            return m.view(t.space, t.addr, t.shape, np.dtype(t.dtype)).copy()
        inner = tuple(t.shape[t.perm.index(i)] for i in range(len(t.perm)))
        return np.ascontiguousarray(m.view(t.space, t.addr, inner, np.dtype(t.dtype)).transpose(t.perm))

    def _host(self, m: Machine, seg: int) -> Action:
        """A host segment bound like an instruction: its node and views decoded once."""
        if not 0 <= seg < len(self.prog.host_segments):
            raise BinaryError(f"host instruction names missing segment {seg}")
        rec = self.prog.host_segments[seg]
        blobs = self.prog.host_blobs
        try:
            node = decode_node(rec, blobs)
            sources = [self._tensor(m, r, blobs) for r in rec["inputs"]]
            qs = [quant_of(r, blobs) for r in rec["inputs"]]
            dsts = [m.view(out["space"], out["addr"], tuple(out["shape"]), np.dtype(out["dtype"]))
                    for out in rec["outputs"]]
        except BinaryError as e:
            raise BinaryError(f"host segment {seg}: {e}") from None
        except (LookupError, TypeError, ValueError, AttributeError) as e:
            raise BinaryError(f"host segment {seg}: malformed record ({type(e).__name__}: {e})") from None

        def run() -> None:
            ins = [s() for s in sources]
            try:
                ys = run_qoutputs(node, ins, qs)
            except (AttributeError, TypeError) as e:    # a crafted record: fields of the wrong kind
                raise BinaryError(f"host segment {seg}: its {node.op.value} node's attributes or parameters "
                                  f"are not what the operator takes ({type(e).__name__})") from None
            for dst, y in zip(dsts, ys):
                dst[...] = y.astype(dst.dtype)
        return run

    @staticmethod
    def _tensor(m: Machine, r: dict, blobs):
        if r.get("data") is not None:
            data = const_of(r, blobs)
            return data.copy      # a fresh array per run, as decoding gave
        v = m.view(r["space"], r["addr"], tuple(r["shape"]), np.dtype(r["dtype"]))
        return v.copy
