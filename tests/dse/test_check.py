"""The functional check's two simulator paths and the rule that picks one: a sweep stores the
same rows whichever path its checks run on, and both agree with the integer reference."""
from __future__ import annotations

import pytest

from dse_util import stored, write_space
from npukit.dse import InlineExecutor, check, explore, load_space
from npukit.dse.check import PathRule, References

SPACE = """
[base]
arch = "npu-m"
[strategy]
kind = "grid"
[arch]
"mxu.rows" = [8, 32]
"mxu.dataflow" = ["ws", "os"]
[options]
double_buffer = [true, false]
[check]
inputs = 2
"""


@pytest.mark.parametrize("budget", [0.0, float("inf")], ids=["compiled", "plain"])
def test_a_sweep_stores_the_same_rows_on_either_path(tmp_path, ds_cnn_path, monkeypatch, budget):
    """Every point of two models, checked on one path, against the same sweep on the other path
    (budget 0: the compiled path from the first check; infinite: the plain path throughout)."""
    space = load_space(write_space(tmp_path, SPACE, ds_cnn_path))
    rows = {}
    for name, b in (("this", budget), ("other", float("inf") if budget == 0.0 else -1.0)):
        monkeypatch.setattr(check, "RULE", PathRule(b))
        explore(space, tmp_path / f"{name}.sqlite", InlineExecutor(), progress=False)
        rows[name] = stored(tmp_path / f"{name}.sqlite")
        assert check.RULE.compiled == (b < 0 or b == 0.0)
    assert rows["this"] == rows["other"] and len(rows["this"]) == 16
    assert {r["status"] for r in rows["this"].values()} == {"ok"}
    assert {r["check_result"] for r in rows["this"].values()} == {"pass (2 inputs)"}   # both equal the reference


def _refs(seconds: float) -> References:
    return References([], seconds)


def test_the_rule_runs_plain_until_its_checks_would_cost_more_than_loading_the_compiled_path():
    rule = PathRule(budget=1.0)
    assert rule.plain_next("a", _refs(0.4))     # first check of a: expected as long as its reference (0.4)
    rule.charge("a", 0.5)
    assert rule.plain_next("a", _refs(0.4))     # 0.5 spent + 0.5 (a's last check) = 1.0: within
    rule.charge("a", 0.3)
    assert rule.plain_next("b", _refs(0.2))     # 0.8 + b's reference 0.2 = 1.0
    assert not rule.plain_next("a", _refs(0.4))  # 0.8 + 0.3 > 1.0: compiled from now on
    assert not rule.plain_next("c", _refs(0.0)) and rule.compiled


def test_a_model_whose_reference_alone_exceeds_the_budget_starts_compiled():
    rule = PathRule(budget=1.0)
    assert not rule.plain_next("big", _refs(1.5))
