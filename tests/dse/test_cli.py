"""`npukit explore` and `npukit pareto` as a user runs them."""
from __future__ import annotations

import csv
import json

from dse_util import DIGITS, ROOT
from npukit.dse import Store
from npukit.testing.fixtures import run_cli
from test_pareto import brute_force

TFLITE = ROOT / "tests" / "data" / "mlperf_tiny" / "ds_cnn.tflite"   # an int8 model, its own scales

SPACE = """
[strategy]
kind = "grid"
[arch]
"mxu.rows" = [8, 16, 32]
"mxu.cols" = [8, 16]
"regions.dram.bandwidth_gbps" = [2.0, 16.0]
"regions.dram.size_mib" = [0.0001, 64]
"""


def npukit(*args):
    return run_cli(*args, timeout=300)


def test_explore_then_pareto_csv_json_and_plot(tmp_path, ds_cnn_path):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    db = tmp_path / "runs.sqlite"
    r = npukit("explore", "--model", ds_cnn_path, "--model", TFLITE, "--space", space, "--db", db,
               "--workers", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "48 candidates: 48 computed (24 failed), 0 already stored, 0 duplicates, 0 lost" in r.stdout
    r = npukit("pareto", "--db", db, "--objectives", "latency,energy,area", "--csv", tmp_path / "f.csv",
               "--json", tmp_path / "f.json", "--plot", tmp_path / "f.html")
    assert r.returncode == 0, r.stderr
    with Store(db) as s:
        ok = s.rows(status="ok")
    want = set()
    for model in ("ds_cnn.onnx", "ds_cnn.tflite"):   # one front per model
        group = [x for x in ok if x["model"] == model]
        keep = brute_force([(x["latency_ms"], x["energy_uj"], x["area_mm2"]) for x in group])
        want |= {x["key"] for x, k in zip(group, keep) if k}
    with open(tmp_path / "f.csv") as f:
        front = list(csv.DictReader(f))
    assert {row["key"] for row in front} == want and len(want) < len(ok)
    assert {"model", "latency", "energy", "area", "arch:mxu.rows"} <= set(front[0])
    assert {x["key"] for x in json.loads((tmp_path / "f.json").read_text())} == want
    html = (tmp_path / "f.html").read_text()
    assert "plotly" in html and "ds_cnn.onnx front" in html and "ds_cnn.tflite front" in html
    assert f"{len(want)} Pareto-optimal of {len(ok)} successful points" in r.stdout


def test_the_shipped_example_space_runs(tmp_path):
    r = npukit("explore", "--space", ROOT / "examples" / "space.toml", "--db", tmp_path / "ex.sqlite",
               "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    with Store(tmp_path / "ex.sqlite") as s:
        rows = s.rows()
    assert len(rows) == 40 and {x["model_path"] for x in rows} == {str(DIGITS)}
    assert sum(x["status"] == "ok" for x in rows) > 30 and all(x["check_result"].startswith("pass")
                                                             for x in rows if x["status"] == "ok")


def test_user_errors_are_one_line(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('[arch]\n"mxu.rowz" = [8]\n')
    for args, msg in [(("--space", space), "mxu.rowz"), (("--space", tmp_path / "none.toml"), "cannot read space"),
                      (("--space", ROOT / "examples" / "space.toml", "--workers", "2", "--ray", "auto"), "not both")]:
        r = npukit("explore", *args, "--db", tmp_path / "x.sqlite")
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    r = npukit("pareto", "--db", tmp_path / "missing.sqlite")
    assert r.returncode == 2 and "no results database" in r.stderr
    r = npukit("pareto", "--db", tmp_path / "x.sqlite", "--objectives", "speed")
    assert r.returncode == 2 and "unknown objective 'speed'" in r.stderr
