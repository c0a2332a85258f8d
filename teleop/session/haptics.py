"""Contact force at the robot's fingertips -> force feedback per glove finger.

level = clip((|F| - deadband) / (full - deadband), 0, 1) ** exponent, then rate-limited to
``max_change_per_s``. Forces come from the robot state (sim contact forces or a bridge's fingertip
sensors), thumb to pinky per side, in the order of the spec's ``fingertip_names``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from teleop.session.config import HapticsConfig
from teleop.types import SIDES, Side

__all__ = ["HapticsMapper", "FINGERS"]

FINGERS = ("thumb", "index", "middle", "ring", "pinky")


class HapticsMapper:
    def __init__(self, config: HapticsConfig, fingertip_names: tuple[str, ...]) -> None:
        self.config = config
        # row of each (side, finger) in the state's fingertip_force, or -1
        self.rows = np.full((2, 5), -1, dtype=np.int64)
        for k, name in enumerate(fingertip_names):
            for s, side in enumerate(SIDES):
                for f, finger in enumerate(FINGERS):
                    if name.startswith(side) and finger in name:
                        self.rows[s, f] = k
        self.level = np.zeros((2, 5))
        self._mag = np.zeros((2, 5))
        self._t_last = None

    def update(self, fingertip_force: npt.NDArray[np.float64], t_s: float) -> npt.NDArray[np.float64]:
        """New feedback levels (2, 5) in [0, 1] (left, right x thumb..pinky); updated in place."""
        c = self.config
        for s in range(2):
            for f in range(5):
                r = self.rows[s, f]
                self._mag[s, f] = 0.0 if r < 0 else float(np.sqrt(fingertip_force[r] @ fingertip_force[r]))
        target = np.clip((self._mag - c.deadband_n) / (c.full_force_n - c.deadband_n), 0.0, 1.0, out=self._mag)
        if c.exponent != 1.0:
            np.power(target, c.exponent, out=target)
        dt = 0.0 if self._t_last is None else max(0.0, t_s - self._t_last)
        self._t_last = t_s
        step = c.max_change_per_s * dt if dt > 0 else np.inf
        np.clip(target - self.level, -step, step, out=target)
        self.level += target
        return self.level

    def side_levels(self, side: Side) -> npt.NDArray[np.float64]:
        return self.level[SIDES.index(side)]
