"""The model-based strategy (Optuna, seeded TPE) asks and tells in synchronous batches: the same
space stores the same points whatever the number of workers, and a rerun replays from the store."""
from __future__ import annotations

import json


from dse_util import stored, write_space
from npukit.dse import InlineExecutor, PoolExecutor, explore, load_space

import optuna  # noqa: E402,F401  (in the test extra)

SPACE = """
[strategy]
kind = "optuna"
seed = 5
samples = 12
batch = 4
objectives = ["latency", "area"]
[arch]
"mxu.rows" = { min = 4, max = 64, log = true }
"mxu.cols" = [4, 8, 16, 32]
"regions.dram.bandwidth_gbps" = { min = 1.0, max = 32.0 }
[options]
double_buffer = [true, false]
"""


def test_optuna_batches_do_not_depend_on_workers(tmp_path, ds_cnn_path):
    space = load_space(write_space(tmp_path, SPACE, ds_cnn_path))
    one = explore(space, tmp_path / "one.sqlite", InlineExecutor(), progress=False)
    two = explore(space, tmp_path / "two.sqlite", PoolExecutor(2), progress=False)
    rows = stored(tmp_path / "one.sqlite")
    assert one.candidates == 24 and 20 <= len(rows) <= 24   # TPE may propose a point twice
    assert rows == stored(tmp_path / "two.sqlite") and one.computed == two.computed == len(rows)
    replay = explore(space, tmp_path / "one.sqlite", InlineExecutor(), progress=False)
    assert (replay.computed, replay.reused) == (0, len(rows))
    for r in rows.values():
        assert 4 <= json.loads(r["params_json"])["arch:mxu.rows"] <= 64
