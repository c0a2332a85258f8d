"""Safety: the arbiter picks who drives (teleop/session/arbiter.py), the safety filter moves the
command toward it within the joint limits, the velocity bound (commands are at least a period
apart: teleop/session/pipeline.py) and the ramp, keeping the wrists apart (teleop/session/safety.py)."""

from __future__ import annotations

import time

from teleop.session.arbiter import Arbiter
from teleop.session.frame import Frame
from teleop.session.safety import SafetyFilter

__all__ = ["SafetyStage"]


class SafetyStage:
    name = "safety"

    def __init__(self, arbiter: Arbiter, safety: SafetyFilter) -> None:
        self.arbiter, self.safety = arbiter, safety

    def step(self, f: Frame) -> None:
        f.flags = 0
        if f.send:
            target, ramp = self.arbiter.choose(f)
            if target is not None:
                f.flags = self.safety.step(target, f.q_cmd, f.q_next, ramp)
                self.arbiter.settle(f, f.flags)
                f.q_cmd[:] = f.q_next
        self.arbiter.count_tick(f)
        f.stamps[4] = time.monotonic_ns()
