"""Prefect artifacts of a run are throttled (they are API calls on the run's critical path),
and the end of the run always shows the full bar and the final table."""

from __future__ import annotations

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.tasks.artifacts import RunArtifacts
from neuroptimus.usecases import problem_path

BEST = {
    "generation": 3,
    "total": 0.5,
    "parameters": {"gnabar_hh": 0.1, "gkbar_hh": 0.03, "gl_hh": 0.0003},
    "errors": {"MSE (excl. spikes)": 0.5},
}


def _latest(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return max(found, key=lambda artifact: artifact.updated)


def test_progress_and_table_are_throttled_and_complete_at_the_end(prefect_harness):
    spec = load_problem(problem_path("hh"))
    read = []

    @flow
    def a_run() -> RunArtifacts:
        artifacts = RunArtifacts(spec, "CMA-ES", 0, every=2, interval_s=3600)
        for generation in range(1, 21):
            artifacts.generation(generation, generation * 50, lambda: read.append(1) or BEST)
        artifacts.finish(BEST, 1000, "budget used")
        return artifacts

    artifacts = a_run()
    assert len(read) == 1  # the table once in the interval (reading the best costs)
    # created, the table of generation 2, then the full bar and the final table at the end
    assert artifacts.calls == 4 and artifacts.api_seconds > 0
    assert float(_latest(f"{artifacts.key}-progress").data) == 100.0
    assert "finished (budget used)" in _latest(f"{artifacts.key}-best").data
