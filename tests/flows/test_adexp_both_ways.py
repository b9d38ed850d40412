"""UC5 both ways through the real command line: ``adexp`` (our NEST model in-process) and
``adexp-external`` (the upstream script run unchanged, once per sweep) give the original
tool's total and its twelve components on the reference vector, and the same numbers as
each other there and at a second point."""

from __future__ import annotations

import pytest

from tests.flows.test_usecase_reference_totals import _evaluate
from tests.reference_numbers import usecase

KINDS = ("adexp", "adexp-external")
# the middle of the settings' bounds (the reset offset is 0 … 30)
MIDDLE = [0.0055, 55.0, -55.0, 15.0, -25.0, 2.75, 0.0, 0.5, 2.75, 255.0]


@pytest.fixture(scope="module")
def reference() -> dict:
    return usecase("adexp")


@pytest.fixture(scope="module")
def at_reference(reference) -> dict[str, dict]:
    return {name: _evaluate(name, reference["values"]) for name in KINDS}


@pytest.mark.parametrize("name", KINDS)
def test_both_give_the_original_tools_total_and_components(name, reference, at_reference):
    got = at_reference[name]
    assert got["total"] == pytest.approx(reference["total"], rel=1e-3)
    expected = {
        f"{function} [sweep {trace['trace_index'] + 1}]": value
        for trace in reference["per_trace"]
        for function, value in trace["components_unweighted"].items()
    }
    assert set(got["components"]) == set(expected)
    for component, value in expected.items():
        assert got["components"][component] == pytest.approx(value, rel=1e-3, abs=1e-12), component


def _same(one: dict, other: dict) -> None:
    assert other["total"] == pytest.approx(one["total"], rel=1e-6)
    assert set(other["components"]) == set(one["components"])
    for component, value in one["components"].items():
        assert other["components"][component] == pytest.approx(value, rel=1e-6, abs=1e-12)


def test_in_process_and_external_agree_at_the_reference(at_reference):
    _same(*at_reference.values())


def test_in_process_and_external_agree_at_the_middle_of_the_bounds(reference, at_reference):
    inside, outside = (_evaluate(name, MIDDLE) for name in KINDS)
    _same(inside, outside)
    # a point of its own: not the reference's numbers again
    assert inside["total"] != pytest.approx(at_reference["adexp"]["total"], rel=1e-2)
