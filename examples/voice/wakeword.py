"""pymicro-wakeword's streaming wake-word models on the simulated NPU, on espeak-ng speech.

    python examples/voice/wakeword.py [--plot wakeword_report.png]

Each model (int8 TFLite from the pymicro-wakeword wheel, with its published cutoff and sliding
window) hears its wake phrase and four other sentences, each in four espeak-ng voices with
a little noise, streamed 30 ms window by window; the NPU keeps the model's state between
calls as the device would. Prints detection rate and false accepts, whether every
probability equals LiteRT's reference kernels, and cycles, latency and energy per call on
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
from npukit.models import wakeword as W  # noqa: E402
from npukit.models.datasets_audio import synthesize  # noqa: E402
from npukit.models.fetch import fetch  # noqa: E402
from npukit.progress import bar, one_line_warnings, status  # noqa: E402
from workloads_common import PRESETS, hardware_row, print_hardware, save_report  # noqa: E402

MODELS = ["wakeword-okay-nabu", "wakeword-hey-jarvis", "wakeword-alexa", "wakeword-hey-mycroft"]
VOICES = [("en-us", 150, 50), ("en-gb+f3", 170, 70), ("en+m3", 130, 35), ("en-gb-x-rp", 160, 60)]
OTHER = ["hello there how are you", "the weather is nice today", "please turn off the lights",
         "what time is it"]


def utterance(text: str, voice, rng: np.random.Generator) -> np.ndarray:
    speech = synthesize(text, *voice)
    audio = np.concatenate([np.zeros(8000), speech, np.zeros(8000)]) * 20000
    return (audio + rng.normal(0, 100, audio.size)).clip(-32768, 32767).astype(np.int16)


def evaluate(name: str) -> dict:
    path, cfg = fetch(name), W.config(name)
    with status(f"compiling {name} for {', '.join(PRESETS)}"):
        progs = {arch: npukit.compile(path, arch) for arch in PRESETS}
    prog = progs[PRESETS[0]]
    t, o = prog.program.inputs[0], prog.program.outputs[0]
    rng = np.random.default_rng(0)
    detections, exact = {"wake": [], "other": []}, True
    cases = [(kind, text, voice) for kind, texts in (("wake", [cfg.wake_word.lower()]), ("other", OTHER))
             for text in texts for voice in VOICES]
    for kind, text, voice in bar(cases, f"{name}: int8 vs LiteRT on espeak-ng speech"):
        x = W.windows(W.features(utterance(text, voice, rng)), t.scale, t.zero_point)
        prog.reset_state()
        npu = W.probabilities(lambda v: prog.run({t.name: v})[o.name], x, o.scale, o.zero_point, cfg.window)
        ref = W.probabilities(W.reference_stream(path), x, o.scale, o.zero_point, cfg.window)
        exact &= bool(np.array_equal(npu, ref))
        detections[kind].append(bool(npu.max() > cfg.cutoff))
    return {"wake_word": cfg.wake_word, "cutoff": cfg.cutoff, "detect": float(np.mean(detections["wake"])),
            "false_accept": float(np.mean(detections["other"])), "bit_exact": exact,
            "hardware": {arch: hardware_row(p) for arch, p in progs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG (and JSON) report")
    args = parser.parse_args()
    one_line_warnings()
    results = {name: evaluate(name) for name in MODELS}
    print(f"{'model':22s} {'wake phrase':12s} {'cutoff':>6s} {'detected':>9s} {'false acc.':>10s} {'= LiteRT ref':>12s}")
    for name, r in results.items():
        print(f"{name:22s} {r['wake_word']:12s} {r['cutoff']:6.2f} {r['detect']:9.0%} {r['false_accept']:10.0%} "
              f"{str(r['bit_exact']):>12s}")
    for name, r in results.items():
        print(f"\n{name}: per 30 ms window")
        print_hardware(r["hardware"])
    first = results[MODELS[0]]
    save_report(args.plot, "pymicro-wakeword on espeak-ng speech",
                {"detected": first["detect"], "false accept": first["false_accept"]}, first["hardware"],
                {"models": results})


if __name__ == "__main__":
    main()
