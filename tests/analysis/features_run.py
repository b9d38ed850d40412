"""A small real features problem (UC1's Hodgkin-Huxley soma, three current steps, a features
file written here) and a short real optimization of it, for the report and explorer tests."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from neuroptimus.usecases import problem_path

AMPLITUDES = [-0.1, 0.2, 0.3]  # nA; the hyperpolarizing step never spikes
# Per feature and amplitude (mean, std). Spikecount has no statistic at -0.1 nA (left out of
# the figure); AP_amplitude has one there, which eFEL cannot compute without spikes (error 250).
STATISTICS = {
    "Spikecount": {0.2: (6.0, 1.0), 0.3: (8.0, 1.5)},
    "AP_amplitude": {-0.1: (80.0, 5.0), 0.2: (80.0, 5.0), 0.3: (78.0, 4.0)},
    "voltage_base": {-0.1: (-65.0, 1.0), 0.2: (-65.0, 1.0), 0.3: (-65.0, 1.0)},
}


def features_json() -> dict:
    return {
        "stimuli": {"delay": 200, "duration": 500, "amplitudes": AMPLITUDES},
        "features": {
            name: {f"stimAmp_{a}": {"Mean": m, "Std": s} for a, (m, s) in stats.items()}
            for name, stats in STATISTICS.items()
        },
    }


def write_features_problem(folder: Path, population: int = 4, generations: int = 2) -> Path:
    """The problem file (and its features file) in ``folder``; sweeps come from the file."""
    hh = yaml.safe_load(problem_path("hh").read_text())
    hh["model"]["hoc"] = str(problem_path("hh").parent / "model.hoc")
    hh["protocol"]["stimulus"] = {"type": "IClamp", "section": "soma", "position": 0.5}
    hh["target"] = {"features": "features.json"}
    hh["costs"] = {"features": [{"name": n, "weight": 1} for n in STATISTICS],
                   "spike_threshold_mV": 0}  # fmt: skip
    bounds = {"gnabar_hh": (0.1, 0.14), "gkbar_hh": (0.03, 0.045), "gl_hh": (2e-4, 4e-4)}
    for parameter in hh["parameters"]:  # near the true values: no spontaneous firing
        parameter["lower"], parameter["upper"] = bounds[parameter["name"]]
    hh["name"] = "hh-features"
    hh["algorithm"] = {"name": "cmaes", "population": population, "generations": generations}
    hh.pop("stopping", None)
    (folder / "features.json").write_text(json.dumps(features_json()))
    path = folder / "problem.yaml"
    path.write_text(yaml.safe_dump(hh))
    return path
