"""Train a DS-CNN keyword spotter on the espeak-ng keyword set (torch, CPU); export ONNX.

    bash scripts/make_kws_dataset.sh            # synthesise the set (espeak-ng), ~2 min
    pip install torch                           # training only
    python examples/voice/train_kws.py [--epochs 40] [--out examples/voice/kws_dscnn.onnx]

The MLPerf Tiny DS-CNN shape: conv 64 (10x4, stride 2, 'same'), 4 x (depthwise 3x3,
pointwise 64), each with batch norm (folded into the exported weights) and ReLU, average
pool, dense 12. Input "mfcc" [batch, 1, 49, 10], standardised per coefficient with the mean
and standard deviation stored in the model's metadata (`feature_mean`, `feature_std`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from npukit.models.zoo import keras_same_pads  # noqa: E402

HERE = Path(__file__).resolve().parent
CHANNELS = 64
BLOCKS = 4


def build(num_classes: int):
    import torch.nn as nn

    pads = keras_same_pads((49, 10), (10, 4), 2)           # top, left, bottom, right
    layers = [nn.ZeroPad2d((pads[1], pads[3], pads[0], pads[2])),
              nn.Conv2d(1, CHANNELS, (10, 4), stride=2, bias=False), nn.BatchNorm2d(CHANNELS), nn.ReLU()]
    for _ in range(BLOCKS):
        layers += [nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1, groups=CHANNELS, bias=False),
                   nn.BatchNorm2d(CHANNELS), nn.ReLU(),
                   nn.Conv2d(CHANNELS, CHANNELS, 1, bias=False), nn.BatchNorm2d(CHANNELS), nn.ReLU()]
    layers += [nn.Dropout(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(CHANNELS, num_classes)]
    return nn.Sequential(*layers)


def train(x: np.ndarray, y: np.ndarray, num_classes: int, epochs: int, seed: int = 0):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    net = build(num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    per_epoch = -(-len(x) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 5e-3, total_steps=epochs * per_epoch)
    xt, yt = torch.from_numpy(x[:, None]), torch.from_numpy(y)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        net.train()
        order = torch.from_numpy(rng.permutation(len(x)))
        for i in range(per_epoch):
            idx = order[i * 64:(i + 1) * 64]
            batch = torch.roll(xt[idx], int(rng.integers(-3, 4)), dims=2)   # +-60 ms time shift
            loss = torch.nn.functional.cross_entropy(net(batch), yt[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if epoch % 5 == 4:
            print(f"epoch {epoch + 1}: loss {loss.item():.4f}", flush=True)
    return net.eval()


def predict(net, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return net(torch.from_numpy(x[:, None])).numpy()


def _fold(conv, bn) -> tuple[np.ndarray, np.ndarray]:
    scale = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().numpy()
    w = conv.weight.detach().numpy() * scale[:, None, None, None]
    b = (bn.bias.detach().numpy() - bn.running_mean.detach().numpy() * scale)
    return w.astype(np.float32), b.astype(np.float32)


def export(net, path: Path, mean: np.ndarray, std: np.ndarray, labels: list[str]) -> None:
    """ONNX opset 13 by hand, batch norm folded into the convolutions."""
    mods = list(net)
    convs = [(m, mods[i + 1]) for i, m in enumerate(mods) if type(m).__name__ == "Conv2d"]
    pads = keras_same_pads((49, 10), (10, 4), 2)
    inits, nodes, x = [], [], "mfcc"
    for i, (conv, bn) in enumerate(convs):
        w, b = _fold(conv, bn)
        inits += [numpy_helper.from_array(w, f"conv{i}.weight"), numpy_helper.from_array(b, f"conv{i}.bias")]
        kh, kw = conv.kernel_size
        attrs = dict(kernel_shape=[kh, kw], strides=list(conv.stride), group=conv.groups,
                     pads=[pads[0], pads[1], pads[2], pads[3]] if i == 0 else [kh // 2, kw // 2, kh // 2, kw // 2])
        nodes.append(helper.make_node("Conv", [x, f"conv{i}.weight", f"conv{i}.bias"], [f"conv{i}"], **attrs))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        x = f"relu{i}"
    fc = mods[-1]
    inits += [numpy_helper.from_array(fc.weight.detach().numpy(), "fc.weight"),
              numpy_helper.from_array(fc.bias.detach().numpy(), "fc.bias")]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["pool"]),
              helper.make_node("Flatten", ["pool"], ["flat"], axis=1),
              helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1)]
    graph = helper.make_graph(nodes, "kws_dscnn",
                              [helper.make_tensor_value_info("mfcc", TensorProto.FLOAT, ["batch", 1, 49, 10])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="npukit-examples")
    model.ir_version = 8
    for key, value in (("feature_mean", mean.tolist()), ("feature_std", std.tolist()), ("labels", labels)):
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description="train the DS-CNN keyword spotter and export ONNX")
    parser.add_argument("--data", type=Path, default=Path.home() / ".cache" / "npukit" / "data" / "kws_mfcc.npz")
    parser.add_argument("--out", type=Path, default=HERE / "kws_dscnn.onnx")
    parser.add_argument("--epochs", type=int, default=40)
    args = parser.parse_args()
    data = np.load(args.data)
    labels = [str(s) for s in data["labels"]]
    mean = data["x_train"].mean(axis=(0, 1))
    std = data["x_train"].std(axis=(0, 1))
    norm = lambda x: ((x - mean) / std).astype(np.float32)  # noqa: E731
    net = train(norm(data["x_train"]), data["y_train"], len(labels), args.epochs)
    accuracy = (predict(net, norm(data["x_test"])).argmax(1) == data["y_test"]).mean()
    print(f"float held-out accuracy (torch): {accuracy:.4f} on {len(data['y_test'])} clips")
    export(net, args.out, mean, std, labels)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
