"""The two file protocols of external models.

``neuroptimus`` — the original tool's, so that its users' scripts run unchanged: the program
gets ``argv + [ID]`` and finds ``params<ID>.param`` (one value per line in the problem's
parameter order, then the sweep index on the last line, no final newline); it writes the
trace file (whitespace-separated columns; the last column is the trace, the last N columns
the N sweeps of a once-per-evaluation program) and optionally a spike file (spike times in
ms, one per line).

``json`` — the program gets ``argv + ["params.json"]``: ``{"id", "parameters": {name:
value}, "values": [...], "sweep" (null once per evaluation), "sweeps", "tstop_ms", "dt_ms",
"amplitudes"}``. It writes ``trace.npz`` (``trace``: one sweep's samples, or sweeps ×
samples; optional ``spike_times_ms``, or ``spike_times_ms_<k>`` per sweep k) or a ``.csv``
(comma-separated, an optional header line, the last N columns the N sweeps).
Traces are sampled every ``protocol.dt_ms`` from t = 0.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.base import Trace
from neuroptimus.optimization.simulators.sampled import TraceError, as_trace

JSON_INPUT = "params.json"


class OutputError(TraceError):
    """Missing or malformed output of the program (this individual fails)."""


def write_inputs(
    spec: ProblemSpec, work: Path, values: dict[str, float], sweep: int | None, ident: str
) -> str:
    """Write the parameter file into ``work``; the argument appended to the command."""
    ordered = [values[p.name] for p in spec.parameters]
    if spec.model.protocol == "neuroptimus":
        lines = [str(float(v)) for v in ordered] + ([str(sweep)] if sweep is not None else [])
        (work / f"params{ident}.param").write_text("\n".join(lines))
        return ident
    stimulus = spec.protocol.stimulus
    document = {
        "id": ident,
        "parameters": {p.name: values[p.name] for p in spec.parameters},
        "values": ordered,
        "sweep": sweep,
        "sweeps": spec.protocol.sweeps,
        "tstop_ms": spec.protocol.tstop_ms,
        "dt_ms": spec.protocol.dt_ms,
        "amplitudes": stimulus.amplitudes if stimulus else None,
    }
    (work / JSON_INPUT).write_text(json.dumps(document, indent=1))
    return JSON_INPUT


def read_outputs(
    spec: ProblemSpec, work: Path, ident: str, sweep: int | None, label: str
) -> list[Trace]:
    """The traces (and spike times) one run of the program wrote into ``work``."""
    model = spec.model
    sweeps = [sweep] if sweep is not None else list(range(spec.protocol.sweeps))
    name = model.trace_file.format(id=ident, sweep=sweep or 0)
    path = work / name
    shown = f"{label}: {model.trace_file}"  # the template: the same in every message
    if not path.is_file():
        raise OutputError(f"{label}: wrote no trace file {model.trace_file} ({name})")
    spikes: list = [None] * len(sweeps)
    if path.suffix == ".npz" and model.protocol == "json":
        columns, spikes = _read_npz(path, len(sweeps), shown)
    else:
        columns = _read_columns(path, len(sweeps), shown, "," if path.suffix == ".csv" else None)
    if model.spike_file and len(sweeps) == 1 and spikes[0] is None:
        spike_path = work / model.spike_file.format(id=ident, sweep=sweep or 0)
        if spike_path.is_file():  # optional, as in the original
            spikes = [_read_spike_file(spike_path, f"{label}: {model.spike_file}")]
    return [
        as_trace(spec, column, times, shown, k)
        for k, column, times in zip(sweeps, columns, spikes, strict=True)
    ]


def _read_columns(path: Path, count: int, shown: str, delimiter: str | None) -> list[np.ndarray]:
    """The last ``count`` columns of a text table, every line a row (blank lines, lines
    starting with # and, in a CSV, one header line are skipped)."""
    rows = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in line.split(delimiter)]
        if len(fields) < count:
            raise OutputError(
                f"{shown}: line {number} has {len(fields)} column(s), {count} sweep(s) expected "
                "(the last columns are the sweeps)"
            )
        try:
            rows.append([float(f) for f in fields[-count:]])
        except ValueError:
            if delimiter == "," and not rows:
                continue  # a CSV header
            raise OutputError(
                f"{shown}: line {number}: {line.strip()[:60]!r} is not numbers: the trace "
                "file must hold numbers only"
            ) from None
    table = np.array(rows, dtype=float).reshape(-1, count)
    return [table[:, k] for k in range(count)]


def _read_spike_file(path: Path, shown: str) -> np.ndarray:
    times = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        for field in line.split():
            try:
                times.append(float(field))
            except ValueError:
                raise OutputError(
                    f"{shown}: line {number}: {field[:40]!r} is not a spike time: write one "
                    "time in ms per line"
                ) from None
    return np.array(times, dtype=float)


def _read_npz(path: Path, count: int, shown: str) -> tuple[list[np.ndarray], list]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: np.asarray(archive[key]) for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise OutputError(f"{shown}: not a .npz file numpy can read ({error})") from None
    if "trace" not in arrays:
        raise OutputError(f"{shown}: holds no array named trace (it has {sorted(arrays)})")
    trace = arrays["trace"]
    if trace.ndim == 1 and count == 1:
        trace = trace[np.newaxis]
    if trace.ndim != 2 or trace.shape[0] != count:
        raise OutputError(
            f"{shown}: trace has shape {trace.shape}, expected {count} sweep(s) × samples"
        )
    if count == 1:
        spikes = [arrays.get("spike_times_ms")]
    else:
        spikes = [arrays.get(f"spike_times_ms_{k}") for k in range(count)]
    return [trace[k] for k in range(count)], spikes
