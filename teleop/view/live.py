"""The live view: the session tap and the robot server's state and cameras, drawn as they come.

Nothing here can slow the session or the robot server. Every stream but the events has a
latest-value subscriber (ZMQ_CONFLATE, one topic per socket): ZeroMQ's own I/O thread keeps only
the newest message of each topic, so no sender ever queues for the view however slow rerun is.
The view takes the newest message of each stream at about the rate it draws it at (so it decodes
only what it draws), and the logger thins them to its rates (``rerun_log.Rates``); the messages
never taken show as gaps in the senders' sequence numbers, counted per stream (``skipped``).
Events (state changes, faults, episodes; a few a second) come on one lossless subscriber with a
bounded queue.

The robot's endpoints and cameras come from the robot spec the session republishes every second
on the tap, the devices from its session info, so ``teleop view --tap URL`` attaches to any
running session, at any time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import zmq

from teleop.bus.endpoints import TOPIC_CAMERA, TOPIC_STATE, connect_address
from teleop.bus.messages import (
    CameraFrame,
    HandSampleMsg,
    PoseSampleMsg,
    RobotSpec,
    RobotState,
    SessionCommand,
    SessionEvent,
    SessionInfo,
    TactileSampleMsg,
)
from teleop.bus.security import CurveKeys
from teleop.bus.sockets import Bus, Received, Subscriber
from teleop.errors import LinkTimeoutError
from teleop.view.rerun_log import ViewLogger

__all__ = ["LiveView", "CYCLE_S"]

logger = logging.getLogger(__name__)

#: How often the loop looks for events and for streams due to be taken (each at its own rate).
CYCLE_S = 0.005
#: A robot message whose capture time is further than this from ours, with no clock offset
#: heard for its source (a view attached after the session's clock events), is placed at its
#: arrival time instead.
_FOREIGN_CLOCK_NS = 1_000_000_000
_EVENT_HWM = 10_000
_SAMPLE_KINDS = (("hand", HandSampleMsg), ("pose", PoseSampleMsg), ("tactile", TactileSampleMsg))


class LiveView:
    def __init__(self, tap: str, view: ViewLogger, *, keys: CurveKeys | None = None, robot_host: str | None = None,
                 state: str | None = None, camera: str | None = None) -> None:
        self.tap, self.view, self.keys = tap, view, keys
        self.robot_host = robot_host  # where the robot server runs, for the endpoints its spec reports
        self.state_ep, self.camera_ep = state, camera  # explicit robot endpoints (else the spec's)
        self._stop = threading.Event()
        self._offsets: dict[str, int] = {}  # clock offsets by message source (session clock = theirs + offset)
        self._latest: dict[str, Subscriber] = {}  # stream name -> latest-value subscriber
        self._next_take: dict[str, float] = {}  # stream name -> when to take its newest message next
        self._robot_key: tuple | None = None
        self._devices: set[str] = set()
        self.cycles = 0
        self.late_cycles = 0  # cycles that took more than 5 periods (rerun slow): streams were taken less often

    def stop(self) -> None:
        self._stop.set()

    def run(self, seconds: float | None = None, ready: threading.Event | None = None) -> dict[str, Any]:
        with Bus("view", keys=self.keys) as bus:
            self._bus = bus
            self._latest, self._next_take, self._devices, self._robot_key = {}, {}, set(), None
            events = bus.subscriber(self.tap, ["session/info", "session/robot_spec", "session/event"],
                                    accept=(SessionInfo, RobotSpec, SessionEvent), mode="lossless", hwm=_EVENT_HWM,
                                    max_bytes=16 << 20)
            self._latest["command"] = bus.subscriber(self.tap, ["session/command"], accept=(SessionCommand,))
            if ready is not None:
                ready.set()
            end = None if seconds is None else time.monotonic() + seconds
            next_cycle = time.monotonic()
            while not self._stop.is_set() and (end is None or time.monotonic() < end):
                self._drain_events(events)
                now = time.monotonic()
                for name, sub in list(self._latest.items()):
                    if now < self._next_take.get(name, 0.0):
                        continue
                    # each stream is taken at about the rate it is drawn at: nothing is decoded for nothing
                    self._next_take[name] = max(self._next_take.get(name, 0.0) + self._period(name), now)
                    got = sub.latest()
                    if got is not None:
                        self._on_stream(name, got)
                self.cycles += 1
                now = time.monotonic()
                if now - next_cycle > 5 * CYCLE_S:
                    self.late_cycles += 1
                    next_cycle = now
                next_cycle += CYCLE_S
                events.wait(max(0.0, next_cycle - time.monotonic()))
            self._drain_events(events)
            return self.stats(events)

    def _period(self, name: str) -> float:
        r = self.view.rates
        hz = {"command": r.joints_hz, "state": r.joints_hz, "hand": r.hands_hz, "pose": r.hands_hz,
              "tactile": r.tactile_hz, "camera": r.cameras_hz}[name.partition(":")[0]]
        return 1.0 / hz

    def stats(self, events: Subscriber) -> dict[str, Any]:
        skipped = {name: sub.stats.gaps for name, sub in self._latest.items() if sub.stats.gaps}
        rejected = {name: dict(sub.stats.rejected) for name, sub in self._latest.items() if sub.stats.rejected}
        if events.stats.rejected:
            rejected["events"] = dict(events.stats.rejected)
        return {**self.view.stats(), "cycles": self.cycles, "late_cycles": self.late_cycles, "skipped": skipped,
                "events_lost": events.stats.gaps, "rejected": rejected}

    # -- the streams -----------------------------------------------------------------------------
    def _drain_events(self, events: Subscriber) -> None:
        sock = events.sock
        for _ in range(1000):  # a burst waits for the next cycle rather than starve the streams
            if not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                return
            try:
                got = events.recv(0.0)
            except LinkTimeoutError:  # only rejected messages were queued (counted by the decoder)
                return
            self._on_event(got)

    def _on_event(self, got: Received) -> None:
        msg, t_ns = got.msg, got.header.capture_ns
        if isinstance(msg, SessionInfo):
            self.view.on_info(t_ns, msg)
            self._subscribe_devices(msg)
        elif isinstance(msg, RobotSpec):
            self.view.on_spec(t_ns, msg)
            self._subscribe_robot(msg)
        elif isinstance(msg, SessionEvent):
            if msg.event == "clock":
                src, off = msg.values.get("source"), msg.values.get("offset_ns")
                if isinstance(src, str) and isinstance(off, int):
                    self._offsets[src] = off
            self.view.on_event(t_ns, msg)

    def _on_stream(self, name: str, got: Received) -> None:
        h, msg, v = got.header, got.msg, self.view
        if name == "command":
            v.on_command(h.capture_ns, msg)  # type: ignore[arg-type]
            return
        kind, _, key = name.partition(":")
        if kind == "hand":
            v.on_hand(h.capture_ns, key, msg)  # type: ignore[arg-type]
        elif kind == "pose":
            v.on_pose(h.capture_ns, key, msg)  # type: ignore[arg-type]
        elif kind == "tactile":
            v.on_tactile(h.capture_ns, key, msg)  # type: ignore[arg-type]
        elif kind == "state":
            v.on_state(self._robot_time(got), msg)  # type: ignore[arg-type]
        elif kind == "camera":
            v.on_camera(self._robot_time(got), key, msg.image)  # type: ignore[attr-defined]

    def _robot_time(self, got: Received) -> int:
        """A robot message's capture time on the session clock."""
        h = got.header
        off = self._offsets.get(h.source)
        if off is not None:
            return h.capture_ns + off
        if abs(h.capture_ns - got.recv_ns) > _FOREIGN_CLOCK_NS:  # another host's clock, offset unknown
            return got.recv_ns
        return h.capture_ns

    def _subscribe_devices(self, info: SessionInfo) -> None:
        for device in info.devices:
            if device in self._devices:
                continue
            self._devices.add(device)
            for kind, cls in _SAMPLE_KINDS:
                self._latest[f"{kind}:{device}"] = self._bus.subscriber(
                    self.tap, [f"session/{kind}/{device}"], accept=(cls,), max_bytes=64 << 20)

    def _subscribe_robot(self, spec: RobotSpec) -> None:
        eps = {k: connect_address(v, self.robot_host) for k, v in spec.endpoints.items()}
        state_ep = self.state_ep or eps.get("state")
        camera_ep = self.camera_ep or eps.get("camera")
        key = (spec.instance, state_ep, camera_ep, spec.camera_names)
        if key == self._robot_key or not state_ep:
            return
        self._robot_key = key
        for name in [n for n in self._latest if n.startswith(("state:", "camera:"))]:
            self._bus.forget(self._latest.pop(name).sock)
        shapes = {"n": spec.n_joints, "b": len(spec.body_names), "f": len(spec.fingertip_names)}
        self._latest["state:"] = self._bus.subscriber(state_ep, [TOPIC_STATE], accept=(RobotState,), shapes=shapes)
        if camera_ep and camera_ep != "none":
            for cam in spec.camera_names:
                self._latest[f"camera:{cam}"] = self._bus.subscriber(camera_ep, [f"{TOPIC_CAMERA}{cam}"],
                                                                     accept=(CameraFrame,))
        logger.info("view: robot %s (instance %s): state %s, cameras %s on %s", spec.name, spec.instance, state_ep,
                    list(spec.camera_names) or "none", camera_ep)
