"""Train a small CNN on sklearn's 8x8 digits with numpy alone and export it as ONNX.

    conv 3x3 1->8 (pad 1), ReLU, conv 3x3 8->16 (stride 2, pad 1), ReLU, Flatten, Gemm 256->10

    python examples/digits/train.py [--out examples/digits/digits_cnn.onnx] [--epochs 60]

Input "x" [batch, 1, 8, 8] in [0, 1]; output "logits" [batch, 10]. Deterministic (seeded).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from npukit.models.datasets import digits_split  # noqa: E402

HERE = Path(__file__).resolve().parent


def im2col(x: np.ndarray, stride: int) -> np.ndarray:
    """[N, C, H, W] -> [N, OH, OW, C*9] patches of a 3x3 kernel with padding 1."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    oh, ow = (h - 1) // stride + 1, (w - 1) // stride + 1
    cols = np.empty((n, oh, ow, c, 3, 3), x.dtype)
    for i in range(3):
        for j in range(3):
            cols[..., i, j] = padded[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride].transpose(0, 2, 3, 1)
    return cols.reshape(n, oh, ow, c * 9)


def col2im(dcols: np.ndarray, shape: tuple[int, ...], stride: int) -> np.ndarray:
    """Adjoint of im2col: scatter-add patch gradients back to [N, C, H, W]."""
    n, c, h, w = shape
    _, oh, ow, _ = dcols.shape
    d6 = dcols.reshape(n, oh, ow, c, 3, 3)
    padded = np.zeros((n, c, h + 2, w + 2), dcols.dtype)
    for i in range(3):
        for j in range(3):
            padded[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += d6[..., i, j].transpose(0, 3, 1, 2)
    return padded[:, :, 1:-1, 1:-1]


@dataclass
class Params:
    w1: np.ndarray  # [8, 1, 3, 3]
    b1: np.ndarray
    w2: np.ndarray  # [16, 8, 3, 3]
    b2: np.ndarray
    w3: np.ndarray  # [10, 256]
    b3: np.ndarray

    def arrays(self) -> list[np.ndarray]:
        return [self.w1, self.b1, self.w2, self.b2, self.w3, self.b3]


def init_params(rng: np.random.Generator) -> Params:
    he = lambda *shape: rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))  # noqa: E731
    return Params(he(8, 1, 3, 3), np.zeros(8), he(16, 8, 3, 3), np.zeros(16),
                  he(10, 256) * np.sqrt(0.5), np.zeros(10))


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    cols = im2col(x, stride)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    return out.transpose(0, 3, 1, 2), cols


def loss_and_grads(p: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
    """Softmax cross-entropy and its gradients by hand-written backprop."""
    z1, cols1 = conv(x, p.w1, p.b1, 1)
    a1 = np.maximum(z1, 0)
    z2, cols2 = conv(a1, p.w2, p.b2, 2)
    a2 = np.maximum(z2, 0)
    flat = a2.reshape(len(x), -1)
    logits = flat @ p.w3.T + p.b3
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(len(y)), y] + 1e-12).mean()

    dlogits = probs
    dlogits[np.arange(len(y)), y] -= 1
    dlogits /= len(y)
    dw3, db3 = dlogits.T @ flat, dlogits.sum(0)
    dz2 = (dlogits @ p.w3).reshape(a2.shape) * (z2 > 0)
    dz2_nhwc = dz2.transpose(0, 2, 3, 1)
    dw2 = (dz2_nhwc.reshape(-1, 16).T @ cols2.reshape(-1, cols2.shape[-1])).reshape(p.w2.shape)
    db2 = dz2_nhwc.sum(axis=(0, 1, 2))
    da1 = col2im(dz2_nhwc @ p.w2.reshape(16, -1), a1.shape, 2)
    dz1_nhwc = (da1 * (z1 > 0)).transpose(0, 2, 3, 1)
    dw1 = (dz1_nhwc.reshape(-1, 8).T @ cols1.reshape(-1, cols1.shape[-1])).reshape(p.w1.shape)
    db1 = dz1_nhwc.sum(axis=(0, 1, 2))
    return float(loss), [dw1, db1, dw2, db2, dw3, db3]


def predict(p: Params, x: np.ndarray) -> np.ndarray:
    a1 = np.maximum(conv(x, p.w1, p.b1, 1)[0], 0)
    a2 = np.maximum(conv(a1, p.w2, p.b2, 2)[0], 0)
    return a2.reshape(len(x), -1) @ p.w3.T + p.b3


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> Params:
    """Adam (lr 3e-3, cosine decay), batch 32, light weight decay, +-1 pixel shifts."""
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    params = p.arrays()
    m = [np.zeros_like(a) for a in params]
    v = [np.zeros_like(a) for a in params]
    step = 0
    total_steps = epochs * -(-len(x) // 32)
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 32):
            idx = order[start : start + 32]
            batch = np.roll(x[idx], shift=tuple(rng.integers(-1, 2, 2)), axis=(2, 3)) if rng.random() < 0.5 else x[idx]
            loss, grads = loss_and_grads(p, batch.astype(np.float64), y[idx])
            step += 1
            lr = 3e-3 * 0.5 * (1 + np.cos(np.pi * step / total_steps))
            for a, g, mi, vi in zip(params, grads, m, v):
                g = g + 1e-4 * a
                mi *= 0.9
                mi += 0.1 * g
                vi *= 0.999
                vi += 0.001 * g * g
                a -= lr * (mi / (1 - 0.9**step)) / (np.sqrt(vi / (1 - 0.999**step)) + 1e-8)
        if epoch % 10 == 9:
            print(f"epoch {epoch + 1}: loss {loss:.4f}")
    return p


def export(p: Params, path: Path) -> None:
    """ONNX opset 13: Conv, Relu, Conv, Relu, Flatten, Gemm; dynamic batch."""
    inits = [numpy_helper.from_array(a.astype(np.float32), name) for a, name in
             zip(p.arrays(), ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"))]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["conv1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"]),
        helper.make_node("Conv", ["relu1", "conv2.weight", "conv2.bias"], ["conv2"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["conv2"], ["relu2"]),
        helper.make_node("Flatten", ["relu2"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="npukit-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description="train the digits CNN and export ONNX")
    parser.add_argument("--out", type=Path, default=HERE / "digits_cnn.onnx")
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args()
    split = digits_split(seed=0)
    params = train(split.x_train, split.y_train, args.epochs)
    accuracy = (predict(params, split.x_test).argmax(1) == split.y_test).mean()
    print(f"float test accuracy: {accuracy:.4f} on {len(split.y_test)} held-out images")
    export(params, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
