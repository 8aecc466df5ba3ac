"""ir.ties: groups joined where they share a member, renamed with a tensor, validated."""
from __future__ import annotations

import pytest

from npukit.ir.ties import Ties


def test_overlapping_groups_join_and_singletons_drop():
    t = Ties.of([("a", "b"), ("b", "c"), ("d", "e"), ("f",)])
    assert set(t.groups) == {frozenset("abc"), frozenset("de")}
    assert t.member_of()["c"] == frozenset("abc") and "f" not in t.member_of()


def test_renamed_follows_the_tensor():
    t = Ties.of([("a", "b"), ("c", "d")])
    assert set(t.renamed("b", "z").groups) == {frozenset("az"), frozenset("cd")}
    assert t.renamed("q", "z") is t


@pytest.mark.parametrize("groups", [(frozenset("a"),), (frozenset("ab"), frozenset("bc"))])
def test_a_lone_or_shared_member_is_refused(groups):
    with pytest.raises(ValueError):
        Ties(groups)
