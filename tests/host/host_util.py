"""Small ONNX models with operators the NPU has no lowering for, compiled and run end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import npukit


def model(nodes, inputs: dict, outputs: list[str], inits: dict | None = None, opset: int = 17) -> bytes:
    graph = helper.make_graph(
        nodes, "host",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs.items()],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8).SerializeToString()


def onnxruntime(mb: bytes, feeds: dict) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(mb, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def compile_model(tmp_path: Path, mb: bytes, inputs: dict, samples: int = 32, seed: int = 0, **kw):
    path = tmp_path / "m.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(seed)
    calib = {n: rng.standard_normal((samples, *s)).astype(np.float32) for n, s in inputs.items()}
    return npukit.compile(path, "npu-m", calibration=calib, **kw)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
