"""The C/C++ flags nrnivmodl compiles a problem's mechanisms with (``NEUROPTIMUS_MECHANISM_FLAGS``).

By default they are *tuned*: ``-O3`` for this CPU's instruction set (``-march=native``), with
floating-point contraction off (``-ffp-contract=off``: no fused multiply-add, so every
operation rounds as in NEURON's own ``-O2`` build and the traces stay the same, bit for bit).
Measured by ``neuroptimus benchmark mechanisms``: the bare simulation of use case 4 takes
about a tenth less time. ``default`` (or an empty value) compiles as NEURON does; any other
value is the flags themselves. A build for this CPU is cached apart from other CPUs' (a
shared cache on a cluster of mixed nodes never hands a node code it cannot run).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
from pathlib import Path

FLAGS_VARIABLE = "NEUROPTIMUS_MECHANISM_FLAGS"
TUNED = ("-O3", "-march=native", "-ffp-contract=off")


def mechanism_flags() -> tuple[str, ...]:
    """The flags of this environment: TUNED unless ``NEUROPTIMUS_MECHANISM_FLAGS`` says
    ``default`` (NEURON's own, none added), ``tuned``, or gives the flags."""
    value = os.environ.get(FLAGS_VARIABLE)
    if value is None or value.strip() == "tuned":
        return TUNED
    if value.strip() in ("", "default"):
        return ()
    return tuple(shlex.split(value))


def build_identity(flags: tuple[str, ...]) -> str:
    """What a build with ``flags`` depends on beyond its sources: the flags, and for code
    made for this CPU (``-march=native``/``-mtune=native``) the CPU's model and features."""
    identity = "flags " + shlex.join(flags)
    if any("native" in flag for flag in flags):
        identity += "\0cpu " + _cpu()
    return identity


@functools.cache
def _cpu() -> str:
    """This CPU's model name and feature flags, hashed (Linux; the machine's name elsewhere)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        import platform  # noqa: PLC0415 (rarely needed)

        return platform.processor() or platform.machine()
    wanted = [line for line in lines if line.split(":")[0].strip() in ("model name", "flags")]
    return hashlib.sha256("\n".join(sorted(set(wanted))).encode()).hexdigest()[:16]
