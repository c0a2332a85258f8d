"""The live view alongside ``teleop run --rerun`` and ``teleop demo --rerun``: ``teleop view`` in its
own process (never in the session's: drawing must not share the loop's GIL), started before the
session so it sees it from its first message, dying with it (``teleop/lifeline.py``) and
stopped after it, which flushes what it logged (an .rrd file is complete when ``stop`` returns).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from teleop.bus.endpoints import session_endpoints
from teleop.errors import TeleopError
from teleop.lifeline import child_env
from teleop.view.sink import ViewTarget, check_target

__all__ = ["ViewChild", "start_view"]

_READY_TIMEOUT_S = 60.0  # imports (rerun, numba kernels) and a viewer or web server starting
_STOP_TIMEOUT_S = 30.0  # the last flush of an .rrd file or to a viewer


class ViewChild:
    def __init__(self, proc: subprocess.Popen, ready: Path, log: Path, target: ViewTarget) -> None:
        self.proc, self.ready, self.log, self.target = proc, ready, log, target
        self.url = ""

    def wait_ready(self, timeout_s: float = _READY_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            info = self._read()
            if "error" in info:
                self.proc.wait(10)
                raise TeleopError(f"the view did not start: {info['error']}")
            if "url" in info:
                self.url = str(info["url"])
                return self.url
            if self.proc.poll() is not None:
                raise TeleopError(f"the view exited at start (code {self.proc.returncode}); its log: {self.log}")
            if time.monotonic() > deadline:
                self.stop()
                raise TeleopError(f"the view did not start within {timeout_s:.0f} s; its log: {self.log}")
            time.sleep(0.05)

    def stop(self) -> dict[str, Any]:
        """Stop the view (it flushes first); returns its statistics (empty when it had died)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        info = self._read()
        out = dict(info.get("stats", {}))
        out["exit_code"] = self.proc.returncode
        out["log"] = str(self.log)
        return out

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.ready.read_text())
        except (OSError, ValueError):
            return {}


def start_view(target: ViewTarget, config: Any, port_base: int | None = None) -> ViewChild:
    """Start the live view of the session ``config`` (a SessionConfig; ``port_base`` overrides
    its ports, as ``teleop demo`` does) and wait until it is ready to draw."""
    check_target(target)  # fail before the session starts, in the user's terms
    base = config.robot.port_base if port_base is None else port_base
    tap = session_endpoints(port_base=base)[0]
    folder = Path(tempfile.mkdtemp(prefix="teleop-view-"))
    ready, log = folder / "ready.json", folder / "view.log"
    cmd = [sys.executable, "-m", "teleop.cli", "view", "--tap", tap, "--robot", str(config.robot_description),
           "--ready-file", str(ready)]
    if target.kind == "save":
        cmd += ["--save", str(target.path)]
    else:
        cmd += [f"--{target.kind}"]
    if config.robot.kind == "bridge":
        host = urlsplit(config.rpc_endpoint()).hostname
        if host:
            cmd += ["--robot-host", host]
    if config.robot.keys:
        cmd += ["--keys", str(config.robot.keys)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=child_env())
    child = ViewChild(proc, ready, log, target)
    child.wait_ready()
    return child
