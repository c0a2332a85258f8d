"""Start ``teleop sim`` as a child process and connect to it once it answers; stop child
processes (sim, recorder, policy server) the way they expect.

A started server gets an instance id of our choosing, and ``connect_when_ready`` connects only
to that instance: when the ports are already held by another robot server, our child cannot
bind and exits, and we report that instead of driving the other server.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from robots.client import RobotClient
from teleop.errors import LinkError, TeleopError, WrongRobotError
from teleop.lifeline import child_env

__all__ = ["SimProcess", "start_sim_process", "connect_when_ready", "stop_process"]


class SimProcess(subprocess.Popen):
    """A ``teleop sim`` child; ``instance`` is the id it reports in its spec and states."""

    instance: str = ""


def start_sim_process(port_base: int, log_path: Path, extra: list[str] | None = None) -> SimProcess:
    """``teleop sim --port-base PORT_BASE EXTRA...`` with its output in ``log_path``; it stops
    by itself if this process dies (teleop/lifeline.py)."""
    instance = f"sim-{secrets.token_hex(6)}"
    cmd = [sys.executable, "-m", "teleop.cli", "sim", "--port-base", str(port_base), "--instance-id", instance,
           *(extra or [])]
    log = open(log_path, "w")  # noqa: SIM115 - owned by the child for its lifetime
    proc = SimProcess(cmd, stdout=log, stderr=subprocess.STDOUT, env=child_env())
    proc.instance = instance
    return proc


def connect_when_ready(rpc: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 120.0,
                       source: str = "session", keys: str | Path | None = None) -> RobotClient:
    """Connect to a server that is still starting (importing, compiling the model); if it exits
    first, raise with the end of its log. Another server answering on the port is never taken
    for ours (its instance differs)."""
    deadline = time.monotonic() + timeout_s
    expected = getattr(proc, "instance", "") or None
    other = ""
    while True:
        client = RobotClient(rpc, source=source, timeout_s=1.0, instance=expected, keys=keys)
        try:
            client.connect()
            return client
        except WrongRobotError as exc:
            client.disconnect()
            other = str(exc)
            time.sleep(0.1)
        except LinkError:
            client.disconnect()
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            busy = f"\nAnother robot server answers on {rpc} ({other}); " \
                   "pick another --port-base, or stop that server." if other else ""
            raise TeleopError(f"the robot server exited with code {proc.returncode}:\n{tail}{busy}") from None
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
