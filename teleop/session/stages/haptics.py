"""Haptics: the robot's fingertip contact forces -> force feedback on the gloves that take it,
at ``haptics.rate_hz`` (teleop/session/haptics.py maps forces to levels)."""

from __future__ import annotations

from drivers.samples import HapticFeedback
from teleop.session.frame import Frame
from teleop.session.haptics import HapticsMapper
from teleop.types import SIDES

__all__ = ["HapticsStage"]


class HapticsStage:
    name = "haptics"

    def __init__(self, session, mapper: HapticsMapper) -> None:
        cfg = session.config
        self.mapper = mapper
        self.every = max(1, round(cfg.rate_hz / cfg.haptics.rate_hz)) if cfg.haptics.enabled else 0
        self.gloves = [(i, dev) for i, side in enumerate(SIDES)
                       if (dev := session.input_device(side, 0)) is not None and dev.sample_spec.feedback]

    def step(self, f: Frame) -> None:
        if not self.every or f.tick % self.every or f.robot_state is None:
            return
        levels = self.mapper.update(f.robot_state.fingertip_force, f.now_ns / 1e9)
        for i, dev in self.gloves:
            dev.send_feedback(HapticFeedback(force=levels[i].copy()))
