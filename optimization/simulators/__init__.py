"""Simulators: one per model kind, built once per process (see base.Simulator)."""

import os

# No GUI: NEURON otherwise prints a DISPLAY warning into every worker's (and --json's) output.
os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.base import (
    ModelError,
    SimulationTimeout,
    Simulator,
    Trace,
    VectorError,
)
from neuroptimus.optimization.simulators.external import ExternalSimulator
from neuroptimus.optimization.simulators.python_model import PythonSimulator


def create_simulator(spec: ProblemSpec) -> Simulator:
    """The simulator named by the problem's ``model.simulator``."""
    if spec.model.simulator == "neuron":
        from neuroptimus.optimization.simulators.neuron import NeuronSimulator  # noqa: PLC0415 (lazy: NEURON's simulator loads only for NEURON models)

        return NeuronSimulator(spec)
    if spec.model.simulator == "python":
        return PythonSimulator(spec)
    if spec.model.simulator == "emodel":
        from neuroptimus.optimization.simulators.emodel import EModelSimulator  # noqa: PLC0415 (lazy: NEURON's simulator loads only for e-models)

        return EModelSimulator(spec)
    if spec.model.simulator == "external":
        return ExternalSimulator(spec)
    raise ModelError(f"unknown simulator {spec.model.simulator!r}")


__all__ = [
    "ModelError",
    "SimulationTimeout",
    "Simulator",
    "Trace",
    "VectorError",
    "create_simulator",
]
