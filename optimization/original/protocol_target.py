"""The protocol and target part of ``import-settings``: the original's stimulus, recording and
target fields (a trace with or without a time column, or a features file) as the problem's
``protocol`` and ``target``, with the original's semantics (see settings.py)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

# The original's 5th-line test for a time column: a non-negative number, blanks, a number.
_TIME_COLUMN = re.compile(r"^\s*\d+(\.\d*)?([eE][-+]?\d+)?\s+[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ProtocolAndTarget:
    """What the settings converter (``settings._Converter``, which provides ``get``,
    ``number``, ``find``, ``relative``, ``error``, ``notes`` and ``comments``) inherits to
    build the protocol and the target."""

    def protocol_and_target(self, features: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        protocol: dict[str, Any] = {
            "tstop_ms": self.number("run_controll_tstop"),
            "dt_ms": self.number("run_controll_dt"),
            "v_init_mV": self.number("run_controll_vrest"),
        }
        stim_type = self.get("stim_type")
        if stim_type not in ("IClamp", "VClamp"):
            raise self.error("stim_type", f"{stim_type!r}: expected IClamp or VClamp")
        stimulus: dict[str, Any] = {
            "type": stim_type,
            "section": str(self.get("stim_sec")),
            "position": self.number("stim_pos"),
        }
        record = str(self.get("run_controll_record", "v"))
        if stim_type == "VClamp" and record == "i":
            recording: dict[str, Any] = {"variable": "clamp_current"}
        else:
            recording = {
                "variable": record,
                "section": str(self.get("run_controll_sec")),
                "position": self.number("run_controll_pos"),
            }
        if features:
            target = self.features_target(stimulus)
        else:
            self.sweeps(stimulus)
            target = self.trace_target(protocol, recording)
        protocol["stimulus"] = stimulus
        protocol["recording"] = recording
        return protocol, target

    def sweeps(self, stimulus: dict[str, Any]) -> None:
        """Step amplitudes, or waveform files (the original's string amplitudes)."""
        amplitudes = self.get("stim_amp")
        if not isinstance(amplitudes, list) or not amplitudes:
            raise self.error("stim_amp", "expected a non-empty list of amplitudes")
        traces = self.get("input_size", None)
        if isinstance(traces, int) and traces != len(amplitudes):
            self.notes.append(
                f"input_size {traces} differs from the {len(amplitudes)} stimulus amplitudes: "
                "one sweep per amplitude"
            )
        files = [isinstance(a, str) for a in amplitudes]
        if all(files):
            stimulus["waveforms"] = [
                self.relative(self.find(f"stim_amp[{i}]", a)) for i, a in enumerate(amplitudes)
            ]
            self.comments["protocol.stimulus"] = "waveforms: one value (nA) per dt, delay 0"
            return
        if any(files):
            raise self.error("stim_amp", "mixes numbers and waveform files; use one kind")
        for amplitude in amplitudes:
            if isinstance(amplitude, bool) or not isinstance(amplitude, int | float):
                raise self.error("stim_amp", f"amplitude {amplitude!r} is not a number")
        stimulus["amplitudes"] = amplitudes
        stimulus["delay_ms"] = self.number("stim_del")
        stimulus["duration_ms"] = self.number("stim_dur")

    def trace_target(self, protocol: dict[str, Any], recording: dict[str, Any]) -> dict:
        path = self.find("input_dir", self.get("input_dir"))
        rate = self.number("input_freq")
        if rate <= 0:
            raise self.error("input_freq", f"sampling rate {rate:g} Hz must be positive")
        target: dict[str, Any] = {"file": self.relative(path), "sampling_rate_hz": rate}
        target["time_column"] = self.time_column(path)
        scale = self.get("input_scale", "mV")
        if recording["variable"] != "v":
            if scale not in ("mV", None):
                self.notes.append(
                    f"input_scale {scale!r} ignored: the target is a {recording['variable']} "
                    "trace, read as it is in the file"
                )
        elif scale in ("mV", "V"):
            target["unit"] = scale
        else:
            self.notes.append(f"input_scale {scale!r} is not supported (mV or V): mV assumed")
        step = 1000 / rate
        dt = protocol["dt_ms"]
        if dt > step * (1 + 1e-9):
            protocol["dt_ms"] = step
            self.notes.append(
                f"run_controll_dt {dt:g} ms is coarser than the target's step {step:g} ms: "
                f"dt {step:g} ms used, as the original does"
            )
        elif dt < step * (1 - 1e-9):
            target["compare_on"] = "simulation_grid"
            self.comments["target.compare_on"] = (
                "the original up-samples the target onto dt; costs run at 1000/dt Hz"
            )
        length = self.get("input_length", None)
        if isinstance(length, int | float) and not math.isclose(length, protocol["tstop_ms"]):
            self.notes.append(
                f"input_length {length:g} ms differs from run_controll_tstop "
                f"{protocol['tstop_ms']:g} ms: the simulation length is used"
            )
        return target

    def time_column(self, path: Path) -> bool:
        """The original's test: the 5th line (here: the last one of a shorter file)."""
        try:
            with path.open() as handle:
                lines = [line for _, line in zip(range(5), handle, strict=False)]
        except (OSError, UnicodeDecodeError) as error:
            raise self.error("input_dir", f"cannot read {path} ({error})") from None
        if not lines:
            raise self.error("input_dir", f"{path} is empty")
        detected = bool(_TIME_COLUMN.match(lines[-1]))
        declared = self.get("input_cont_t", None)
        if declared is not None and bool(declared) != detected:
            self.notes.append(
                f"input_cont_t is {declared} but the file's 5th line "
                f"{'has' if detected else 'has no'} time column; like the original, the file "
                "decides"
            )
        return detected

    def features_target(self, stimulus: dict[str, Any]) -> dict[str, Any]:
        path = self.find("input_dir", self.get("input_dir"))
        try:
            stimuli = json.loads(path.read_text())["stimuli"]
            sweeps = [float(a) for a in stimuli["amplitudes"]]
            window = (float(stimuli["delay"]), float(stimuli["duration"]))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise self.error(
                "input_dir", f"{path} is not a features file with stimuli.amplitudes, delay "
                f"and duration ({type(error).__name__}: {error})"
            ) from None  # fmt: skip
        amplitudes = self.get("stim_amp", None)
        same = isinstance(amplitudes, list) and len(amplitudes) == len(sweeps)
        same = same and all(
            isinstance(a, int | float) and math.isclose(a, b)
            for a, b in zip(amplitudes, sweeps, strict=False)
        )
        settings_window = (self.get("stim_del", None), self.get("stim_dur", None))
        if not same or settings_window != window:
            self.notes.append(
                f"the stimulus comes from the features file (amplitudes {sweeps}, delay "
                f"{window[0]:g} ms, duration {window[1]:g} ms), not from stim_amp/stim_del/"
                "stim_dur, which differ"
            )
        self.comments["protocol.stimulus"] = "sweeps, delay and duration from target.features"
        self.notes.append(
            "efel_rule: efel4 reproduces the original's numbers (it ran eFEL 4: four "
            "spike-timing features that eFEL 5 leaves empty count as 0); efel5 is eFEL 5 as it is"
        )
        self.comments["target.efel_rule"] = "the original's eFEL 4 numbers (see the notes)"
        return {"features": self.relative(path), "efel_rule": "efel4"}
