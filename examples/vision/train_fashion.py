"""Train a small CNN on Debian's Fashion-MNIST (torch, CPU) and export it as ONNX.

    pip install torch   # training only; npukit and the example do not need it
    python examples/vision/train_fashion.py [--epochs 3] [--out examples/vision/fashion_cnn.onnx]

    conv 3x3 1->16, ReLU, max pool 2, conv 3x3 16->32, ReLU, max pool 2,
    conv 3x3 32->64, ReLU, flatten 64x7x7, Gemm 3136->10

Input "x" [batch, 1, 28, 28] in [0, 1]; output "logits" [batch, 10]. Seeded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from npukit.models.datasets_vision import fashion_mnist  # noqa: E402

HERE = Path(__file__).resolve().parent


def build():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 10),
    )


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    net = build()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(x) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(len(x) // 128):
            idx = order[i * 128:(i + 1) * 128]
            batch = xt[idx]
            if rng.random() < 0.5:
                batch = batch.flip(3)                     # horizontal flip
            loss = torch.nn.functional.cross_entropy(net(batch), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}", flush=True)
    return net.eval()


def predict(net, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(x[i:i + 1000])).numpy() for i in range(0, len(x), 1000)])


def export(net, path: Path) -> None:
    """ONNX opset 13 built by hand from the trained weights (no exporter dependency)."""
    convs = [m for m in net if type(m).__name__ == "Conv2d"]
    fc = [m for m in net if type(m).__name__ == "Linear"][0]
    inits, nodes, x = [], [], "x"
    for i, conv in enumerate(convs):
        w, b = f"conv{i + 1}.weight", f"conv{i + 1}.bias"
        inits += [numpy_helper.from_array(conv.weight.detach().numpy(), w),
                  numpy_helper.from_array(conv.bias.detach().numpy(), b)]
        nodes.append(helper.make_node("Conv", [x, w, b], [f"conv{i + 1}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"conv{i + 1}"], [f"relu{i + 1}"]))
        x = f"relu{i + 1}"
        if i < 2:
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{i + 1}"], kernel_shape=[2, 2], strides=[2, 2]))
            x = f"pool{i + 1}"
    inits += [numpy_helper.from_array(fc.weight.detach().numpy(), "fc.weight"),
              numpy_helper.from_array(fc.bias.detach().numpy(), "fc.bias")]
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1))
    graph = helper.make_graph(nodes, "fashion_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="npukit-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description="train the Fashion-MNIST CNN and export ONNX")
    parser.add_argument("--out", type=Path, default=HERE / "fashion_cnn.onnx")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    split = fashion_mnist()
    net = train(split.x_train, split.y_train, args.epochs)
    accuracy = (predict(net, split.x_test).argmax(1) == split.y_test).mean()
    print(f"float test accuracy: {accuracy:.4f} on {len(split.y_test)} test images")
    export(net, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
