"""Stop a service together with everything it started.

For processes started with ``start_new_session=True``: the process is then the leader of its own
process group and session, and whatever it starts stays in that session even when it moves to a
process group of its own (as Airflow's task processes do). Members are found through ``/proc``;
where there is none, only the process group is reached.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

_PROC = Path("/proc")


def signal_group(process: subprocess.Popen[Any], sig: int) -> None:
    """Signal the process group of a process that has not exited (so the group id is surely its own)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)


def session_members(process: subprocess.Popen[Any]) -> list[int]:
    """Return the live processes in the process group or session led by ``process`` (its own pid included)."""
    leader = process.pid
    if not (_PROC / "self" / "stat").exists():
        return [leader] if process.poll() is None else []
    if process.poll() is not None and (_PROC / str(leader)).exists():
        # Reaped, and its pid now belongs to another process: Linux does not reuse a pid that is still
        # some process's group or session id, so no process of ours is left.
        return []
    return members_of(leader)


def members_of(leader: int) -> list[int]:
    """Return the live processes whose process group or session id is ``leader`` (``[]`` without ``/proc``).

    Use it for a leader that is not a child of this process (for one that is, :func:`session_members`
    also tells a reaped leader from a new process that got its pid).
    """
    members = []
    for stat in _PROC.glob("[0-9]*/stat"):
        try:
            # After the command name: state, ppid, pgrp, session, ...
            fields = stat.read_text().rsplit(")", 1)[1].split()
            state, group, session = fields[0], int(fields[2]), int(fields[3])
        except (OSError, IndexError, ValueError):
            continue
        if leader in (group, session) and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return sorted(members)


def signal_tree(process: subprocess.Popen[Any], sig: int) -> list[int]:
    """Send ``sig`` to every process of the group and session led by ``process``; return their pids."""
    members = session_members(process)
    if not (_PROC / "self" / "stat").exists():
        signal_group(process, sig)
        return members
    for pid in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return members


def kill_tree(process: subprocess.Popen[Any]) -> None:
    """SIGKILL ``process`` with everything it started: its process group and its session."""
    signal_tree(process, signal.SIGKILL)


def stop_tree(
    process: subprocess.Popen[Any],
    *,
    first_signal: int = signal.SIGINT,
    grace: float = 20.0,
    term_grace: float = 5.0,
) -> list[int]:
    """Stop ``process`` and everything it started; return the pids that had to be killed.

    Sends ``first_signal`` to ``process`` alone and waits up to ``grace`` seconds for the whole
    session to exit; then SIGTERM to every process left, ``term_grace`` seconds more, and SIGKILL to
    the rest. Alone, because a supervisor stops its children in order (Airflow's scheduler its
    executor's workers, for one), while a signal reaching all of them at once can leave them
    waiting on each other: that is how Ctrl+C in a terminal leaves Airflow processes behind.

    :param process: a process started with ``start_new_session=True``.
    :param first_signal: the signal asking for an orderly shutdown.
    :param grace: seconds the orderly shutdown may take.
    :param term_grace: seconds allowed after SIGTERM.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, first_signal)
    if _wait_until_gone(process, grace):
        return []
    signal_tree(process, signal.SIGTERM)
    if _wait_until_gone(process, term_grace):
        return []
    killed = signal_tree(process, signal.SIGKILL)
    _wait_until_gone(process, 10.0)
    return killed


def _wait_until_gone(process: subprocess.Popen[Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        process.poll()  # reaps the leader, so that it no longer counts
        if not session_members(process):
            # The leader may have exited between the poll and the look: it is a zombie, reap it.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(1.0)
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
