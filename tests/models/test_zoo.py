"""Zoo models: valid ONNX, run in onnxruntime, published shapes, activations kept in range."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from npukit.errors import InputError
from npukit.models import zoo

# (builder, kwargs, input shape, output shape)
CASES = {
    "resnet18": (zoo.resnet18, {}, (1, 3, 224, 224), (1, 1000)),
    "mobilenet_v2": (zoo.mobilenet_v2, {}, (1, 3, 224, 224), (1, 1000)),
    "mobilenet_v2_half_160": (zoo.mobilenet_v2, {"size": 160, "width": 0.5, "num_classes": 10},
                              (1, 3, 160, 160), (1, 10)),
    "resnet8": (zoo.resnet8, {}, (1, 3, 32, 32), (1, 10)),
    "ds_cnn": (zoo.ds_cnn, {}, (1, 1, 49, 10), (1, 12)),
    "mobilenet_v1": (zoo.mobilenet_v1, {}, (1, 3, 96, 96), (1, 2)),
}


@pytest.fixture(scope="module")
def built() -> dict[str, onnx.ModelProto]:
    return {name: fn(**kwargs) for name, (fn, kwargs, _, _) in CASES.items()}


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", list(CASES))
def test_valid_and_runs(built: dict[str, onnx.ModelProto], name: str) -> None:
    model = built[name]
    _, _, in_shape, out_shape = CASES[name]
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 13
    x = np.random.default_rng(123).standard_normal(in_shape).astype(np.float32)
    (logits,) = _session(model).run(None, {zoo.INPUT_NAME: x})
    assert logits.shape == out_shape
    assert np.all(np.isfinite(logits))
    assert 0.05 < logits.std() < 20.0  # neither vanished nor exploded


def _block_outputs(model: onnx.ModelProto) -> list[str]:
    """Outputs of the ops that end a block: residual Adds and the activation after each conv."""
    return [n.output[0] for n in model.graph.node if n.op_type in ("Add", "Relu", "Clip")]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "resnet8", "ds_cnn", "mobilenet_v1"])
def test_activations_have_unit_scale(built: dict[str, onnx.ModelProto], name: str) -> None:
    """On fresh random-normal inputs (not the probe batch) every block output's std is ~1."""
    model = onnx.ModelProto()
    model.CopyFrom(built[name])
    names = _block_outputs(model)
    model.graph.output.extend(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    _, _, in_shape, _ = CASES[name]
    session = _session(model)
    rng = np.random.default_rng(7)
    runs = [session.run(names, {zoo.INPUT_NAME: rng.standard_normal(in_shape).astype(np.float32)})
            for _ in range(2)]
    stds = np.array([np.concatenate([r[i].ravel() for r in runs]).std() for i in range(len(names))])
    assert stds.min() > 0.3, dict(zip(names, stds))
    assert stds.max() < 3.5, dict(zip(names, stds))


def _trainable_parameters(model: onnx.ModelProto) -> int:
    """Weights, biases and BN scale/shift: what torchvision counts (running stats excluded)."""
    skip = ("bn_mean", "bn_var", "clip_min", "clip_max")
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if not t.name.startswith(skip))


def test_torchvision_parameter_counts(built: dict[str, onnx.ModelProto]) -> None:
    # torchvision's published counts: resnet18 11,689,512; mobilenet_v2 3,504,872.
    assert _trainable_parameters(built["resnet18"]) == 11_689_512
    assert _trainable_parameters(built["mobilenet_v2"]) == 3_504_872


def test_export_style(built: dict[str, onnx.ModelProto]) -> None:
    ops = [n.op_type for n in built["resnet18"].graph.node]
    assert ops.count("BatchNormalization") == 20 and ops.count("Conv") == 20
    clips = [n for n in built["mobilenet_v2"].graph.node if n.op_type == "Clip"]
    assert clips and all(len(n.input) == 3 for n in clips)  # min/max as inputs (opset >= 11)
    by_name = {t.name: onnx.numpy_helper.to_array(t) for t in built["mobilenet_v2"].graph.initializer}
    assert {(float(by_name[n.input[1]]), float(by_name[n.input[2]])) for n in clips} == {(0.0, 6.0)}
    assert built["mobilenet_v2"].graph.node[-1].op_type == "Gemm"


def test_keras_same_pads_hand_worked() -> None:
    # 96 -> 48 with k3 s2 needs 1 row of padding, which TensorFlow puts at the end.
    assert zoo.keras_same_pads((96, 96), (3, 3), 2) == (0, 0, 1, 1)
    # 49x10 -> 25x5 with k(10,4) s2: total 9 rows (4 top, 5 bottom), 2 columns (1, 1).
    assert zoo.keras_same_pads((49, 10), (10, 4), 2) == (4, 1, 5, 1)
    assert zoo.keras_same_pads((12, 12), (3, 3), 1) == (1, 1, 1, 1)


def test_seeded() -> None:
    a, b, c = zoo.resnet8(seed=3), zoo.resnet8(seed=3), zoo.resnet8(seed=4)
    assert a.SerializeToString() == b.SerializeToString()
    assert a.SerializeToString() != c.SerializeToString()


def test_save_roundtrip(tmp_path, built: dict[str, onnx.ModelProto]) -> None:
    path = zoo.save(built["ds_cnn"], tmp_path / "sub" / "ds_cnn.onnx")
    assert onnx.load(str(path)).SerializeToString() == built["ds_cnn"].SerializeToString()


@pytest.mark.parametrize("call", [lambda: zoo.resnet18(size=0), lambda: zoo.mobilenet_v2(width=-1.0),
                                  lambda: zoo.ds_cnn(num_classes=0)])
def test_bad_arguments(call) -> None:
    with pytest.raises(InputError):
        call()
