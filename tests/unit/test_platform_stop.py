"""Stopping a process session (``maas down``): a process that has exited but whose
parent has not yet read its status (a zombie) is gone, not a process to wait for."""

from __future__ import annotations

import subprocess
import sys
import time

from maas_ray.control import sessions


def test_a_stopped_process_its_parent_has_not_reaped_does_not_hold_up_the_stop() -> None:
    # This process starts the session (as a test's platform.up or a notebook does) and
    # does not reap it; another process stops it (as `maas down` does).
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert [p.pid for p in sessions.processes(proc.pid)] == [proc.pid]
        stop = (
            "import sys, time; from maas_ray.control import sessions; t = time.monotonic(); "
            f"assert sessions.stop({proc.pid}, 15.0); print(time.monotonic() - t)"
        )
        took = float(
            subprocess.run(
                [sys.executable, "-c", stop], capture_output=True, text=True, check=True
            ).stdout
        )
        # The sleep ended at SIGTERM; it stays a zombie of this process until reaped here.
        assert sessions.processes(proc.pid) == []
        assert took < 5, took  # not the 15 s grace
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready')"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", f"{deaf}; time.sleep(60)"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        assert sessions.stop(proc.pid, 0.5)
        took = time.monotonic() - started
        assert 0.5 <= took < 5, took
        assert proc.wait(timeout=5) in (-9, 0)  # 0: reaped by the stop (its child here)
    finally:
        proc.kill()
        proc.wait()
