"""Compile the digits CNN for the npu-m preset and compare float vs int8 on held-out digits.

    python examples/digits/demo.py [--model examples/digits/digits_cnn.onnx] [--arch npu-m]

Prints float (onnxruntime) and int8 (npukit simulator) top-1 accuracy on the fixed test
split of sklearn's digits, how often the two agree, and the per-layer profile.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

import npukit  # noqa: E402
from npukit.progress import bar, one_line_warnings, status  # noqa: E402
from npukit.models.datasets import digits_split  # noqa: E402

HERE = Path(__file__).resolve().parent
CALIBRATION_IMAGES = 64


def float_predictions(model: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0].argmax(axis=1)


def int8_predictions(prog, x: np.ndarray) -> np.ndarray:
    """One `run` per image (batch 1, as compiled)."""
    return np.array([int(np.argmax(next(iter(prog.run({"x": image[None]}).values()))))
                     for image in bar(x, "int8 on the simulator")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=HERE / "digits_cnn.onnx")
    parser.add_argument("--arch", default="npu-m")
    args = parser.parse_args()
    one_line_warnings()

    split = digits_split(seed=0)
    calibration = split.x_train[:CALIBRATION_IMAGES][:, None]  # [N, 1, 1, 8, 8]: N batch-1 samples
    with status(f"compiling for {args.arch}"):
        prog = npukit.compile(
            args.model, arch=args.arch, input_shapes={"x": (1, 1, 8, 8)}, calibration={"x": calibration}
        )
    float_top1 = float_predictions(args.model, split.x_test)
    int8_top1 = int8_predictions(prog, split.x_test)

    n = len(split.y_test)
    print(f"digits test split: {n} images, arch {args.arch}")
    print(f"  float top-1 (onnxruntime): {np.mean(float_top1 == split.y_test):.2%}")
    print(f"  int8 top-1 (npukit):       {np.mean(int8_top1 == split.y_test):.2%}")
    print(f"  int8 agrees with float:    {np.mean(int8_top1 == float_top1):.2%}")
    print()
    print(prog.profile())


if __name__ == "__main__":
    main()
