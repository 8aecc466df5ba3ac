"""silero-vad on the simulated NPU: speech probability on real recordings and on noise,
frame by frame against onnxruntime, with what ran where and the cost per 32 ms chunk.

    bash scripts/install_data.sh      # pocketsphinx-testdata (speech recordings)
    python examples/vad/vad.py [--model silero-vad-16k|silero-vad] [--plot vad_report.png]

Calibration uses half of the recordings (every other file); agreement is measured on the
other half and on 4 s each of white, pink and brown noise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout

import silero  # noqa: E402
from workloads_common import PRESETS, hardware_row, print_hardware, save_report  # noqa: E402

from npukit.models.datasets_audio import coloured_noise, pocketsphinx_recordings  # noqa: E402
from npukit.models.fetch import fetch  # noqa: E402
from npukit.progress import bar, one_line_warnings, status  # noqa: E402

METHOD = "percentile"


def evaluation_set(max_files: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(calibration recordings, evaluated clips: the other recordings and three noises)."""
    recs = pocketsphinx_recordings()
    names = sorted(recs)
    calib = {n: recs[n] for n in names[::2]}
    evaluate = {n: recs[n] for n in names[1::2][:max_files]}
    rng = np.random.default_rng(0)
    for colour in ("white", "pink", "brown"):
        evaluate[f"noise:{colour}"] = 0.05 * coloured_noise(4 * silero.SAMPLE_RATE, colour, rng)
    return calib, evaluate


def agreement(model_path, prog, clips: dict[str, np.ndarray]) -> tuple[dict[str, tuple[float, int]], dict]:
    """Per clip: fraction of chunks with the same speech decision, and the chunk count."""
    ref, npu = silero.onnxruntime_step(model_path), silero.npu_step(prog)
    out, curves = {}, {}
    for name, audio in bar(list(clips.items()), "int8 vs onnxruntime, clip by clip"):
        pf, _ = silero.stream(ref, audio)
        prog.reset_state()
        pq, _ = silero.stream(npu, audio)
        same = (pf > silero.THRESHOLD) == (pq > silero.THRESHOLD)
        out[name] = (float(same.mean()), len(same))
        curves[name] = (pf, pq)
    return out, curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="silero-vad-16k", choices=("silero-vad-16k", "silero-vad"))
    parser.add_argument("--plot", type=Path, default=Path("vad_report.png"))
    args = parser.parse_args()
    one_line_warnings()

    path = fetch(args.model)
    calib_clips, clips = evaluation_set()
    with status("calibration feeds from the float model"):
        calibration = silero.calibration_feeds(path, list(calib_clips.values()))
    with status(f"compiling {args.model} for {', '.join(PRESETS)}"):
        progs = {arch: silero.compile_silero(path, arch, calibration, METHOD) for arch in PRESETS}
    where = silero.placement(progs["npu-m"])
    print(f"{args.model}: 16 kHz, 32 ms chunks, calibrated on {len(calib_clips)} recordings ({METHOD})")
    print("  on the NPU: " + ", ".join(f"{op} x{k}" for op, k in sorted(where["npu"].items())))
    print("  on the host: " + ", ".join(f"{op} x{k}" for op, k in sorted(where["host"].items())))
    per_clip, curves = agreement(path, progs["npu-m"], clips)
    frames = sum(n for _, n in per_clip.values())
    total = sum(a * n for a, n in per_clip.values()) / frames
    speech = [k for k in per_clip if not k.startswith("noise:")]
    for name, (a, n) in per_clip.items():
        print(f"  {name:60s} {n:4d} chunks  decision agreement {a:6.1%}")
    print(f"speech/non-speech decision identical on {total:.2%} of {frames} chunks")
    hw = {arch: hardware_row(p) for arch, p in progs.items()}
    print_hardware(hw)
    save_report(args.plot, f"{args.model}: NPU vs onnxruntime", {"agreement": total}, hw,
                {"per_clip": per_clip, "placement": where, "speech_clips": speech})


if __name__ == "__main__":
    main()
