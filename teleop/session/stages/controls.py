"""Controls: keys, device buttons, hand gestures and console buttons -> the session's requests
(engage, e-stop, release, intervene, episode marks). Requests are queued here and carried out by
the state machine stage in the same pass; episode marks go to the recorder over the tap at once.
A console button asks for its action by name and takes the same way as the key bound to it."""

from __future__ import annotations

import dataclasses

from teleop.session.frame import Frame
from teleop.session.gestures import GestureDetector

__all__ = ["ControlsStage"]


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
            elif pressed:
                s.request("toggle")
