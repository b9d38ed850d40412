"""A features file as a problem's target: reading the original tool's JSON of eFEL feature
statistics per stimulus amplitude, and checking it against the problem (every feature the
costs name is in the file and known to eFEL, at an amplitude the protocol simulates). Loading
a problem completes its protocol from the file's ``stimuli``; measuring and scoring simulated
sweeps against the statistics is ``neuroptimus.optimization.scoring.features``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import efel

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.spec import ProblemSpec

PREFIX = "stimAmp_"


class FeaturesError(UserError, ValueError):
    """A features file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class FeatureStatistics:
    """A features file: its stimuli (None where absent) and, per feature, amplitude (nA) →
    (mean, std)."""

    path: str
    delay_ms: float | None
    duration_ms: float | None
    amplitudes: tuple[float, ...] | None
    statistics: dict[str, dict[float, tuple[float, float]]]


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_features(path: str | Path) -> FeatureStatistics:
    """Read and check a features file; FeaturesError names the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FeaturesError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FeaturesError(f"{path}: not a JSON file ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise FeaturesError(f"{path}: features: missing (a mapping of feature names)")
    stimuli = data.get("stimuli") or {}
    if not isinstance(stimuli, dict):
        raise FeaturesError(f"{path}: stimuli: must be a mapping (delay, duration, amplitudes)")
    for key in ("delay", "duration"):
        if key in stimuli and not (_number(stimuli[key]) and stimuli[key] >= 0):
            raise FeaturesError(f"{path}: stimuli.{key}: must be a number >= 0 (ms)")
    amplitudes = stimuli.get("amplitudes")
    if amplitudes is not None and (
        not isinstance(amplitudes, list) or not amplitudes or not all(map(_number, amplitudes))
    ):
        raise FeaturesError(f"{path}: stimuli.amplitudes: must be a list of numbers (nA)")
    statistics = {
        name: _feature_statistics(path, name, entry) for name, entry in data["features"].items()
    }
    return FeatureStatistics(
        str(path),
        stimuli.get("delay"),
        stimuli.get("duration"),
        None if amplitudes is None else tuple(float(a) for a in amplitudes),
        statistics,
    )


def _feature_statistics(path: Path, name: str, entry: object) -> dict[float, tuple[float, float]]:
    if not isinstance(entry, dict):
        raise FeaturesError(f"{path}: features.{name}: must be a mapping of stimAmp_<amp> entries")
    found = {}
    for key, statistic in entry.items():
        if not key.startswith(PREFIX):
            continue  # "weight" and anything else the original ignores
        field = f"features.{name}.{key}"
        try:
            amplitude = float(key.removeprefix(PREFIX))
        except ValueError:
            raise FeaturesError(f"{path}: {field}: not an amplitude in nA") from None
        if not isinstance(statistic, dict) or not all(
            _number(statistic.get(k)) for k in ("Mean", "Std")
        ):
            raise FeaturesError(f"{path}: {field}: needs numbers Mean and Std")
        if statistic["Std"] <= 0:
            raise FeaturesError(f"{path}: {field}.Std: must be positive, got {statistic['Std']}")
        found[amplitude] = (float(statistic["Mean"]), float(statistic["Std"]))
    return found


def features_file(spec: ProblemSpec) -> Path:
    """Local path of the problem's features file (fetched if a data:// name)."""
    return spec.local_path(spec.target.features)


def same_amplitude(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def complete_protocol(spec: ProblemSpec) -> ProblemSpec:
    """The spec with the stimulus's missing amplitudes, delay and duration taken from the
    features file's ``stimuli``, after checking the file against the problem."""
    features = read_features(features_file(spec))
    stimulus = spec.protocol.stimulus
    filled = {}
    for field, key, value in (
        ("amplitudes", "amplitudes", features.amplitudes),
        ("delay_ms", "delay", features.delay_ms),
        ("duration_ms", "duration", features.duration_ms),
    ):
        if getattr(stimulus, field) is None:
            if value is None:
                raise FeaturesError(
                    f"{features.path}: stimuli.{key}: missing (or give "
                    f"protocol.stimulus.{field} in the problem)"
                )
            filled[field] = list(value) if field == "amplitudes" else float(value)
    simulated = stimulus.amplitudes or filled.get("amplitudes")
    check_against(spec, features, [*simulated, *held_out_amplitudes(spec)])
    if not filled:
        return spec
    data = spec.model_dump()
    data["protocol"]["stimulus"].update(filled)
    return ProblemSpec.model_validate(data)


def check_against(spec: ProblemSpec, features: FeatureStatistics, amplitudes: list[float]) -> None:
    """Every feature the costs name is in the file and known to eFEL, and each of its
    statistics is at an amplitude the protocol simulates."""
    known = set(efel.get_feature_names())
    for term in spec.costs.features:
        if term.name not in features.statistics:
            raise FeaturesError(
                f"{features.path}: features.{term.name}: not in the file (named by costs.features)"
            )
        if term.name not in known:
            raise FeaturesError(f"{features.path}: features.{term.name}: eFEL has no such feature")
        for amplitude in features.statistics[term.name]:
            if not any(same_amplitude(amplitude, a) for a in amplitudes):
                raise FeaturesError(
                    f"{features.path}: features.{term.name}.{PREFIX}{amplitude:g}: the protocol "
                    f"has no sweep at {amplitude:g} nA (amplitudes {amplitudes})"
                )


def held_out_amplitudes(spec: ProblemSpec) -> list[float]:
    """The amplitudes of the problem's validation when it is scored by the same features file
    (their statistics are held out of the fit, not missing from its protocol)."""
    validation = spec.validation
    if validation is None or validation.target is None or validation.protocol is None:
        return []
    stimulus = validation.protocol.stimulus
    if validation.target.features != spec.target.features or stimulus is None:
        return []
    return list(stimulus.amplitudes or [])
