"""Controls: keys, device buttons, hand gestures and console buttons -> the session's requests
(engage, e-stop, release, intervene, episode marks). Requests are queued here and carried out by
the state machine stage in the same pass; episode marks go to the recorder over the tap at once.
A console button asks for its action by name and takes the same way as the key bound to it."""

from __future__ import annotations

import dataclasses
import time

from teleop.session.frame import Frame
from teleop.session.gestures import GestureDetector
from teleop.session.machine import DRIVING_STATES, IDLE, STALE

__all__ = ["ControlsStage"]

# A gesture that engages acts when it ends: while it is held the hand is in the gesture (a pinch
# bends the index ~1.8 rad), which the start-pose check would refuse. The check is retried for a
# moment while the hand opens.
GESTURE_ENGAGE_RETRY_S = 1.0
_RETRY_EVERY_S = 0.1


class ControlsStage:
    name = "controls"

    def __init__(self, session, keys) -> None:
        self.session = session
        self.keys = keys
        c = self.config = session.config.controls
        self.actions = {a: tuple(getattr(c, a)) for a in ("engage", "estop", "release")}
        sources = [src for fl in dataclasses.fields(c) if isinstance(getattr(c, fl.name), tuple)
                   for src in getattr(c, fl.name)]
        self.gestures = GestureDetector([src.partition(":")[2] for src in sources if src.startswith("gesture:")],
                                        session.config.rate_hz)
        self.engage_retry_until = self.next_retry = 0.0

    def step(self, f: Frame) -> None:
        for key in self.keys.drain() if self.keys.active else ():
            self.on_source(f"key:{key}", True)
        for name, drv in self.session.devices.items():
            for ev in drv.drain_events():
                self.on_source(f"{name}:{ev.button}", ev.pressed)
        if self.gestures.names:
            for source, pressed in self.gestures.update(f.keypoints, f.have[:, 0]):
                self.on_source(source, pressed)
        web = self.session.web
        while web is not None and web.actions:
            self.on_console(*web.actions.popleft())
        if self.engage_retry_until:
            self._retry_gesture_engage()

    def _retry_gesture_engage(self) -> None:
        s, now = self.session, time.monotonic()
        if now > self.engage_retry_until or s.state not in (IDLE, STALE):
            self.engage_retry_until = 0.0  # engaged, e-stopped, or the hand stayed too far from the robot
        elif now >= self.next_retry:
            s.request("engage")
            self.next_retry = now + _RETRY_EVERY_S

    def on_console(self, action: str, text: str = "") -> None:
        """A console button (teleop/web/protocol.py ``CONSOLE_ACTIONS``): what its key does."""
        s = self.session
        if action.startswith("episode_"):
            mark = action.removeprefix("episode_")
            s.tap_event("episode", mark, **({"text": text} if mark in ("task", "note") else {}))
        else:  # estop, release, engage, disengage, intervene: the requests on_source makes
            s.request(action)

    def on_source(self, source: str, pressed: bool) -> None:
        s, c = self.session, self.config
        if source == "key:q" and pressed:
            s.request("stop")
        if source in c.intervene:
            if c.intervene_mode == "hold":
                s.request("takeover" if pressed else "return")
            elif pressed:
                s.request("intervene")
            return
        for action in ("start", "stop", "discard", "success", "failure"):
            if pressed and source in getattr(c, f"episode_{action}"):
                s.tap_event("episode", action)  # the recorder acts on it; the loop never waits
                return
        if source in self.actions["estop"] and pressed:
            s.request("estop")
        elif source in self.actions["release"] and pressed:
            s.request("release")
        elif source in self.actions["engage"]:
            if c.engage_mode == "hold":
                s.request("engage" if pressed else "disengage")
            elif source.startswith("gesture:"):
                if not pressed:  # let go of the gesture
                    self._gesture_toggle()
            elif pressed:
                s.request("toggle")

    def _gesture_toggle(self) -> None:
        s = self.session
        if s.state in DRIVING_STATES:
            s.request("disengage")
        else:
            s.request("engage")
            self.engage_retry_until = time.monotonic() + GESTURE_ENGAGE_RETRY_S
            self.next_retry = time.monotonic() + _RETRY_EVERY_S
