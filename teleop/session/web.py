"""[web]: the session's own web server: the console page for a desktop or tablet, and the XR
page for a headset (its ``webxr`` devices serve on this server, not on one of their own).

The server runs in its own thread (teleop/web/server.py). What the consoles see is the status
the loop already publishes for the terminal (teleop/session/status.py ``StatusPrinter.view``),
read by the server's thread ~10 times a second, plus the fault log; the loop never waits for a
console. A console's button becomes an entry in ``actions``, which the controls stage drains at
its next pass and carries out exactly as the key bound to the same action
(teleop/session/stages/controls.py ``on_console``).
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from pathlib import Path
from typing import Any

from teleop.errors import ConfigError
from teleop.session.status import COUNTERS
from teleop.web.protocol import ConsoleAction

__all__ = ["SessionWeb"]

logger = logging.getLogger(__name__)

_FAULT_LINES = 30


class SessionWeb:
    def __init__(self, session, camera_endpoint: str, camera_names: tuple[str, ...]) -> None:
        self.session = session
        self.settings = session.config.web
        self.camera_endpoint, self.robot_cameras = camera_endpoint, camera_names
        self.actions: deque[tuple[str, str]] = deque(maxlen=64)  # (action, text), appended by the server's thread
        self.server = None

    def _cameras(self) -> tuple[str, ...]:
        wanted = self.settings.cameras
        if wanted == ("auto",):
            return self.robot_cameras[:1]
        missing = [n for n in wanted if n not in self.robot_cameras]
        if missing:
            raise ConfigError(f"web.cameras {list(wanted)}: the robot has no camera {missing[0]!r}; its cameras: "
                              f"{list(self.robot_cameras)}")
        return tuple(wanted)

    def start(self) -> None:
        from teleop.web.cli import print_access
        from teleop.web.server import WebServer

        source = self.session.config.source
        cameras = self._cameras()
        config = self.settings.web_config(source.parent if source else Path.cwd(), camera_hz=self.settings.camera_hz,
                                          camera=self.camera_endpoint if cameras else None,
                                          camera_names=cameras or ("head_cam",))
        self.server = WebServer(config)
        self.server.attach_console(self._on_action, self._status)
        self.server.start()
        print_access(self.server, qr=sys.stderr.isatty(), out=sys.stderr, pages=("console.html", "xr.html"))

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None

    def _on_action(self, msg: ConsoleAction) -> None:
        logger.info("console: %s%s", msg.action, f" {msg.text!r}" if msg.text else "")
        self.actions.append((msg.action, msg.text))

    def _status(self) -> dict[str, Any]:
        s = self.session
        view = s.status.view()
        view["session"] = s.config.name
        view["fault_log"] = list(s.fault_log)[-_FAULT_LINES:]
        faults = view.get("faults") or {}  # the per-tick counters (limits applied) apart from the faults
        view["counters"] = {k: v for k, v in faults.items() if k in COUNTERS}
        view["faults"] = {k: v for k, v in faults.items() if k not in COUNTERS}
        view["cameras"] = list(self.server.config.camera_names) if self.server and self.server.config.camera else []
        view["has_policy"] = s.config.policy.enabled
        view["has_recorder"] = s.config.recorder.enabled
        return view
