"""Schedules in prefect.yaml, created by the real `prefect deploy` on a test Prefect server:
the cron and interval forms docs/deployments.md shows, with their time zone, parameters and
active flag, and the shipped benchmark's nightly schedule, created inactive."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from neuroptimus.flows.server.serve import ensure_work_pool

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "deployments.md"


def _documented_schedules() -> list[dict]:
    """The `schedules:` example of docs/deployments.md (section "Schedules")."""
    text = PAGE.read_text().split("### Schedules", 1)[1]
    block = text.split("```yaml", 1)[1].split("```", 1)[0]
    return yaml.safe_load(block)["schedules"]


def test_schedules_of_prefect_yaml_are_created_by_prefect_deploy(tmp_path, prefect_harness):
    api_url = PREFECT_API_URL.value()
    ensure_work_pool(api_url)
    config = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    (run,) = [d for d in config["deployments"] if d["name"] == "run"]
    run["schedules"] = _documented_schedules()
    prefect_file = tmp_path / "prefect.yaml"
    prefect_file.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PREFECT_API_URL": api_url}
    deploy = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all",
         "--prefect-file", str(prefect_file)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    with get_client(sync_client=True) as client:
        schedules = {
            s.slug: s for s in client.read_deployment_by_name("neuroptimus-run/run").schedules
        }
        (benchmark,) = client.read_deployment_by_name("benchmark-algorithms/benchmark").schedules
    assert set(schedules) == {"weekly-vclamp", "every-12-hours"}
    weekly = schedules["weekly-vclamp"]
    assert (weekly.schedule.cron, weekly.schedule.timezone) == ("30 1 * * 1", "Europe/Ljubljana")
    assert weekly.active is True
    assert weekly.parameters == {"usecase": "vclamp", "population": 20, "generations": 30}
    interval = schedules["every-12-hours"]
    assert interval.schedule.interval == timedelta(hours=12) and interval.active is False
    assert interval.schedule.anchor_date.isoformat().startswith("2025-01-01T06:00:00")
    assert interval.parameters == {"usecase": "hh", "seed": 1}
    # the shipped example: nightly at 02:00 UTC, created inactive
    assert (benchmark.slug, benchmark.schedule.cron, benchmark.active) == (
        "nightly-benchmark", "0 2 * * *", False)  # fmt: skip
    assert benchmark.schedule.timezone == "UTC"


@pytest.mark.parametrize("schedule", _documented_schedules(), ids=lambda s: s["slug"])
def test_readme_schedules_give_valid_run_parameters(schedule):
    """What the server checks before it starts a scheduled run (enforce_parameter_schema)."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import validate

    from neuroptimus.flows.run import run_flow

    schema = parameter_schema(run_flow.fn).model_dump()
    assert validate(schedule.get("parameters", {}), schema, raise_on_error=False) == []
