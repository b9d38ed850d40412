"""In-process Python models (NEST, Brian2, Arbor, a NEURON Python model …): a user file with
``build(spec_dict) -> model`` (once per worker process) and ``simulate(model, values,
sweep) -> trace | (trace, spike_times_ms)`` (once per sweep)."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.simulators.base import ModelError, SimulationTimeout, Simulator, Trace
from neuroptimus.optimization.simulators.neuron_model import working_directory
from neuroptimus.optimization.simulators.sampled import TraceError, as_trace


class ModelFileError(UserError, RuntimeError):
    """The model file's simulate raised: this individual fails, the run goes on."""


def _load_module(path: Path) -> Any:
    """The model file as a module of its own name (its folder on sys.path, so that it may
    import its siblings)."""
    name = f"neuroptimus_model_{path.stem}"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        with working_directory(path.parent):
            module_spec.loader.exec_module(module)
    except Exception as error:
        sys.modules.pop(name, None)
        raise ModelError(f"model.file {path}: cannot import it ({type(error).__name__}: "
                         f"{error})") from None  # fmt: skip
    return module


def _function(module: Any, name: str, path: Path, signature: str) -> Callable:
    function = getattr(module, name, None)
    if not callable(function):
        raise ModelError(f"model.file {path}: defines no function {name}: define {signature}")
    return function


class PythonSimulator(Simulator):
    """Builds the user's model once per process; each evaluation calls ``simulate`` once per
    sweep with the values by name. A simulate that never returns cannot be interrupted from
    Python: the deadline is checked between sweeps (the cluster's hang watchdog stops a
    worker stuck in one)."""

    def setup(self) -> None:
        spec, model = self.spec, self.spec.model
        path = spec.local_path(model.file)
        self._path = path
        module = _load_module(path)
        build = _function(module, model.build, path, f"{model.build}(spec) -> model")
        self._simulate = _function(
            module, model.simulate, path, f"{model.simulate}(model, values, sweep) -> trace"
        )
        try:
            with working_directory(path.parent):
                self._model = build(spec.model_dump(mode="json"))
        except Exception as error:
            raise ModelError(
                f"model.file {path}: {model.build} raised {type(error).__name__}: {error}"
            ) from None
        self._ready = True

    def run(self, parameters: dict[str, float], deadline: float | None = None) -> list[Trace]:
        if not self._ready:
            self.setup()
        values = {name: float(value) for name, value in parameters.items()}
        traces = []
        for sweep in range(self.spec.protocol.sweeps):
            if deadline is not None and time.monotonic() > deadline:
                raise SimulationTimeout(f"{self._path.name}: passed its time limit before "
                                        f"sweep {sweep}")  # fmt: skip
            traces.append(self._sweep(values, sweep))
        return traces

    def _sweep(self, values: dict[str, float], sweep: int) -> Trace:
        name = self.spec.model.simulate
        try:
            result = self._simulate(self._model, dict(values), sweep)
        except Exception as error:
            raise ModelFileError(
                f"{self._path.name}: {name} raised {type(error).__name__}: {error}"
            ) from None
        spikes = None
        if isinstance(result, tuple):
            if len(result) != 2:
                raise TraceError(f"{self._path.name}: {name} returned a tuple of {len(result)}: "
                                 "return trace or (trace, spike_times_ms)")  # fmt: skip
            result, spikes = result
        return as_trace(self.spec, result, spikes, f"{self._path.name}: {name}", sweep)
