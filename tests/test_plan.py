"""What an ingest writes and deletes, for every state a killed or repeated ingest can leave behind."""

from __future__ import annotations

import pytest

from ingest.plan import StoredState, plan_ingest
from rag.types import Paper

P = Paper(paper_id="p", title="T", abstract="A" * 50)


def chunks(stamp: str, n: int, have: int | None = None) -> list[tuple[str, int]]:
    return [(f"p#{stamp}#{i}", n) for i in range(n if have is None else have)]


@pytest.mark.parametrize(
    ("stored", "write", "counts", "stale"),
    [
        ({}, True, (1, 0, 0, 0), []),  # new
        ({"p": {"s1": chunks("s1", 2)}}, False, (0, 0, 0, 1), []),  # unchanged
        ({"p": {"s0": chunks("s0", 2)}}, True, (0, 1, 0, 0), ["p#s0#0", "p#s0#1"]),  # changed abstract
        ({"p": {"s1": chunks("s1", 3, have=1)}}, True, (0, 0, 1, 0), []),  # killed mid-write
        # Killed after writing the new version, before deleting the old one.
        ({"p": {"s1": chunks("s1", 1), "s0": chunks("s0", 1)}}, False, (0, 0, 1, 0), ["p#s0#0"]),
        # Killed mid-write of a new version while the old one is still there.
        ({"p": {"s1": chunks("s1", 2, have=1), "s0": chunks("s0", 1)}}, True, (0, 0, 1, 0), ["p#s0#0"]),
    ],
)
def test_plan(stored: StoredState, write: bool, counts: tuple[int, int, int, int], stale: list[str]) -> None:
    plan = plan_ingest([P], {"p": "s1"}, stored)
    assert (plan.write == [P]) is write
    assert (plan.new, plan.updated, plan.repaired, plan.unchanged) == counts
    assert plan.stale_ids == stale


def test_papers_not_in_input_are_left_alone() -> None:
    plan = plan_ingest([P], {"p": "s1"}, {"other": {"x": [("other#x#0", 1)]}})
    assert plan.stale_ids == []
