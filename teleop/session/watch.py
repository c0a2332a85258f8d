"""What a session depends on besides its devices, watched every few ticks.

* ``RobotWatch``: the robot server's state stream must stay fresh and come from the instance the
  session connected to. A silent server (killed, frozen, unplugged network) is *lost* after
  ``timeout_s``; a state from another instance (the server restarted, or another one took its
  ports) is a *changed* robot. Either way the session holds at once and needs a fresh engage
  (with its start-pose check) before it drives again.
* ``ChildWatch``: the processes the session started (robot server, recorder) must stay alive; an
  exit is reported once, with the end of the child's log.

Both only read and report: the session decides what a finding means (teleop/session/session.py).
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from robots.client import RobotClient
from teleop.bus.messages import RobotState
from teleop.errors import WrongRobotError

__all__ = ["RobotWatch", "RobotReading", "ChildWatch", "ChildExit"]


class RobotReading(NamedTuple):
    state: RobotState | None  # a new state of our instance, or None
    fault: str = ""  # "" | "robot_lost" | "robot_changed"
    message: str = ""


class RobotWatch:
    """Reads the robot state and judges its freshness; ``timeout_s`` [s] is how long the stream
    may stay silent."""

    def __init__(self, client: RobotClient, timeout_s: float) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.lost = False  # reported as lost or changed, not yet back
        self.max_gap_s = 0.0  # longest silence seen while not lost (how close to the timeout a run came)

    def read(self, judge: bool = True) -> RobotReading:
        """The newest state, if any. ``judge`` False (the loop itself was away, so the silence
        says nothing about the robot) skips the freshness verdict for this call."""
        client = self.client
        age = client.state_age_s
        try:
            state = client.read_latest()
        except WrongRobotError as exc:
            self.lost = True
            return RobotReading(None, "robot_changed", f"{exc}; holding. Restart the session, or engage again to "
                                "drive the new instance after its start-pose check")
        if state is not None:
            if not self.lost:
                self.max_gap_s = max(self.max_gap_s, age)
            return RobotReading(state)
        if judge and not self.lost and client.state_age_s > self.timeout_s:
            self.lost = True
            return RobotReading(None, "robot_lost", f"no robot state for {client.state_age_s * 1e3:.0f} ms from "
                                f"{client.endpoints.state} (limit {self.timeout_s * 1e3:.0f} ms): holding; engage "
                                "again once the robot server is back")
        return RobotReading(None)


class ChildExit(NamedTuple):
    name: str
    message: str


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen
    log: Path | None
    reported: bool = False
    expected: bool = False


class ChildWatch:
    """Child processes the session started; ``exited()`` lists each unexpected exit once."""

    def __init__(self) -> None:
        self._children: list[_Child] = []

    def add(self, name: str, proc: subprocess.Popen, log: Path | None = None) -> None:
        self._children.append(_Child(name, proc, log))

    def expect_exit(self, proc: subprocess.Popen | None) -> None:
        """The session is stopping ``proc`` itself: its exit is not a fault."""
        for c in self._children:
            if c.proc is proc:
                c.expected = True

    def exited(self) -> list[ChildExit]:
        out = []
        for c in self._children:
            if c.reported or c.expected or c.proc.poll() is None:
                continue
            c.reported = True
            how = _how(c.proc.returncode)
            tail = ""
            if c.log is not None and c.log.is_file():
                lines = c.log.read_text(errors="replace").strip().splitlines()[-3:]
                tail = f"; its log ({c.log}) ends: " + " | ".join(lines) if lines else f"; its log: {c.log}"
            out.append(ChildExit(c.name, f"the {c.name} (pid {c.proc.pid}) {how}{tail}"))
        return out


def _how(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"
