"""The integer reference interpreter of a quantised graph: the oracle for the simulator."""
from __future__ import annotations

import numpy as np

from ..errors import InputError, UnsupportedOpError
from ..ir.graph import Graph
from ..kernels.qexec import run_qoutputs


def run_reference(g: Graph, feeds: dict[str, np.ndarray], keep_all: bool = False,
                  state: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Run on integer inputs (the graph's own dtypes); returns outputs (or every tensor).
    `state` (variable name -> value) carries a stateful graph's variables from run to run:
    missing entries start at their initial value and it is updated in place."""
    env: dict[str, np.ndarray] = {}
    for name in g.inputs:
        t = g.tensors[name]
        if name not in feeds:
            raise InputError(f"missing input {name!r}")
        x = np.asarray(feeds[name])
        if x.shape != t.shape or x.dtype != t.dtype.np:
            raise InputError(f"input {name!r}: expected {t.dtype.value}{list(t.shape)}, got {x.dtype}{list(x.shape)}")
        env[name] = x
    for name, t in g.tensors.items():
        if t.data is not None:
            env[name] = t.data
    state = {} if state is None else state
    for name, init in g.variables.items():
        env[name] = state.get(name, init)
    for node in g.nodes:
        q = [g.tensors[i].quant for i in node.inputs]
        try:
            outs = run_qoutputs(node, [env[i] for i in node.inputs], q)
        except UnsupportedOpError as e:
            raise e.at(node.source) from None
        for name, out in zip(node.outputs, outs):
            env[name] = out.astype(g.tensors[name].dtype.np, copy=False)
    state.update({name: env[name] for name in g.variables})
    return dict(env) if keep_all else {name: env[name] for name in g.outputs}
