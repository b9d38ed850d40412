"""`neuroptimus benchmark bluepyopt`: its arguments, the best-score curve it compares and its
figure (fast). A real run of both sides costs minutes on 2 cores (BluePyOpt's mechanisms
compiled, then at least one generation of the L5PC cell on each side): it is a benchmark, run
by hand (docs/benchmarks.md), not here."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pytest
from typer.testing import CliRunner

from neuroptimus.flows.benchmarks.bluepyopt_figure import save_figure
from neuroptimus.flows.benchmarks.bluepyopt_l5pc import RUN_SCRIPT, best_so_far
from neuroptimus.flows.cli import app


def test_best_so_far_counts_evaluations_and_keeps_the_lowest_score():
    curve = best_so_far([np.array([5.0, 3.0]), np.array([4.0, 6.0]), np.array([1.0, 9.0])])
    assert curve == [(2, 3.0), (4, 3.0), (6, 1.0)]


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--seeds", "1,two"], "--seeds '1,two'"),
        (["--seeds", ","], "one seed or more"),
        (["--offspring", "0"], "--offspring"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_wrong_arguments_stop_before_anything_runs(arguments, named, tmp_path):
    result = CliRunner().invoke(
        app, ["benchmark", "bluepyopt", *arguments, "--csv", str(tmp_path / "b.csv")]
    )
    assert result.exit_code == 2 and named in result.output
    assert not list(tmp_path.iterdir())


def test_the_figure_is_a_png_of_both_sides(tmp_path):
    curves = [
        {"side": side, "seed": 1, "evaluations": n, "best": best}
        for side, scale in (("neuroptimus", 1.0), ("bluepyopt", 1.2))
        for n, best in ((8, 4500 * scale), (16, 4400 * scale), (24, 3900 * scale))
    ]
    hv.extension("bokeh", logo=False)  # as a report or the explorer of this process left it
    path = save_figure(curves, tmp_path / "figure.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert hv.Store.current_backend == "bokeh"  # a report drawn after it still gets bokeh


def test_bluepyopt_side_imports_nothing_of_neuroptimus():
    # its process is BluePyOpt's alone: the whole-process times compare like with like
    source = RUN_SCRIPT.read_text()
    assert "neuroptimus" not in source.split('"""', 2)[2]
