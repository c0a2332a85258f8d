"""The session tap: everything the session sees and does, published on the bus for the
recorder (and any other observer) without slowing the loop.

* The loop hands over each tick's command by copying it into a preallocated ring
  (``command()``: a few array copies, no allocation, no encoding, no socket call).
* Driver threads hand over their samples through ``sample()`` (a deque append).
* Events (state changes, faults, episode controls, clock offsets) come from any thread.
* One publisher thread encodes and sends them all on one PUB socket. If it ever falls a whole
  ring behind, the overwritten commands are counted (``dropped``), never waited for.

Topics: ``session/command``, ``session/event``, ``session/info``, ``session/robot_spec``,
``session/hand/<device>``, ``session/pose/<device>``, ``session/tactile/<device>``,
``session/button/<device>``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from drivers.samples import ButtonEvent, HandSample, PoseSample, TactileSample
from teleop.bus.codec import Message
from teleop.bus.messages import (
    ButtonMsg,
    HandSampleMsg,
    PoseSampleMsg,
    RobotSpec,
    SessionCommand,
    SessionEvent,
    SessionInfo,
    TactileSampleMsg,
)
from teleop.bus.security import CurveKeys
from teleop.bus.sockets import Bus

__all__ = ["SessionTap", "STATES", "AUTHORS"]

logger = logging.getLogger(__name__)

STATES = ("idle", "ramping", "engaged", "stale", "estop", "policy", "returning", "lost")
AUTHORS = ("human", "policy", "hold")
_EMPTY = np.zeros(0)
_EMPTY_KP = np.zeros((0, 3))
_EMPTY_IMG = np.zeros((0, 0, 3), np.uint8)


class SessionTap:
    def __init__(self, endpoint: str, n_joints: int, *, keys: CurveKeys | None = None, ring: int = 4096,
                 source: str = "session") -> None:
        self.endpoint = endpoint
        self.n = n_joints
        self._bus = Bus(source, keys=keys)
        self._pub = self._bus.publisher(endpoint, bind=True, sndhwm=100_000)
        self.R = ring
        self._tick = np.zeros(ring, np.int64)
        self._t_ns = np.zeros(ring, np.int64)
        self._q = np.zeros((ring, n_joints))
        self._target = np.zeros((ring, n_joints))
        self._policy = np.zeros((ring, n_joints))
        self._has_policy = np.zeros(ring, bool)
        self._state = np.zeros(ring, np.int8)
        self._author = np.zeros(ring, np.int8)
        self._interv = np.zeros(ring, bool)
        self._flags = np.zeros(ring, np.int64)
        self._captures = np.zeros((ring, 4), np.int64)
        self._n_captures = np.zeros(ring, np.int8)
        self._head = 0  # commands written by the loop (only the loop writes it)
        self._tail = 0  # commands sent (only the publisher thread writes it)
        self._queue: deque[tuple[str, Message, int | None]] = deque()
        self._info: list[Message] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.sent = 0

    # -- producers -----------------------------------------------------------------------------
    def command(self, tick: int, t_ns: int, state: int, q: np.ndarray, target: np.ndarray, flags: int,
                captures: np.ndarray | None, author: int = 0, intervention: bool = False,
                policy_q: np.ndarray | None = None) -> None:
        """Called by the loop once per tick; copies into the ring (no allocation)."""
        i = self._head % self.R
        self._tick[i] = tick
        self._t_ns[i] = t_ns
        self._state[i] = state
        self._q[i] = q
        self._target[i] = target
        self._flags[i] = flags
        self._author[i] = author
        self._interv[i] = intervention
        if captures is None:
            self._n_captures[i] = 0
        else:
            self._captures[i] = captures
            self._n_captures[i] = len(captures)
        if policy_q is None:
            self._has_policy[i] = False
        else:
            self._policy[i] = policy_q
            self._has_policy[i] = True
        self._head += 1  # published last: the row is complete when the thread sees it

    def sample(self, device: str, s: Any, by_side: bool = False) -> None:
        """Driver-thread hook (``Driver.add_tap``): convert and queue one sample. ``by_side``: the
        device sees both hands (a camera), so each side's hands and wrists get a stream of their own
        (``session/hand/<device>_<side>``): an episode and its exports never mix the two hands."""
        msg: Message
        stream = f"{device}_{s.side}" if by_side and getattr(s, "side", None) else device
        if type(s) is HandSample:
            msg = HandSampleMsg(device=device, side=s.side or "", seq=s.seq,
                                keypoints=_EMPTY_KP if s.keypoints is None else s.keypoints,
                                angles=_EMPTY if s.angles is None else s.angles, channels=s.channels,
                                buttons=tuple(sorted(s.buttons)))
            topic = f"session/hand/{stream}"
        elif type(s) is PoseSample:
            msg = PoseSampleMsg(device=device, side=s.side or "", seq=s.seq, position_m=s.position_m,
                                quat_wxyz=s.quat_wxyz, frame=s.frame, channels=s.channels)
            topic = f"session/pose/{stream}"
        elif type(s) is TactileSample:
            msg = TactileSampleMsg(device=device, side=s.side or "", finger=s.finger, seq=s.seq,
                                   markers_px=s.markers_px, displacement_px=s.displacement_px,
                                   contact_mask=s.contact_mask, force_n=s.force_n, torsion_nm=float(s.torsion_nm),
                                   image=_EMPTY_IMG if s.image is None else s.image)
            topic = f"session/tactile/{device}"
        elif type(s) is ButtonEvent:
            msg = ButtonMsg(device=device, button=s.button, pressed=s.pressed, side=s.side or "")
            topic = f"session/button/{device}"
        else:
            return
        self._queue.append((topic, msg, s.capture_ns))

    def event(self, event: str, detail: str = "", **values: Any) -> None:
        self._queue.append(("session/event", SessionEvent(event=event, detail=detail, values=values), None))

    def set_info(self, info: SessionInfo, spec: RobotSpec) -> None:
        """Published at once and then every second (a recorder started later still learns it)."""
        self._info = [info, spec]
        self._queue.append(("session/info", info, None))
        self._queue.append(("session/robot_spec", spec, None))

    # -- the publisher thread --------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="session-tap", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None
        self._bus.close()

    def _run(self) -> None:
        next_info = time.monotonic() + 1.0
        while True:
            stopping = self._stop.is_set()
            try:
                self._drain()
                if time.monotonic() >= next_info:
                    next_info += 1.0
                    for m in self._info:
                        self._pub.publish(m, "session/info" if isinstance(m, SessionInfo) else "session/robot_spec")
            except Exception:  # a bad sample must not end the tap; say so and go on
                logger.exception("session tap: publishing failed")
            if stopping:
                return
            self._stop.wait(0.002)

    def _drain(self) -> None:
        head = self._head
        if head - self._tail > self.R:  # the loop lapped us: those rows are gone
            self.dropped += head - self._tail - self.R
            self._tail = head - self.R
        pub = self._pub
        while self._tail < head:
            i = self._tail % self.R
            k = int(self._n_captures[i])
            msg = SessionCommand(
                tick=int(self._tick[i]), state=STATES[self._state[i]], q=self._q[i].copy(),
                target=self._target[i].copy(), author=AUTHORS[self._author[i]], intervention=bool(self._interv[i]),
                policy_q=self._policy[i].copy() if self._has_policy[i] else _EMPTY, flags=int(self._flags[i]),
                source_capture_ns=self._captures[i, :k].copy(),
            )
            pub.publish(msg, "session/command", int(self._t_ns[i]))
            self._tail += 1
            self.sent += 1
        q = self._queue
        while q:
            topic, msg, t = q.popleft()
            pub.publish(msg, topic, t)
            self.sent += 1
