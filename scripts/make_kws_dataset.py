"""Synthesise the keyword-spotting set with espeak-ng and store its MFCC features.

    python scripts/make_kws_dataset.py [--per-class 240] [--out ~/.cache/npukit/data/kws_mfcc.npz]
        [--held-out examples/voice/kws_heldout.npz]

12 labels (silence, unknown, 10 keywords), several accents / voice variants / speeds /
pitches, coloured background noise at 5-30 dB SNR. The full set (train + test) goes to
--out; the held-out test split (voices never in training) and 64 training clips for int8
calibration go to --held-out, which is small and committed so the example and the tests
need neither espeak-ng nor the synthesis time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from npukit.models.datasets_audio import LABELS, kws_plan, render_clip, synthesize  # noqa: E402
from npukit.models.features import mfcc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION_CLIPS = 64


def features(clips) -> tuple[np.ndarray, np.ndarray]:
    cache: dict[tuple, np.ndarray] = {}
    x = np.empty((len(clips), 49, 10), np.float32)
    for i, clip in enumerate(clips):
        key = (clip.word, clip.voice, clip.speed, clip.pitch)
        if clip.word and key not in cache:
            cache[key] = synthesize(clip.word, clip.voice, clip.speed, clip.pitch)
        x[i] = mfcc(render_clip(clip, cache.get(key) if clip.word else None))
        if i % 500 == 499:
            print(f"  {i + 1}/{len(clips)}", flush=True)
    return x, np.array([c.label for c in clips], np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=240)
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache" / "npukit" / "data" / "kws_mfcc.npz")
    parser.add_argument("--held-out", type=Path, default=ROOT / "examples" / "voice" / "kws_heldout.npz")
    args = parser.parse_args()
    train, test = kws_plan(args.per_class)
    print(f"synthesising {len(train)} training and {len(test)} held-out clips, labels {LABELS}")
    x_train, y_train = features(train)
    x_test, y_test = features(test)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                        labels=np.array(LABELS))
    pick = np.random.default_rng(1).choice(len(x_train), CALIBRATION_CLIPS, replace=False)
    args.held_out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.held_out, x_test=x_test.astype(np.float16), y_test=y_test,
                        x_calib=x_train[pick].astype(np.float16), labels=np.array(LABELS))
    print(f"wrote {args.out} and {args.held_out}")


if __name__ == "__main__":
    main()
