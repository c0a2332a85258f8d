"""The frame: everything one pass of the session pipeline reads and writes, allocated once.

Stages (teleop/session/stages/) take the frame and fill their part of it, in pipeline order:
inputs -> controls -> robot state -> policy -> state machine -> retarget -> safety -> output ->
tap -> haptics -> status. Arrays are overwritten in place, never rebound (hooks and the tap hold
references to them), so a pass allocates nothing of its own.

Input slots are ``2 * side + role`` (role 0 hand, 1 wrist): left hand, left wrist, right hand,
right wrist, the order of a command's ``source_capture_ns``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Frame", "SLOTS", "STAMPS"]

SLOTS = 4
#: The command path's timestamps the loop takes (monotonic ns), in order; the robot server adds
#: when it received the command and when it became its setpoint (teleop/session/trace.py).
STAMPS = ("capture", "delivered", "picked", "retargeted", "safe", "sent")


def _f(*shape: int, fill: float = 0.0) -> Any:
    return field(default_factory=lambda: np.full(shape, fill))


def _i(*shape: int) -> Any:
    return field(default_factory=lambda: np.zeros(shape, dtype=np.int64))


@dataclass(eq=False)
class Frame:
    n: int  # commanded joints

    # -- the pass
    tick: int = 0  # fixed-rate ticks so far
    is_tick: bool = True  # a fixed-rate tick (every stage), else a sample pass (the command path only)
    now_ns: int = 0  # when the pass started (monotonic)
    loop_was_away: bool = False  # the process stalled before this pass: staleness is judged next tick

    # -- inputs: the newest fresh sample of every slot
    keypoints: np.ndarray = _f(2, 21, 3)
    wrist_pos: np.ndarray = _f(2, 3)
    wrist_quat: np.ndarray = field(default_factory=lambda: np.tile([1.0, 0.0, 0.0, 0.0], (2, 1)))
    have: np.ndarray = field(default_factory=lambda: np.zeros((2, 2), dtype=bool))  # [side, role] fresh now
    no_keypoints: list = field(default_factory=lambda: [None, None])  # per side: fresh, but no keypoints
    captures: np.ndarray = _i(SLOTS)  # capture time of each slot's sample (0: none yet)
    delivered: np.ndarray = _i(SLOTS)  # when its driver handed it over (0: the driver does not say)
    used: np.ndarray = _i(SLOTS)  # the captures the previous command was computed from
    inputs_ok: bool = False  # every configured input has a fresh sample
    new_sample: bool = False  # a sample the previous command did not use
    trigger: int = -1  # the slot of the newest sample (what the command reacts to)

    # -- the robot
    robot_state: Any = None  # the newest RobotState of our instance
    fresh_state: Any = None  # a state read in this pass, else None

    # -- targets and the command
    q_target: np.ndarray = None  # type: ignore[assignment]  # retargeted (the operator's)
    q_policy: np.ndarray = None  # type: ignore[assignment]  # the policy's action for now
    have_policy: bool = False
    q_cmd: np.ndarray = None  # type: ignore[assignment]  # what the robot is commanded (after safety)
    q_next: np.ndarray = None  # type: ignore[assignment]  # the safety filter's output
    flags: int = 0  # the safety filter's flag bits this pass
    author: int = 2  # 0 human, 1 policy, 2 hold (teleop.session.tap.AUTHORS)
    send: bool = True  # a command goes out in this pass
    sent: bool = False  # one went out
    last_sent_ns: int = 0

    # -- the command path's stamps (STAMPS) of this pass's command
    stamps: np.ndarray = _i(len(STAMPS))

    def __post_init__(self) -> None:
        self.keypoints[:, 1:, 0] = np.linspace(0.02, 0.18, 20)  # a flat hand until a glove speaks
        for name in ("q_target", "q_policy", "q_cmd", "q_next"):
            setattr(self, name, np.zeros(self.n))
