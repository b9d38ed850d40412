"""A program's process group ends with the worker that started it.

An external program runs in a session of its own, so that a timeout can kill it and all it
started (UC7's run.py starts its simulation through ``os.system``). But when the worker itself
dies — Ctrl-C on ``neuroptimus run``, a nanny's restart, a cancelled job — nothing kills that
group, and a minutes-long simulation would go on as an orphan. So on Linux the program is
started by a small leader process: the kernel sends it SIGTERM when the thread that started it
ends (``PR_SET_PDEATHSIG``), and it then kills its whole group. Otherwise the leader only waits
for the program, whose exit code or signal it passes on as its own, and leaves its signal
dispositions as they were (a shell's background job would ignore SIGINT).
"""

from __future__ import annotations

import os
import sys

# Run as ``python -S -I -c LEADER PARENT_PID PROGRAM ARGS…`` (no site, no user paths: about
# 10 ms on an idle machine, next to a program that takes seconds).
LEADER = """
import ctypes, os, signal, sys
def end_group(*_):
    os.killpg(0, signal.SIGKILL)
signal.signal(signal.SIGTERM, end_group)
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    end_group()  # the worker ended before the line above
argv = sys.argv[2:]
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        sys.stderr.write(f"cannot start {argv[0]}: {error}\\n")
        os._exit(127)
status = os.waitpid(pid, 0)[1]
if os.WIFSIGNALED(status):
    signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
    os.kill(os.getpid(), os.WTERMSIG(status))
os._exit(os.waitstatus_to_exitcode(status))
"""


def led(argv: list[str]) -> list[str]:
    """``argv`` started through the leader where the kernel can tell it of its parent's end
    (Linux); unchanged elsewhere."""
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-S", "-I", "-c", LEADER, str(os.getpid()), *argv]
