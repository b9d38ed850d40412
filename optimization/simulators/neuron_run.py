"""A sweep run the way NEURON's standard run system runs it (``h.run()``), fast where the
model keeps stdrun's procedures.

``h.run()`` is ``stdinit()`` (``setdt()``, the model's ``init()``) and then
``continuerun(tstop)``, which calls ``step()`` and ``advance()`` once per time step, in hoc.
A sweep always sets ``tstop``, ``v_init``, ``dt`` and ``steps_per_ms`` in hoc and calls
``stdinit()``, so a model's own ``init()`` runs. For the steps, interpreting three hoc
procedures per step costs several times the integration of a small cell; where the model
keeps stdrun's ``run``, ``continuerun``, ``step`` and ``advance``, ``ParallelContext.psolve``
gives the same steps (bitwise) without them.

Whether the model keeps them is seen, not guessed from its files: before the model loads,
those four procedures are redefined as the installed stdrun.hoc defines them plus a call
counter; a model that redefines one replaces the counting copy. At setup one probe run
(``h.run()``, stopped after its first step) shows which copies are still called.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuroptimus.optimization.simulators.base import SimulationTimeout

_WATCHED = ("run", "continuerun", "step", "advance")
_PROBING = "neuroptimus_probing_"

# Simulated milliseconds between deadline checks: small enough to stop a hung run quickly,
# large enough that the check costs nothing.
SLICE_MS = 100.0


def _counter(name: str) -> str:
    return f"neuroptimus_calls_{name}_"


def _stdrun_definition(text: str, name: str) -> str | None:
    """``proc name() {…}`` as stdrun.hoc defines it (its closing brace opens a line)."""
    match = re.search(rf"^proc {name}\(\).*?^\}}", text, re.MULTILINE | re.DOTALL)
    return match.group(0) if match else None


def _counting(definition: str, name: str) -> str:
    """The definition with a call counter as its first statement (after ``local``), and, in
    step and advance, the probe's stop after the first step."""
    lines = definition.split("\n")
    at = 2 if lines[1].strip().startswith("local") else 1
    added = [f"{_counter(name)} += 1"]
    if name in ("step", "advance"):
        added.append(f"if ({_PROBING}) {{ stoprun = 1 }}")
    return "\n".join(lines[:at] + added + lines[at:])


def count_stdrun_calls(h: Any) -> None:
    """Load stdrun.hoc and redefine the watched procedures as counting copies of its own
    (before the model loads, so that a model's redefinition replaces them). A procedure
    whose text cannot be found keeps stdrun's definition and counts as redefined: slower
    sweeps through h.run(), never other traces."""
    h.load_file("stdrun.hoc")
    h(f"{_PROBING} = 0")
    try:
        path = Path(h.neuronhome()) / "lib" / "hoc" / "stdrun.hoc"
        text = path.read_text(encoding="latin-1")
    except OSError:
        text = ""
    for name in _WATCHED:
        h(f"{_counter(name)} = 0")
        definition = _stdrun_definition(text, name)
        if definition is not None and definition.count("\n") >= 2:
            h(_counting(definition, name))


def probe(h: Any) -> dict[str, int]:
    """Run ``h.run()`` up to its first step (the caller has set tstop, dt, v_init) and return
    how often each counting copy ran: 0 means the model redefined that procedure."""
    for name in _WATCHED:
        setattr(h, _counter(name), 0)
    setattr(h, _PROBING, 1)
    try:
        h.run()
    finally:
        setattr(h, _PROBING, 0)
        h.stoprun = 0
    return {name: int(getattr(h, _counter(name))) for name in _WATCHED}


def way_to_run(calls: dict[str, int], variable_step: bool) -> str:
    """How sweeps run, from a probe's counts (0: the model redefined that procedure):
    ``run`` (the model's own run()), ``continuerun`` (stdinit() and one continuerun(tstop):
    the model's continuerun, or CVODE, whose steps a pause at each slice would change),
    ``steps`` (continuerun in slices: the model's step() or advance()) or ``psolve``."""
    redefined = [name for name in _WATCHED if calls[name] == 0]
    if "run" in redefined:
        return "run"
    if "continuerun" in redefined or variable_step:
        return "continuerun"
    return "steps" if redefined else "psolve"


def run_sweep(
    h: Any, psolve: Callable[[float], None], tstop: float, deadline: float | None, way: str
) -> None:
    """One sweep, from ``stdinit()`` to ``tstop``, the ``way`` the model needs (or
    ``coreneuron``: psolve with CoreNEURON enabled)."""
    if way == "run":
        h.run()  # the model's own run(): it calls stdinit itself
        _check(h, deadline)
        return
    h.stdinit()
    if way == "continuerun":
        h.continuerun(tstop)
        _check(h, deadline)
        return
    if way == "coreneuron":  # in one call: CoreNEURON ends a run of slices a step early
        psolve(tstop)
        _check(h, deadline)
        return
    step = h.continuerun if way == "steps" else psolve  # continuerun calls step(), advance()
    t = 0.0
    while t < tstop:
        t = min(t + SLICE_MS, tstop)
        step(t)
        _check(h, deadline)
        if way == "steps" and h.stoprun:  # the model's step() asked to stop
            break


def _check(h: Any, deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise SimulationTimeout(f"simulation passed its time limit at t = {h.t:g} ms")
