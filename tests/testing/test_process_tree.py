"""Stopping a service with everything it started (``airflow_provider_videogen.testing.process_tree``)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from airflow_provider_videogen.testing.process_tree import session_members, stop_tree

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")

# A supervisor that starts one child and, on Ctrl+C, stops it and exits, as `airflow standalone` does.
ORDERLY = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        print(child.pid, flush=True)  # inside the try: a Ctrl+C right after it is still handled
        time.sleep(60)
    except KeyboardInterrupt:
        child.terminate()
        child.wait()
    """
)

# A supervisor whose child left its process group and ignores SIGINT and SIGTERM, as a stuck task
# process may; on Ctrl+C the supervisor exits without it.
STUBBORN = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; "
         "[signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)]; "
         "print('ready', flush=True); time.sleep(60)"],
        preexec_fn=os.setpgrp, stdout=subprocess.PIPE, text=True,
    )
    child.stdout.readline()
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def start(script: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_a_supervisor_that_stops_its_children_is_left_to_do_so():
    supervisor, child = start(ORDERLY)
    assert sorted(session_members(supervisor)) == sorted([supervisor.pid, child])
    assert stop_tree(supervisor, grace=10.0) == []
    assert supervisor.returncode == 0  # it handled Ctrl+C itself
    assert not alive(child)
    assert session_members(supervisor) == []


def test_what_outlives_the_supervisor_is_killed_even_in_another_process_group():
    supervisor, child = start(STUBBORN)
    try:
        assert stop_tree(supervisor, grace=0.5, term_grace=0.5) == [child]
        assert not alive(child)
        assert session_members(supervisor) == []
    finally:
        if alive(child):
            os.kill(child, 9)
