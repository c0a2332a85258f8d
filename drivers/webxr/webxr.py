"""``webxr``: an XR headset's browser as the input device (Quest 3, Vision Pro, PICO).

The driver runs the ``teleop web`` server (HTTPS + secure WebSocket, in its own thread) and turns
the XR page's frames into samples: per hand a ``HandSample`` (WebXR's 25 joints -> MediaPipe 21,
WebXR's y-up axes -> ours, in the wrist frame, metres) and a ``PoseSample`` (that wrist frame in
the tracker frame: ours, Z up, on the headset's floor). Without hand tracking, a controller's grip
pose is the wrist and its trigger / squeeze close the model hand (``drivers.hands.GloveHand``).

A session with [web] runs the server itself (its console is on it) and hands it to the driver
(``attach_web``) before connecting: the XR page is then served there, and the driver only takes
its frames. Otherwise the driver runs its own.

Running the server in the driver (not in a separate ``teleop web`` process publishing on the bus)
keeps the data flowing one way, page -> driver -> session, with no second hop or process to
supervise, and lets ``teleop drivers echo webxr`` work like any device. The server's thread only
decodes and queues; conversion happens in the driver's reader thread; the session's loop never
waits on either.

Stale input: when the socket drops, the page reports it is hidden (headset asleep, session
ended, system menu) or frames stop, the driver produces nothing, and the session holds as for an
unplugged glove. Held controller buttons are released when the page goes away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import ClassVar

import numpy as np

from drivers.base import ThreadedDriver
from drivers.network.conventions import convert_pose, to_mediapipe
from drivers.samples import ButtonEvent, HandSample, PoseSample, Sample, SampleSpec
from drivers.webxr.config_webxr import WebXRConfig
from retarget.kernels.poses import mat_to_quat, quat_to_mat
from teleop.errors import ConfigError, DeviceError
from teleop.types import Side
from teleop.web.protocol import XRController, XRFrameMsg, XRHandFrame

__all__ = ["WebXRDriver"]

logger = logging.getLogger(__name__)

_THUMB_TIP, _INDEX_TIP = 4, 8  # MediaPipe indices


class WebXRDriver(ThreadedDriver):
    name: ClassVar[str] = "webxr"
    config_class: ClassVar[type[WebXRConfig]] = WebXRConfig
    description: ClassVar[str] = "an XR headset's browser over HTTPS/WebSocket: hand joints, wrists, controllers"
    config: WebXRConfig

    def __init__(self, config: WebXRConfig | None = None) -> None:
        super().__init__(config)
        self.server = None
        self._shared = None  # a session's server (attach_web), not ours to start or stop
        self._frames: deque[tuple[XRFrameMsg, int]] = deque(maxlen=8)  # newest frames; older ones are dropped
        self._arrived = threading.Condition()
        self._visible = False
        self._held: dict[tuple[Side, str], bool] = {}
        self._gloves: dict[Side, object] = {}

    @property
    def sample_spec(self) -> SampleSpec:
        return SampleSpec(kinds=("hand", "pose", "buttons"), side=self.config.side, channel_names=("pinch_m",),
                          rate_hz=90.0, frame="wrist")

    # -- the server's thread: only queue ----------------------------------------------------------
    def _on_frame(self, msg: XRFrameMsg, recv_ns: int) -> None:
        with self._arrived:
            if not self._visible:
                self.count("hidden_frame")
                return
            if len(self._frames) == self._frames.maxlen:
                self.count("dropped_frame")
            self._frames.append((msg, recv_ns))
            self._arrived.notify()

    def _on_state(self, state: str) -> None:
        with self._arrived:
            self._visible = state in ("connected", "visible")
            if not self._visible:
                self._frames.clear()  # nothing from before the headset went away comes out later
                self.count(f"page_{state}")
            self._arrived.notify()

    # -- ThreadedDriver ---------------------------------------------------------------------------
    def attach_web(self, server) -> None:
        """Serve the XR page on ``server`` (a running ``teleop.web.server.WebServer``) instead of
        starting one; call before ``connect``."""
        self._shared = server

    def _open(self) -> None:
        import retarget.offline  # noqa: F401  (imported now, not while the first frames queue up)
        from teleop.web.server import WebServer

        if self._shared is not None:
            self.server = self._shared
            self.server.attach_xr(self._on_frame, self._on_state)
            return

        self.server = WebServer(self.config.web_config(), on_frame=self._on_frame, on_state=self._on_state)
        try:
            self.server.start()
        except ConfigError as exc:
            raise DeviceError(f"webxr: {exc}") from None
        logger.info("webxr: open %s on the headset (certificate SHA-256 %s)", self.server.urls()[0],
                       self.server.cert.sha256 if self.server.cert else "?")

    def _close(self) -> None:
        if self._shared is not None and self.server is not None:
            self.server.attach_xr(lambda msg, t: None, lambda state: None)
        elif self.server is not None:
            self.server.stop()
        self.server = None

    def _read(self) -> list[Sample] | None:
        with self._arrived:
            if not self._frames and not self._arrived.wait(0.1):
                return self._release_if_gone()
            if not self._frames:
                return self._release_if_gone()
            msg, recv_ns = self._frames.popleft()
        if time.monotonic_ns() - recv_ns > self.config.stale_timeout_s * 1e9:
            self.count("stale_frame")  # this thread was stalled: an old pose must not drive
            return None
        return self._samples(msg, recv_ns) or None

    def _release_if_gone(self) -> list[Sample] | None:
        if self._visible or not any(self._held.values()):
            return None
        now = time.monotonic_ns()
        events: list[Sample] = [ButtonEvent(now, self.next_seq(), f"{side}_{button}", False, side, self.name)
                                for (side, button), held in self._held.items() if held]
        self._held.clear()
        return events

    # -- frames -> samples ------------------------------------------------------------------------
    def _samples(self, msg: XRFrameMsg, recv_ns: int) -> list[Sample]:
        out: list[Sample] = []
        for side in ("left", "right"):
            if self.config.side not in (None, side):
                continue
            try:
                if side in msg.hands:
                    out += self._hand(side, msg.hands[side], recv_ns)
                elif side in msg.controllers:
                    out += self._controller(side, msg.controllers[side], recv_ns)
            except (ValueError, DeviceError) as exc:  # a degenerate hand (all joints on one point)
                self.count("bad_hand", str(exc)[:80])
        return out

    def _hand(self, side: Side, hand: XRHandFrame, t: int) -> list[Sample]:
        from retarget.offline import to_wrist_frame, wrist_frame_from_keypoints

        kp_world = to_mediapipe(hand.joints_m, "webxr25", "yup", "m")
        pos, rot = wrist_frame_from_keypoints(kp_world[None], side)
        kp = to_wrist_frame(kp_world[None], pos, rot)[0]
        pinch = float(np.linalg.norm(kp[_THUMB_TIP] - kp[_INDEX_TIP]))
        quat = np.zeros(4)
        mat_to_quat(np.ascontiguousarray(rot[0]), quat)
        return [HandSample(side=side, capture_ns=t, seq=self.next_seq(), keypoints=kp, channels=np.array([pinch]),
                           source=self.name),
                PoseSample(side=side, capture_ns=t, seq=self.next_seq(), position_m=pos[0].copy(), quat_wxyz=quat,
                           frame="tracker", source=self.name)]

    def _controller(self, side: Side, ctl: XRController, t: int) -> list[Sample]:
        if side not in self._gloves:
            from drivers.hands import GloveHand

            self._gloves[side] = GloveHand(side, self.config.hand_length_m)
        curls = np.array([ctl.trigger, ctl.trigger, ctl.squeeze, ctl.squeeze, ctl.squeeze])
        kp, angles = self._gloves[side].from_curls(curls)  # type: ignore[attr-defined]
        x, y, z, w = ctl.grip.quat_xyzw
        rot = np.zeros((3, 3))
        quat_to_mat(np.array([w, x, y, z]), rot)
        p, r = convert_pose(ctl.grip.position_m, rot, "yup", "m")
        quat = np.zeros(4)
        mat_to_quat(np.ascontiguousarray(r), quat)
        out: list[Sample] = self._button_events(side, ctl.buttons, t)
        out += [HandSample(side=side, capture_ns=t, seq=self.next_seq(), keypoints=kp, angles=angles,
                           channels=np.array([np.linalg.norm(kp[_THUMB_TIP] - kp[_INDEX_TIP])]),
                           buttons=ctl.buttons, source=self.name),
                PoseSample(side=side, capture_ns=t, seq=self.next_seq(), position_m=p, quat_wxyz=quat,
                           frame="tracker", buttons=ctl.buttons, source=self.name)]
        return out

    def _button_events(self, side: Side, pressed: frozenset[str], t: int) -> list[Sample]:
        events: list[Sample] = []
        for button in sorted(pressed | {b for (s, b), held in self._held.items() if s == side and held}):
            now = button in pressed
            if self._held.get((side, button), False) != now:
                self._held[(side, button)] = now
                events.append(ButtonEvent(t, self.next_seq(), f"{side}_{button}", now, side, self.name))
        return events

    def health(self):
        h = super().health()
        if self.server is not None:
            h.errors.update({f"web:{k}": v for k, v in self.server.stats().items()
                             if k not in ("frames", "camera_sent")})
        return h
