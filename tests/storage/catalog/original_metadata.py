"""A metadata.json as the original Neuroptimus tool writes it (KaliLab/neuroptimus, Core.py:
the keys and nesting of its FourthStep), filled in by hand."""

from __future__ import annotations

import copy

_ORIGINAL = {
    "opt_name": "hh_pas_CMAES_Cmaes_12_Mar_2024_10:11:12:123456",
    "seed": 1234,
    "final_fitness": 0.0125,
    "number_of_evaluations": 30,
    "created_at": "2024-03-12T10:11:12.123456Z",
    "convergence_score": -3.5,
    "models": {"model_name": "hh_pas", "model_author": "labhost"},
    "parameters": [
        {"name": "gnabar_hh", "min_boundary": 0.01, "max_boundary": 1.0, "optimum": 0.119},
        {"name": "gkbar_hh", "min_boundary": 0.001, "max_boundary": 0.1, "optimum": 0.0361},
    ],
    "error_function": [
        {"name": "MSE", "value": 0.02, "weight": 0.5, "weighted_value": 0.01},
        {"name": "Spike count", "value": 0.005, "weight": 0.5, "weighted_value": 0.0025},
    ],
    "algorithm": [
        {
            "algorithm_name": "CMAES",
            "algorithm_package": "Cmaes",
            "algorithm_parameters": [
                {"parameter_name": "size_of_population", "parameter_value": "10"},
                {"parameter_name": "number_of_generations", "parameter_value": "3"},
                {"parameter_name": "sigma", "parameter_value": "0.3"},
                {"parameter_name": "starting_points", "parameter_value": "None"},
            ],
        }
    ],
    "target_data": [
        {
            "data_type": "voltage",
            "file_name": "input_data2.dat",
            "number_of_traces": 1,
            "stim_delay": 200,
            "stim_duration": 500,
            "length_ms": 1000,
            "sampling_frequency": 40000,
            "stim_amp": [{"stimulus_amplitude": 0.3}],
        }
    ],
    "statistics": [
        {"generation": 0, "population": 10, "maximum": 9.0, "minimum": 0.5, "median": 2.0,
         "mean": 3.0, "std": 1.0},
        {"generation": 1, "population": 10, "maximum": 5.0, "minimum": 0.8, "median": 1.0,
         "mean": 2.0, "std": 1.0},
        {"generation": 2, "population": 10, "maximum": 4.0, "minimum": 0.0125, "median": 0.5,
         "mean": 1.0, "std": 1.0},
    ],
}  # fmt: skip


def original_metadata() -> dict:
    """A fresh copy (tests change it)."""
    return copy.deepcopy(_ORIGINAL)
