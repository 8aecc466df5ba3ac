"""The explorer sweeps the quantisation options (equalize, bias_correction): the model is
quantised once per setting, each setting's points keep their own graph, and the default
setting's model hash is the one a sweep without them uses (stored points stay reusable)."""
from __future__ import annotations

import json

from dse_util import DIGITS, stored
from npukit.dse import InlineExecutor, explore, load_space
from npukit.dse import prepare

SPACE = f"""
[base]
arch = "npu-m"
[options]
equalize = ["never", "auto"]
bias_correction = ["never", "auto"]
timed_candidates = [1]
[[models]]
path = "{DIGITS}"
input_shapes = {{ x = [1, 1, 8, 8] }}
"""


def test_quantisation_options_are_swept_with_one_graph_per_setting(tmp_path, monkeypatch):
    calls = []
    real = prepare.quantise
    monkeypatch.setattr(prepare, "quantise", lambda spec, quant=(): calls.append(quant) or real(spec, quant))
    (tmp_path / "s.toml").write_text(SPACE)
    summary = explore(load_space(tmp_path / "s.toml"), tmp_path / "q.sqlite", InlineExecutor(), progress=False)
    assert summary.computed == 4
    assert sorted(calls) == [(), (("bias_correction", "auto"),), (("equalize", "auto"),),
                             (("equalize", "auto"), ("bias_correction", "auto"))]
    rows = list(stored(tmp_path / "q.sqlite").values())
    assert all(r["status"] == "ok" for r in rows)
    by_setting = {(json.loads(r["options_json"])["equalize"], json.loads(r["options_json"])["bias_correction"]):
                  r["model_hash"] for r in rows}
    assert len(set(by_setting.values())) == 4
    plain = prepare.prepare_model(load_space(tmp_path / "s.toml").models[0])
    assert by_setting[("never", "never")] == plain.model_hash
