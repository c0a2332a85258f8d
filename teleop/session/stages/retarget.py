"""Retarget: the operator's hands and wrists -> joint targets (one numba call), whenever every
input is fresh and a command is due (in fixed mode every tick, so the filters and warm starts
stay current)."""

from __future__ import annotations

import time

from teleop.session.frame import Frame

__all__ = ["RetargetStage"]


class RetargetStage:
    name = "retarget"

    def __init__(self, retarget) -> None:
        self.retarget = retarget

    def step(self, f: Frame) -> None:
        if f.inputs_ok and f.send:
            self.retarget.tick(f.now_ns / 1e9, f.keypoints, f.wrist_pos, f.wrist_quat, f.q_target)
        f.stamps[3] = time.monotonic_ns()
