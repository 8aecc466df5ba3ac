"""The test models the `onnx` wheel ships (backend/test/data/{light, pytorch-converted,
pytorch-operator, simple}): where they are, their test inputs and expected outputs, and how an
int8 result is compared with them. Used by `benchmarks/onnx_wheel_sweep.py` and
`tests/e2e/test_onnx_wheel_models.py`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

SUITES = ("light", "pytorch-converted", "pytorch-operator", "simple")


def data_dir() -> Path:
    return Path(onnx.__file__).parent / "backend" / "test" / "data"


def cases() -> list[tuple[str, Path]]:
    """(name, model path) of every model in the wheel's test data, e.g.
    ("pytorch-converted/test_Conv2d", .../model.onnx), ("light/light_resnet50", ...)."""
    out = []
    for suite in SUITES:
        d = data_dir() / suite
        if not d.is_dir():
            continue
        if suite == "light":
            out += [(f"light/{p.stem}", p) for p in sorted(d.glob("light_*.onnx"))]
        else:
            out += [(f"{suite}/{p.name}", p / "model.onnx") for p in sorted(d.iterdir()) if (p / "model.onnx").exists()]
    return out


def model_path(name: str) -> Path:
    """The model file of a case name from `cases`."""
    suite, case = name.split("/")
    return data_dir() / suite / (f"{case}.onnx" if suite == "light" else f"{case}/model.onnx")


def _read_pb(path: Path) -> np.ndarray:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def load_case(model: Path) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """({input name: array}, [expected output arrays]) for a wheel model. A light model ships
    only its outputs: its input is the onnx backend runner's dummy data (arange / size)."""
    m = onnx.load(str(model), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    graph_inputs = [i for i in m.graph.input if i.name not in inits]
    if model.parent.name == "light":
        feeds = {}
        for i in graph_inputs:
            shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in i.type.tensor_type.shape.dim)
            n = int(np.prod(shape))
            feeds[i.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
        return feeds, [_read_pb(model.with_name(f"{model.stem}_output_{k}.pb")) for k in range(len(m.graph.output))]
    ds = model.parent / "test_data_set_0"
    ins = sorted(ds.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
    outs = sorted(ds.glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
    return {i.name: _read_pb(p) for i, p in zip(graph_inputs, ins)}, [_read_pb(p) for p in outs]


def calibration(feeds: dict[str, np.ndarray], n: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """The test input and n-1 copies perturbed by 10% of its spread (float inputs; others
    repeated), stacked along a new leading axis as `npukit.compile(calibration=)` takes them."""
    rng = np.random.default_rng(seed)
    calib = {}
    for k, x in feeds.items():
        if x.dtype.kind != "f":
            calib[k] = np.stack([x] * n)
            continue
        spread = float(x.std()) or 1.0
        calib[k] = np.stack([x] + [(x + rng.normal(0, 0.1 * spread, x.shape)).astype(x.dtype) for _ in range(n - 1)])
    return calib


def compare(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """(cosine, max |got - want| / range of want) of one output over the elements where `want`
    is finite (an int8 NPU output holds no NaN: sqrt(-1) is 0 there); the range is max |want|
    for a constant output; cosine 0 and infinity for a shape mismatch."""
    if np.shape(got) != np.shape(want):
        return 0.0, float("inf")
    finite = np.isfinite(np.asarray(want, np.float64))
    g, w = np.asarray(got, np.float64)[finite], np.asarray(want, np.float64)[finite]
    if not w.size:
        return 1.0, 0.0
    span = float(w.max() - w.min()) or max(float(np.abs(w).max()), 1e-6)
    diff = float(np.abs(g - w).max())
    ng, nw = float(np.linalg.norm(g)), float(np.linalg.norm(w))
    cos = float(g @ w / (ng * nw)) if ng and nw else float(ng == nw)
    return cos, diff / span
