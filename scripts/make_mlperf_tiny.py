"""Build the MLPerf-Tiny topologies in Keras and convert them to fully int8 TFLite models.

    python -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    /tmp/tfvenv/bin/python scripts/make_mlperf_tiny.py tests/data/mlperf_tiny

Outside CI (tensorflow is not an npukit dependency); the resulting .tflite files are
committed. Weights are seeded random with randomised batch-norm statistics, calibrated on
seeded random inputs: the files test that npukit reproduces LiteRT's int8 arithmetic on
these topologies, not their accuracy. Topologies follow the MLPerf Tiny reference models:
ResNet-8 (CIFAR-10 32x32x3), DS-CNN (KWS 49x10 MFCC), MobileNet-v1 0.25 at 96x96 (visual
wake words), plus MobileNetV2 0.35 at 96x96.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

L = tf.keras.layers


def resnet8() -> tf.keras.Model:
    x = inp = L.Input((32, 32, 3), batch_size=1)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(x)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, stride, padding="same")(x)))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(y))
        if stride != 1:
            x = L.Conv2D(filters, 1, stride, padding="same")(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.AveragePooling2D(8)(x)
    x = L.Dense(10)(L.Flatten()(x))
    return tf.keras.Model(inp, L.Softmax()(x), name="resnet8")


def ds_cnn() -> tf.keras.Model:
    x = inp = L.Input((49, 10, 1), batch_size=1)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, (10, 4), 2, padding="same")(x)))
    for _ in range(4):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(64, 1)(x)))
    x = L.AveragePooling2D((25, 5))(x)
    x = L.Dense(12)(L.Flatten()(x))
    return tf.keras.Model(inp, L.Softmax()(x), name="ds_cnn")


def mobilenet_v1() -> tf.keras.Model:
    return _static_batch(tf.keras.applications.MobileNet((96, 96, 3), alpha=0.25, weights=None, classes=2))


def mobilenet_v2() -> tf.keras.Model:
    return _static_batch(tf.keras.applications.MobileNetV2((96, 96, 3), alpha=0.35, weights=None, classes=2))


def _static_batch(model: tf.keras.Model) -> tf.keras.Model:
    """Batch 1 fixed, so the converter folds shape computations into constants."""
    inp = L.Input(model.input_shape[1:], batch_size=1)
    return tf.keras.Model(inp, model(inp), name=model.name)


MODELS = {"resnet8": resnet8, "ds_cnn": ds_cnn, "mobilenet_v1_025_96": mobilenet_v1,
          "mobilenet_v2_035_96": mobilenet_v2}


def randomise_batch_norm(model: tf.keras.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            n = gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n),
                               rng.normal(0, 0.2, n), rng.uniform(0.5, 2.0, n)])


def normalise_logits(model: tf.keras.Model, rng: np.random.Generator) -> None:
    """Scale the classifier so random inputs give logits of order 1: random weights shrink the
    signal layer by layer, and TFLite's int8 SOFTMAX rejects a vanishing input scale."""
    inner = next((m for m in model.layers if isinstance(m, tf.keras.Model)), model)
    last = [layer for layer in inner.layers if isinstance(layer, (L.Conv2D, L.Dense))][-1]
    probe = tf.keras.Model(inner.inputs, last.output)
    x = rng.uniform(-1, 1, (8,) + tuple(inner.input_shape[1:])).astype(np.float32)
    spread = float(np.std(probe(x).numpy()))
    kernel, *rest = last.get_weights()
    last.set_weights([kernel * (2.0 / max(spread, 1e-12))] + [b * 0 for b in rest])


def convert(model: tf.keras.Model, seed: int) -> bytes:
    shape = (1,) + tuple(model.input_shape[1:])

    def representative():
        rng = np.random.default_rng(seed)
        for _ in range(32):
            yield [rng.uniform(-1, 1, shape).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for seed, (name, build) in enumerate(MODELS.items()):
        tf.keras.utils.set_random_seed(seed)
        model = build()
        randomise_batch_norm(model, np.random.default_rng(seed))
        normalise_logits(model, np.random.default_rng(seed))
        data = convert(model, seed)
        (out / f"{name}.tflite").write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/mlperf_tiny")
