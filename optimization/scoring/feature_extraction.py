"""Make a features file from recordings: ``neuroptimus features extract``.

A recordings file (YAML, paths relative to it) lists trace files per stimulus amplitude::

    stimulus: {delay_ms: 200, duration_ms: 300}   # eFEL's stim_start, stim_end
    spike_threshold_mV: 0                          # eFEL's Threshold
    features: [Spikecount, AP_amplitude, voltage_base]
    unit: mV                                       # or V (values × 1000)
    time_column: true                              # first column: time in ms;
    # sampling_rate_hz: 20000                      # … or no time column and a rate
    efel_rule: efel5                               # as the problem that will use the file
    std_floor: 0.001                               # optional, see below
    recordings:                                    # amplitude (nA): files
      0.1: [cell1_0.1nA.dat, cell2_0.1nA.dat]
      0.2: [cell1_0.2nA.dat]

Every column of a file (after the time column) is one recording. Each recording is measured
the way a simulated sweep is scored (``neuroptimus.optimization.scoring.features``: same eFEL
call, same
reduction), and per feature and amplitude the file gets the mean and the standard deviation
(numpy's, ddof 0) over the recordings where eFEL gives a value; a feature no recording of
an amplitude has is left out there. A standard deviation below ``std_floor`` is raised to it;
a zero one (one recording, or values equal up to rounding) without a floor cannot score
anything (|mean − value| / 0), so that statistic is left out and reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import efel
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.feature_targets import PREFIX
from neuroptimus.optimization.problem.problem_file import read_yaml
from neuroptimus.optimization.scoring.features import measure, reduce_values


class ExtractionError(UserError, ValueError):
    """The recordings cannot be used; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WindowSpec(_Strict):
    delay_ms: Annotated[float, Field(ge=0)]
    duration_ms: Annotated[float, Field(gt=0)]


class RecordingsSpec(_Strict):
    """What to extract from which recordings (see the module docstring)."""

    stimulus: WindowSpec
    spike_threshold_mV: float = 0.0
    features: Annotated[list[str], Field(min_length=1)]
    unit: Literal["mV", "V"] = "mV"
    time_column: bool = True
    sampling_rate_hz: Annotated[float, Field(gt=0)] | None = None
    efel_rule: Literal["efel4", "efel5"] = "efel5"
    std_floor: Annotated[float, Field(gt=0)] | None = None
    recordings: Annotated[
        dict[float, Annotated[list[str], Field(min_length=1)]], Field(min_length=1)
    ]
    base_dir: str = "."

    @model_validator(mode="after")
    def _consistent(self) -> RecordingsSpec:
        if self.time_column == (self.sampling_rate_hz is not None):
            raise ValueError("give time_column: true or a sampling_rate_hz (not both)")
        unknown = sorted(set(self.features) - set(efel.get_feature_names()))
        if unknown:
            raise ValueError(f"features: eFEL has no feature {', '.join(unknown)}")
        return self


def load_recordings(path: str | Path) -> RecordingsSpec:
    """Read and check a recordings file (paths in it are relative to it)."""
    path = Path(path)
    data = read_yaml(path, "recordings file", ExtractionError)
    if not isinstance(data, dict):
        raise ExtractionError(f"{path}: must be a mapping of fields")
    data.setdefault("base_dir", str(path.parent.resolve()))
    try:
        return RecordingsSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        raise ExtractionError(f"{path}: {where}: {message}") from None


def read_traces(path: Path, spec: RecordingsSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """(time in ms, voltage in mV) of every recording (column) of one file."""
    try:
        table = np.loadtxt(path, ndmin=2)
    except FileNotFoundError:
        raise ExtractionError(f"{path}: trace file not found") from None
    except (OSError, ValueError) as error:
        raise ExtractionError(f"{path}: cannot read it as numbers ({error})") from None
    columns = table[:, 1:] if spec.time_column else table
    if columns.shape[1] == 0 or len(table) < 3:
        raise ExtractionError(f"{path}: no trace column (time_column: {spec.time_column})")
    if not np.isfinite(table).all():
        raise ExtractionError(f"{path}: contains NaN or infinite values")
    if spec.time_column:
        time = table[:, 0]
        if not (np.diff(time) > 0).all():
            raise ExtractionError(f"{path}: the time column (ms) must increase")
    else:
        time = np.arange(len(table)) * 1000 / spec.sampling_rate_hz
    scale = 1000.0 if spec.unit == "V" else 1.0
    return [(time, columns[:, k] * scale) for k in range(columns.shape[1])]


def extract_features(spec: RecordingsSpec) -> tuple[dict, list[str]]:
    """The features file's content (the original tool's format) and notes on what was left
    out."""
    window = (spec.stimulus.delay_ms, spec.stimulus.delay_ms + spec.stimulus.duration_ms)
    found: dict[str, dict[float, list[float]]] = {name: {} for name in spec.features}
    for amplitude, files in spec.recordings.items():
        for file in files:
            for time, voltage in read_traces(Path(spec.base_dir) / file, spec):
                values = measure(time, voltage, spec.features, window, spec.spike_threshold_mV)
                for name in spec.features:
                    value = reduce_values(name, values[name], spec.efel_rule)
                    if value is not None:
                        found[name].setdefault(amplitude, []).append(value)
    features, notes = {}, []
    for name, by_amplitude in found.items():
        entry = {"weight": "1"}  # the original reads it (and ignores it)
        for amplitude in spec.recordings:
            values = by_amplitude.get(amplitude)
            if not values:
                notes.append(f"{name} at {amplitude:g} nA: eFEL gives no value in any recording")
                continue
            mean, std = float(np.mean(values)), float(np.std(values))
            if std <= 1e-9 * abs(mean):  # equal values up to rounding (e.g. a unit conversion)
                std = 0.0
            if spec.std_floor is not None:
                std = max(std, spec.std_floor)
            if std == 0:
                notes.append(
                    f"{name} at {amplitude:g} nA: left out, std 0 over {len(values)} "
                    "recording(s) (give std_floor to keep it)"
                )
                continue
            entry[f"{PREFIX}{float(amplitude)}"] = {"Mean": mean, "Std": std}
        if len(entry) > 1:
            features[name] = entry
        else:
            notes.append(f"{name}: no statistic at any amplitude, left out of the file")
    stimuli = {
        "delay": spec.stimulus.delay_ms,
        "duration": spec.stimulus.duration_ms,
        "amplitudes": [float(a) for a in spec.recordings],
    }
    return {"stimuli": stimuli, "features": features}, notes


def write_features_file(recordings: str | Path, out: str | Path) -> list[str]:
    """Extract from a recordings file and write the features JSON; returns the notes."""
    data, notes = extract_features(load_recordings(recordings))
    Path(out).write_text(json.dumps(data, indent=2) + "\n")
    return notes
