"""Analyze flow: metadata.json and the HTML report of a run store."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from neuroptimus.analysis.report_process import write_report_file
from neuroptimus.flows.phases import mark
from neuroptimus.storage.runs.metadata import write_metadata
from neuroptimus.storage.runs.run_store import RunStore


@task(name="write-metadata")
def metadata_task(store: str) -> str:
    return str(write_metadata(RunStore.open(store), Path(store) / "metadata.json"))


@task(name="write-report")
def report_task(store: str) -> str:
    mark("report-start")

    path = write_report_file(store, Path(store) / "report.html")
    mark("report-written")
    return str(path)


@flow(name="analyze")
def analyze_flow(store: str, report: bool = True) -> dict[str, str | None]:
    """Write ``metadata.json`` and ``report.html`` into the store folder. The report (seconds
    of rendering, in the report process when one runs) is under way while the metadata is
    written. Without ``report`` only the metadata is written (``"report"``: None)."""
    if not report:
        return {"metadata": metadata_task(store), "report": None}
    drawn = report_task.submit(store)
    return {"metadata": metadata_task(store), "report": drawn.result()}
