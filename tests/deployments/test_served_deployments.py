"""`neuroptimus serve` for real: a Prefect server (SQLite in a temporary PREFECT_HOME), the
deployments of deployments/prefect.yaml and a process worker, all in subprocesses. A run is
triggered through Prefect's API the way the UI sends it, the UI's custom-run form is opened in
headless Chromium, and Ctrl-C stops everything. One server serves the whole module."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterParentFlowRunId,
)

from neuroptimus.flows.server.serve import WORK_POOL
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path
from tests.deployments.served import serving
from tests.hpc.hpc_runs import assert_same_run, committed, wait_until

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("prefect-home")) as served:
        yield served


def _hh(population: int, generations: int) -> dict:
    """Use case hh as the UI's form sends it: the whole problem as plain JSON."""
    spec = with_overrides(load_problem(problem_path("hh")), population=population,
                          generations=generations, seed=5)  # fmt: skip
    return spec.model_dump(mode="json")


def test_run_triggered_through_the_api_completes_with_store_and_artifacts(served, tmp_path):
    store_path = tmp_path / "hh-api.zarr"
    parameters = {
        "problem": _hh(population=6, generations=2),
        "store": str(store_path),
        "cluster": {"workers": 2},
        "usecase": None,
    }
    with served.api() as client:
        deployment = client.read_deployment_by_name("neuroptimus-run/run")
        assert deployment.work_pool_name == WORK_POOL
    flow_run = served.trigger("neuroptimus-run/run", parameters)
    assert flow_run.state.is_completed(), f"{flow_run.state}\n{served.output()[-3000:]}"

    store = RunStore.open(store_path)
    rows = store.evaluations()
    assert store.committed_evaluations == len(rows["total"]) == 12
    assert rows["generation"].tolist() == [0] * 6 + [1] * 6  # each evaluation stored once
    assert len(np.unique(rows["parameters"], axis=0)) == 12
    assert store.attrs["finished"] and store.attrs["seed"] == 5
    assert (store_path / "report.html").is_file() and (store_path / "metadata.json").is_file()

    with served.api() as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run.id])
            )
        )
        flows = sorted(client.read_flow(run.flow_id).name for run in children)
        assert flows == ["analyze", "optimize", "setup"]  # the run's three subflows
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id for run in children])
            )
        )
    by_key = {artifact.key: artifact for artifact in artifacts}
    progress, best = by_key["hh-cmaes-progress"], by_key["hh-cmaes-best"]
    assert progress.type == "progress" and float(progress.data) == 100.0
    assert best.type == "markdown"
    total = f"**{rows['total'].min():.6g}**"
    assert "| gnabar_hh |" in best.data and total in best.data and "**12** of 12" in best.data


def test_custom_run_form_draws_the_problem_and_submits_it(served):
    """The deployment's custom-run page in headless Chromium (the default V2 UI and V1): the
    problem's fields are drawn, and Submit sends a problem the flow accepts."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: the UI form cannot be checked without Chromium")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with served.api() as client:
        deployment = client.read_deployment_by_name("neuroptimus-run/run")
        # Paused: the submitted run waits instead of being picked up by the worker.
        client.update_work_pool(WORK_POOL, WorkPoolUpdate(is_paused=True))
    try:
        with sync_playwright() as browser_driver:
            browser = browser_driver.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1200})
                console = []  # what the page logged, to explain a Submit that went nowhere
                page.on("console", lambda line: console.append(f"{line.type}: {line.text}"))
                page.on("pageerror", lambda error: console.append(f"page error: {error}"))
                creates = []  # the UI's requests to create the run, and what the API answered
                page.on(
                    "response",
                    lambda answer: (
                        "create_flow_run" in answer.url
                        and creates.append(f"{answer.request.method} {answer.status}")
                    ),
                )
                for ui in ("/v2", ""):
                    page.goto(f"{served.url}{ui}/deployments/deployment/{deployment.id}/run")
                    page.get_by_text("Tstop Ms").first.wait_for(timeout=60_000)
                    text = page.inner_text("body")
                    for label in (
                        "Parameters", "Lower", "Upper", "True Value", "Stimulus", "Amplitudes",
                        "Sampling Rate Hz", "Algorithm", "Population", "Generations", "usecase",
                        "cluster_profile",
                    ):  # fmt: skip
                        assert label in text, f"{ui or '/'}: no {label!r} in the form"
                    assert "Recording (Optional)" in text and "Field (Optional)" not in text
                    # enums are drawn as choices showing the current value
                    for choice in ("cmaes", "IClamp", "MSE (excl. spikes)", "AP width"):
                        assert choice in text, f"{ui or '/'}: choice {choice!r} not shown"
                    values = page.locator("input, textarea").evaluate_all(
                        "fields => fields.map(field => field.value)"
                    )
                    for value in ("hh", "gnabar_hh", "soma.gkbar_hh", "0.001", "1", "40000"):
                        assert value in values, f"{ui or '/'}: no field holds {value!r}"
                with contextlib.suppress(PlaywrightTimeout):  # the form has all it fetches
                    page.wait_for_load_state("networkidle", timeout=30_000)
                page.get_by_role("button", name="Submit").click()  # the V1 form, as is
                # What Submit must do is create the flow run (through the UI's validation and
                # the API, slow on a busy machine); the page then moves on to that run.
                # The UI shows "Something went wrong" when the server answered 503 (its SQLite
                # busy with the module's other runs on a loaded machine), and a click on a
                # machine that busy can go unnoticed: as a user would, close any message and
                # submit again when nothing came of it (10 s on, twice at most).
                deadline, resubmitted, submitted_at = time.monotonic() + 120, 0, time.monotonic()
                with served.api() as client:
                    while not (submitted := _scheduled_runs(client, deployment.id)):
                        went_wrong = page.get_by_text("Something went wrong").count()
                        nothing_sent = len(creates) <= resubmitted
                        waited = time.monotonic() - submitted_at > 10
                        if resubmitted < 2 and waited and (went_wrong or nothing_sent):
                            console.append(f"resubmitted after: {page.inner_text('body')[-300:]}")
                            for close in page.get_by_role("button", name="Close").all():
                                with contextlib.suppress(PlaywrightTimeout):
                                    close.click(timeout=5_000)
                            page.get_by_role("button", name="Submit").click()
                            resubmitted, submitted_at = resubmitted + 1, time.monotonic()
                        if time.monotonic() > deadline:
                            pytest.fail(  # the short facts first: long output gets cut
                                f"Submit created no flow run; the create requests answered "
                                f"{creates or 'none was sent'}; the page logged:\n"
                                + "\n".join(console[-20:])
                                + f"\n{page.url} shows:\n{page.inner_text('body')[:1500]}"
                                + f"\nthe server printed:\n{served.output()[-2000:]}"
                            )
                        page.wait_for_timeout(500)
            finally:
                browser.close()

        assert len(submitted) == 1
        spec = ProblemSpec.model_validate(submitted[0].parameters["problem"])
        bundled = load_problem(problem_path("hh"))
        assert spec.model_dump(exclude={"base_dir"}) == bundled.model_dump(exclude={"base_dir"})
        with served.api() as client:
            for run in _scheduled_runs(client, deployment.id):
                client.delete_flow_run(run.id)
    finally:
        with served.api() as client:
            client.update_work_pool(WORK_POOL, WorkPoolUpdate(is_paused=False))


def _scheduled_runs(client, deployment_id) -> list:
    return [
        run
        for run in client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])
            )
        )
        if run.state.is_scheduled()
    ]


def _flow_run_processes(flow_run_id) -> list[psutil.Process]:
    """The processes the worker started for a flow run (found by the run id in their
    environment), with all their descendants (the run's Dask cluster)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("PREFECT__FLOW_RUN_ID") == str(flow_run_id):
                found += [process, *process.children(recursive=True)]
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


def test_killed_run_is_finished_by_a_resume_deployment_run(served, tmp_path):
    """kill -9 of a deployment's flow run process (and its Dask cluster) mid-run; a new run of
    the resume deployment finishes it with the uninterrupted run's result, bit for bit."""
    problem = _hh(population=8, generations=8)
    cluster = {"workers": 2}
    reference, killed = tmp_path / "reference.zarr", tmp_path / "killed.zarr"
    # the reference needs no report (the form's switch); the resumed run writes one
    run = {"problem": problem, "store": str(reference), "cluster": cluster, "report": False}
    assert served.trigger("neuroptimus-run/run", run).state.is_completed(), served.output()
    assert not (reference / "report.html").exists() and (reference / "metadata.json").is_file()

    flow_run = served.trigger("neuroptimus-run/run", {**run, "store": str(killed)}, 0)
    wait_until(lambda: committed(killed) >= 3, 300, "three committed generations")
    processes = _flow_run_processes(flow_run.id)
    assert processes, "no process carries the flow run's id"
    for process in processes:
        process.kill()
    psutil.wait_procs(processes, timeout=30)

    def state():
        with served.api() as client:
            return client.read_flow_run(flow_run.id).state

    crashed = wait_until(lambda: (s := state()).is_final() and s, 120, "the run's final state")
    assert crashed.is_crashed(), crashed  # the worker saw its process die
    interrupted = RunStore.open(killed)
    assert interrupted.attrs["finished"] is None
    assert 3 <= interrupted.committed_generations < 8

    # no cluster given: the resume goes back to the one the run used
    resumed = served.trigger("neuroptimus-resume/resume", {"store": str(killed)})
    assert resumed.state.is_completed(), f"{resumed.state}\n{served.output()[-3000:]}"
    assert_same_run(killed, reference)
    assert np.array_equal(
        RunStore.open(killed).arrays("best")["trace"],
        RunStore.open(reference).arrays("best")["trace"],
    )
    assert (killed / "report.html").is_file()
    assert RunStore.open(killed).attrs["cluster"]["workers"] == 2


def test_ctrl_c_stops_server_and_worker(served):
    """Last: Ctrl-C to `neuroptimus serve` stops its worker and server."""
    assert served.interrupt() == 0
    assert "stopping" in served.output()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", served.port)) != 0  # the server is gone
    leftovers = subprocess.run(
        ["pgrep", "-s", str(served.process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], f"processes of serve's session still running: {leftovers}"
