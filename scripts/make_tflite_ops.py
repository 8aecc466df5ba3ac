"""Write the fixed, seeded single-operator int8 .tflite models used as committed test data.

    python scripts/make_tflite_ops.py [--out tests/data/tflite_ops] [--check]

The set is data-driven: `CASES` is a list of (file stem, zero-argument builder returning
(model bytes, example inputs)). To add operators, append entries (e.g. VPU ops) to CASES;
tests/quant/test_kernels_mxu.py checks every file whose operator has an npukit runner.
Output is deterministic: rerunning rewrites byte-identical files.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from npukit.testing import mxu_models as m  # noqa: E402

Builder = Callable[[], tuple]

CASES: list[tuple[str, Builder]] = [
    ("conv2d_3x3_same", lambda: m.conv2d_model(101, (8, 8), 3, 8, (3, 3))),
    ("conv2d_3x3_s2_valid_relu", lambda: m.conv2d_model(102, (9, 9), 4, 6, (3, 3), (2, 2), padding="VALID",
                                                         act="RELU")),
    ("conv2d_5x3_dilated_relu6", lambda: m.conv2d_model(103, (10, 9), 2, 4, (5, 3), dilation=(2, 1),
                                                         act="RELU6")),
    ("conv2d_1x1_per_tensor", lambda: m.conv2d_model(104, (6, 6), 8, 8, (1, 1), per_channel=False)),
    ("conv2d_grouped", lambda: m.conv2d_model(105, (7, 7), 6, 6, (3, 3), groups=3)),
    ("conv2d_batch2_s2_same", lambda: m.conv2d_model(106, (7, 8), 3, 5, (3, 3), (2, 2), batch=2)),
    ("depthwise_3x3_m1", lambda: m.depthwise_model(201, (8, 8), 6, 1, (3, 3), act="RELU6")),
    ("depthwise_3x3_m2_s2", lambda: m.depthwise_model(202, (9, 9), 3, 2, (3, 3), (2, 2))),
    ("depthwise_5x5_dilated_valid", lambda: m.depthwise_model(203, (12, 12), 4, 1, (5, 5), dilation=(2, 2),
                                                              padding="VALID")),
    ("fully_connected_per_tensor", lambda: m.fully_connected_model(301, 2, 32, 10)),
    ("fully_connected_per_channel_relu", lambda: m.fully_connected_model(302, 3, 24, 12, "RELU",
                                                                         per_channel=True)),
    ("fully_connected_no_bias", lambda: m.fully_connected_model(303, 1, 16, 4, with_bias=False)),
    ("transpose_conv_3x3_s2_same", lambda: m.transpose_conv_model(401, (4, 4), 3, 4, (3, 3), (2, 2))),
    ("transpose_conv_4x4_s2_valid", lambda: m.transpose_conv_model(402, (3, 5), 2, 3, (4, 4), (2, 2),
                                                                   padding="VALID")),
    ("transpose_conv_2x2_s2_relu", lambda: m.transpose_conv_model(403, (4, 4), 4, 2, (2, 2), (2, 2),
                                                                  act="RELU")),
]


def write_all(out: Path, check: bool = False) -> list[Path]:
    """Write (or, with check, compare) every case; returns the paths written/checked."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in CASES:
        model, _ = build()
        path = out / f"{name}.tflite"
        if check:
            if not path.exists() or path.read_bytes() != model:
                raise SystemExit(f"{path} is missing or stale; rerun scripts/make_tflite_ops.py")
        else:
            path.write_bytes(model)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "tflite_ops")
    parser.add_argument("--check", action="store_true", help="verify the files are up to date")
    args = parser.parse_args()
    paths = write_all(args.out, args.check)
    total = sum(p.stat().st_size for p in paths)
    print(f"{'checked' if args.check else 'wrote'} {len(paths)} models, {total / 1024:.1f} KiB, in {args.out}")


if __name__ == "__main__":
    main()
