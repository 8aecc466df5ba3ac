"""Keyword spotting: the DS-CNN trained here on espeak-ng speech, float vs int8 on the NPU.

    python examples/voice/kws.py [--plot kws_report.png]

Held-out clips (examples/voice/kws_heldout.npz, from scripts/make_kws_dataset.py) are spoken
by voice variants the training set never heard, with background noise. MFCCs are computed on
the host (npukit.models.features), standardised with the statistics stored in the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout

import npukit  # noqa: E402
from npukit.progress import bar, one_line_warnings, status  # noqa: E402
from workloads_common import PRESETS, hardware_row, print_hardware, save_report  # noqa: E402

MODEL = HERE / "kws_dscnn.onnx"
DATA = HERE / "kws_heldout.npz"
INPUT = "mfcc"


def load(model: Path = MODEL, data: Path = DATA) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(standardised held-out features [N,1,49,10], labels, calibration features, label names)."""
    meta = {p.key: json.loads(p.value) for p in onnx.load(str(model), load_external_data=False).metadata_props}
    mean, std = np.array(meta["feature_mean"], np.float32), np.array(meta["feature_std"], np.float32)
    d = np.load(data)
    norm = lambda x: ((x.astype(np.float32) - mean) / std)[:, None]  # noqa: E731
    return norm(d["x_test"]), d["y_test"], norm(d["x_calib"]), meta["labels"]


def float_logits(model: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT: x})[0]


def compile_for(arch: str, calib: np.ndarray, model: Path = MODEL):
    with status(f"compiling DS-CNN for {arch}"):
        return npukit.compile(model, arch=arch, input_shapes={INPUT: (1, 1, 49, 10)},
                              calibration={INPUT: calib[:, None]})


def int8_logits(prog, x: np.ndarray) -> np.ndarray:
    return np.stack([prog.run({INPUT: xi[None]})["logits"][0] for xi in bar(x, "int8 on the simulator")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=Path("kws_report.png"))
    args = parser.parse_args()
    one_line_warnings()
    x, y, calib, labels = load()
    progs = {arch: compile_for(arch, calib) for arch in PRESETS}
    f = float_logits(MODEL, x).argmax(1)
    q = int8_logits(progs["npu-m"], x).argmax(1)
    acc_f, acc_q, agree = float(np.mean(f == y)), float(np.mean(q == y)), float(np.mean(f == q))
    print(f"DS-CNN keyword spotter, {len(y)} held-out clips, {len(labels)} labels ({', '.join(labels)})")
    print(f"  float top-1 (onnxruntime): {acc_f:.2%}")
    print(f"  int8 top-1 (npukit NPU):   {acc_q:.2%}  ({100 * (acc_q - acc_f):+.2f} points)")
    print(f"  int8 agrees with float:    {agree:.2%}")
    hw = {arch: hardware_row(p) for arch, p in progs.items()}
    print_hardware(hw)
    save_report(args.plot, "DS-CNN keyword spotting (espeak-ng, held-out voices)",
                {"float": acc_f, "int8": acc_q, "agree": agree}, hw)


if __name__ == "__main__":
    main()
