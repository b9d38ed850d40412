"""Any program as a model: run per sweep (or per evaluation) in a fresh temporary folder that
holds links to the model folder's files, talking through files (protocols in
``external_protocols``). The program's whole process group is killed at the deadline, or when
the worker running it dies (``group_leader``), so a script that spawns simulators (UC7's
run.py) leaves nothing running."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.simulators.base import ModelError, SimulationTimeout, Simulator, Trace
from neuroptimus.optimization.simulators.external_protocols import (
    JSON_INPUT,
    read_outputs,
    write_inputs,
)
from neuroptimus.optimization.simulators.group_leader import led
from neuroptimus.optimization.simulators.sampled import TraceError

_PYTHONS = ("python", "python3")
_TAIL_CHARS = 400


class ExternalModelError(UserError, RuntimeError):
    """The program failed for these values (exit code, no output): this individual fails."""


def tail(data: bytes) -> str:
    """The end of a program's output on one line (the store keeps one message per row)."""
    text = data.decode(errors="replace").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    joined = " | ".join(lines[-4:])
    return joined[-_TAIL_CHARS:]


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def child_environment(folder: Path) -> dict[str, str]:
    """The program's environment: this one, with the running interpreter's folder first on
    PATH, so that a script that starts `python3` itself (UC7's run.py spawns its simulation
    through os.system) gets the interpreter with the packages Neuroptimus runs with (NEURON,
    scipy…), not whichever python3 the shell finds first."""
    interpreter_folder = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", os.defpath)
    return {
        **os.environ,
        "PATH": os.pathsep.join([interpreter_folder, path]),
        "NEUROPTIMUS_MODEL_FOLDER": str(folder),
    }


class ExternalSimulator(Simulator):
    """Runs the problem's command once per sweep (``per_sweep``) or once per evaluation."""

    _ids = itertools.count(1)

    def setup(self) -> None:
        model = self.spec.model
        folder = model.folder or "."
        self.folder = self.spec.local_path(folder)
        if not self.folder.is_dir():
            raise ModelError(f"model.folder: {self.folder} is not a folder")
        self.argv = self._resolve_command(list(model.command))
        self.label = self._program_name()
        self._ready = True

    def _resolve_command(self, command: list[str]) -> list[str]:
        """The program found now rather than failing every evaluation: `python`/`python3`
        is this interpreter (so the program sees the same installed packages), a path is
        looked up in the model folder, a bare name on PATH."""
        first = command[0]
        if first in _PYTHONS:
            command[0] = sys.executable
            script = next((a for a in command[1:] if not a.startswith("-")), None)
            if script and script.endswith(".py") and not (self.folder / script).is_file():
                raise ModelError(
                    f"model.command: {script} is not in the model folder {self.folder}: "
                    "fix the script name or model.folder"
                )
        elif os.sep in first:
            path = self.folder / first
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise ModelError(f"model.command: {path} is not an executable file "
                                 "(check the name, or chmod +x it)")  # fmt: skip
        elif shutil.which(first) is None:
            raise ModelError(
                f"model.command: program {first!r} not found on PATH: install it, or give "
                "its path (./name for a file in the model folder)"
            )
        return command

    def _program_name(self) -> str:
        command = self.spec.model.command
        if command[0] in _PYTHONS and len(command) > 1:
            return Path(command[1]).name
        return Path(command[0]).name

    def run(self, parameters: dict[str, float], deadline: float | None = None) -> list[Trace]:
        if not self._ready:
            self.setup()
        values = {name: float(value) for name, value in parameters.items()}
        if not self.spec.model.per_sweep:
            return self._invoke(values, None, deadline)
        return [
            trace
            for sweep in range(self.spec.protocol.sweeps)
            for trace in self._invoke(values, sweep, deadline)
        ]

    def _invoke(self, values: dict[str, float], sweep: int | None, deadline) -> list[Trace]:
        # digits only, as the original's IDs (a script may use it in numbers or file names)
        ident = f"{os.getpid()}{next(self._ids):06d}"
        with tempfile.TemporaryDirectory(prefix="neuroptimus-eval-") as folder:
            work = Path(folder)
            argument = write_inputs(self.spec, work, values, sweep, ident)
            self._link_model_files(work, ident, sweep)
            output = self._execute([*self.argv, argument], work, deadline, sweep)
            try:
                return read_outputs(self.spec, work, ident, sweep, self.label)
            except TraceError as error:  # missing, malformed or of the wrong length
                raise type(error)(f"{error}; stderr: {output}") from None

    def _link_model_files(self, work: Path, ident: str, sweep: int | None) -> None:
        """Every entry of the model folder, linked (not copied: a folder may be large).
        Names the program writes or reads as this evaluation's input are left out, so a
        stale output lying in the folder is never read."""
        model = self.spec.model
        reserved = {JSON_INPUT, f"params{ident}.param"}
        for template in (model.trace_file, model.spike_file):
            if template:
                reserved.add(template.format(id=ident, sweep=sweep if sweep is not None else 0))
        for entry in os.scandir(self.folder):
            if entry.name not in reserved and not (work / entry.name).exists():
                os.symlink(entry.path, work / entry.name)

    def _execute(self, argv: list[str], work: Path, deadline, sweep: int | None) -> str:
        """Run the program to its end; the tail of its stderr (else stdout)."""
        where = self.label if sweep is None else f"{self.label} (sweep {sweep})"
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        environment = child_environment(self.folder)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                # a session of its own: the timeout kills the program and all it started,
                # and so does its leader if this worker dies first
                process = subprocess.Popen(
                    led(argv), cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True, env=environment,
                )  # fmt: skip
            except OSError as error:
                raise ExternalModelError(f"{where}: cannot start {argv[0]}: {error}") from None
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                process.wait()
                raise SimulationTimeout(
                    f"{where}: killed after {timeout:.3g} s, past the evaluation's time limit "
                    f"(evaluation.timeout_s {self.spec.evaluation.timeout_s:g}); stderr: "
                    f"{self._tail(err, out)}"
                ) from None
            finally:
                _kill_group(process)  # anything it left running, or on an interrupt
                if process.returncode is None:
                    process.wait()
            if code != 0:
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                raise ExternalModelError(f"{where}: {how}; stderr: {self._tail(err, out)}")
            return self._tail(err, out)

    @staticmethod
    def _tail(err, out) -> str:
        for stream in (err, out):
            stream.seek(0)
            text = tail(stream.read())
            if text:
                return text
        return "(nothing)"
