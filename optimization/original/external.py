"""The external-simulator part of ``import-settings``: the original's "External" settings
(use cases 5 and 7) as an ``external`` problem run through the original's file protocol.

What the original does with them: ``sim_command`` is split on blanks — the program, the model
file, options, and last the number of parameters; per evaluation it writes
``params<ID>.param`` (the values, then the trace index) and calls the program once per trace
(``input_size`` traces) with the ID appended; it reads the last column of ``trace<ID>.dat``
and, when written, ``spike<ID>.dat``. The model file and the stimulus fields are dummies; the
stimulus delay and duration still set the window of *Spike count (stim.)* (a duration of 0:
the whole trace).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neuroptimus.optimization.original.settings import _Converter

_PYTHONS = ("python", "python3")


def is_external(simulator: Any) -> bool:
    """The original's external kinds ("External", "External (Python)")."""
    return isinstance(simulator, str) and simulator.strip().lower().startswith("external")


def external_model(converter: _Converter, count: int) -> dict[str, Any]:
    """``model`` of the problem from ``sim_command``; ``count`` parameters are adjusted."""
    command = converter.get("sim_command")
    tokens = command.split() if isinstance(command, str) else []
    if len(tokens) < 3:
        raise converter.error(
            "sim_command", f"{command!r}: expected 'program model_file [options] N' (N: the "
            "number of parameters)"
        )  # fmt: skip
    program, script, *options, number = tokens
    if not number.isdigit() or int(number) != count:
        raise converter.error(
            "sim_command", f"its last word {number!r} must be the number of parameters, "
            f"{count} (adjusted_params)"
        )  # fmt: skip
    path = converter.find("sim_command (model file)", script)
    if program not in _PYTHONS and "/" in program:
        program = f"./{converter.find('sim_command (program)', program).name}"
    return {
        "simulator": "external",
        "command": [program, path.name, *options],
        "folder": converter.relative(path.parent),
        "protocol": "neuroptimus",
        "per_sweep": True,
        "trace_file": "trace{id}.dat",
        "spike_file": "spike{id}.dat",
    }


def external_parameters(converter: _Converter) -> list[dict[str, Any]]:
    """Names (the original's ``parameter0`` …) and the settings' bounds, in order."""
    parameters = [
        {"name": str(entry), **bounds} for _, entry, bounds in converter.bounded_entries()
    ]
    converter.unique_names(parameters)
    return parameters


def external_protocol_and_target(converter: _Converter) -> tuple[dict, dict]:
    """Sweeps = ``input_size`` calls per evaluation; the samples the program writes are
    compared one to one with the target's rows, as the original does: dt is the target's
    step and tstop covers as many samples as the target has."""
    sweeps = converter.get("input_size")
    if isinstance(sweeps, bool) or not isinstance(sweeps, int) or sweeps < 1:
        raise converter.error("input_size", f"expected the number of traces, got {sweeps!r}")
    rate = converter.number("input_freq")
    if rate <= 0:
        raise converter.error("input_freq", f"sampling rate {rate:g} Hz must be positive")
    step = 1000 / rate
    tstop = converter.number("run_controll_tstop")
    dt = converter.number("run_controll_dt")
    protocol: dict[str, Any] = {"tstop_ms": tstop, "dt_ms": step, "sweeps": sweeps}
    if not math.isclose(dt, step, rel_tol=1e-9):
        converter.notes.append(
            f"run_controll_dt {dt:g} ms differs from the target's step {step:g} ms: an external "
            "program gets no dt; its samples are compared with the target's one to one"
        )
    target = converter.trace_target(protocol, {"variable": "v"})
    target.pop("compare_on", None)  # dt is the target's step: nothing to up-sample
    rows = _rows(Path(converter.out_folder / target["file"]))
    if int(round(tstop / step)) + 1 not in (rows, rows + 1):
        protocol["tstop_ms"] = rows * step
        converter.notes.append(
            f"run_controll_tstop {tstop:g} ms at the target's step {step:g} ms would be "
            f"{int(round(tstop / step)) + 1} samples, the target has {rows}: tstop_ms "
            f"{rows * step:g} (an external program gets no tstop; the original compares the "
            "program's samples with the target's one to one)"
        )
    stimulus = _stimulus_window(converter, sweeps)
    if stimulus:
        protocol["stimulus"] = stimulus
    converter.comments["protocol.sweeps"] = "input_size: one program call per trace"
    converter.notes.append(
        "evaluation.timeout_s is the default 600 s: raise it for a program that runs longer "
        "(a timed-out call fails its individual)"
    )
    return protocol, target


def _rows(path: Path) -> int:
    """Samples of a target file: its non-blank lines."""
    with path.open() as handle:
        return sum(1 for line in handle if line.strip())


def _stimulus_window(converter: _Converter, sweeps: int) -> dict[str, Any] | None:
    """The stimulus fields are dummies for an external program, but their delay and duration
    are the window of *Spike count (stim.)*. A duration of 0 means the whole trace, which is
    also what a problem without a stimulus means: then none is written."""
    delay, duration = converter.get("stim_del", 0) or 0, converter.get("stim_dur", 0) or 0
    if duration == 0 and delay == 0:
        converter.comments["protocol"] = (
            "no stimulus: the program makes its own; 'Spike count (stim.)' counts the whole trace "
            "(the original's stim_dur 0)"
        )
        return None
    converter.notes.append(
        f"stim_del {delay:g} ms and stim_dur {duration:g} ms kept as protocol.stimulus: they "
        "only set the window of 'Spike count (stim.)' (an external program makes its own "
        "stimulus; the amplitudes are zeros)"
    )
    return {
        "type": "IClamp",
        "amplitudes": [0.0] * sweeps,
        "delay_ms": converter.number("stim_del"),
        "duration_ms": converter.number("stim_dur"),
    }
