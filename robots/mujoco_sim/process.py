"""Start ``teleop sim`` as a child process and connect to it once it answers; stop child
processes (sim, recorder, policy server) the way they expect."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from robots.client import RobotClient
from teleop.errors import LinkError, TeleopError

__all__ = ["start_sim_process", "connect_when_ready", "stop_process"]


def start_sim_process(port_base: int, log_path: Path, extra: list[str] | None = None) -> subprocess.Popen:
    """``teleop sim --port-base PORT_BASE EXTRA...`` with its output in ``log_path``."""
    cmd = [sys.executable, "-m", "teleop.cli", "sim", "--port-base", str(port_base), *(extra or [])]
    log = open(log_path, "w")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def connect_when_ready(rpc: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 120.0,
                       source: str = "session") -> RobotClient:
    """Connect to a server that is still starting (importing, compiling the model); if it exits
    first, raise with the end of its log."""
    deadline = time.monotonic() + timeout_s
    while True:
        client = RobotClient(rpc, source=source, timeout_s=1.0)
        try:
            client.connect()
            return client
        except LinkError:
            client.disconnect()
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise TeleopError(f"the robot server exited with code {proc.returncode}:\n{tail}") from None
            if time.monotonic() > deadline:
                raise TeleopError(f"the robot server did not answer within {timeout_s:.0f} s; see {log_path}") from None


def stop_process(proc: subprocess.Popen | None, timeout_s: float = 10.0) -> None:
    """SIGINT (our processes then stop cleanly: the sim logs its counters, the recorder keeps its
    open episode), wait up to ``timeout_s``, then kill."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
