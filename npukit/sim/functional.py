"""The functional simulator: executes a Program's instructions alone, in program order.

It reads only the Program (the decoded `.npub`) and the input tensors; host segments run
through the same integer kernels a CPU beside the NPU would run.
"""
from __future__ import annotations

import numpy as np

from ..errors import BinaryError, InputError
from ..isa import instructions as I
from ..isa.program import Program
from ..isa.serial import from_data
from ..quant.qexec import run_qnode
from ..threads import single_threaded
from .semantics import Machine, execute


def check_feeds(inputs, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The feeds as arrays, in the program's input order; InputError naming any mismatch."""
    names = [t.name for t in inputs]
    unknown = set(feeds) - set(names)
    if unknown:
        raise InputError(f"unknown input(s) {sorted(unknown)}; the model takes {names}")
    out = {}
    for t in inputs:
        if t.name not in feeds:
            raise InputError(f"missing input {t.name!r}; the model takes {names}")
        x = np.asarray(feeds[t.name])
        if tuple(x.shape) != t.shape:
            raise InputError(f"input {t.name!r} has shape {list(x.shape)}; the model was compiled for "
                             f"{list(t.shape)} (recompile with --input-shape {t.name}=...)")
        out[t.name] = x
    return out


class Simulator:
    def __init__(self, prog: Program, sram: dict[int, int]):
        self.prog = prog
        self.sram = sram
        self.state = [np.frombuffer(r.image, np.uint8).copy() for r in prog.regions]
        self._spaces = {r.space: i for i, r in enumerate(prog.regions)}

    def _machine(self) -> Machine:
        n = max(self._spaces) - I.REGION0 + 1 if self._spaces else 0
        regions = [np.zeros(0, np.uint8)] * n
        for space, i in self._spaces.items():
            regions[space - I.REGION0] = self.state[i]
        return Machine(self.sram, regions)

    def run(self, feeds: dict[str, np.ndarray], order: list[int] | None = None) -> dict[str, np.ndarray]:
        """Integer inputs in, integer outputs out. `order` runs instructions in another
        (dependency-respecting) order, as the timing model schedules them."""
        with single_threaded():
            return self._run(feeds, order)

    def _run(self, feeds, order):
        m = self._machine()
        arrays = check_feeds(self.prog.inputs, feeds)
        for t in self.prog.inputs:
            x = arrays[t.name]
            if t.perm:
                x = x.transpose(t.perm)
            m.view(t.space, t.addr, x.shape, np.dtype(t.dtype))[...] = x.astype(t.dtype)
        program = self.prog.instructions
        host = lambda seg: self._host(m, seg)  # noqa: E731
        for idx in (order if order is not None else range(len(program))):
            execute(m, program[idx], host)
        return {t.name: self._output(m, t) for t in self.prog.outputs}

    @staticmethod
    def _output(m: Machine, t) -> np.ndarray:
        if not t.perm:
            return m.view(t.space, t.addr, t.shape, np.dtype(t.dtype)).copy()
        inner = tuple(t.shape[t.perm.index(i)] for i in range(len(t.perm)))
        return np.ascontiguousarray(m.view(t.space, t.addr, inner, np.dtype(t.dtype)).transpose(t.perm))

    def _host(self, m: Machine, seg: int) -> None:
        if not 0 <= seg < len(self.prog.host_segments):
            raise BinaryError(f"host instruction names missing segment {seg}")
        rec = self.prog.host_segments[seg]
        blobs = self.prog.host_blobs
        node = from_data(rec["node"], blobs)
        ins, qs = [], []
        for r in rec["inputs"]:
            ins.append(self._tensor(m, r, blobs))
            qs.append(from_data(r["quant"], blobs))
        out = rec["output"]
        result = run_qnode(node, ins, qs)
        dtype = np.dtype(out["dtype"])
        m.view(out["space"], out["addr"], tuple(out["shape"]), dtype)[...] = result.astype(dtype)

    @staticmethod
    def _tensor(m: Machine, r: dict, blobs) -> np.ndarray:
        if "data" in r:
            return from_data(r["data"], blobs)
        return m.view(r["space"], r["addr"], tuple(r["shape"]), np.dtype(r["dtype"])).copy()

