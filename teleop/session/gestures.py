"""Hand gestures as control sources (``gesture:right_pinch`` in a session's [controls]): the
operator's own keypoints, no extra device. A gesture is "pressed" once held for ``hold_s`` and
released when it ends, so a pinch made while driving a grasp does not fire by accident.

* ``<side>_pinch``: thumb tip to index tip closer than 2 cm.
* ``<side>_fist``: the four fingertips, on average, closer to the wrist than the middle finger's
  knuckle (MCP) is: a closed hand whatever its size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GESTURES", "GestureDetector"]

GESTURES = ("left_pinch", "right_pinch", "left_fist", "right_fist")
_TIPS = (8, 12, 16, 20)
PINCH_M = 0.02


def _active(name: str, kp: np.ndarray) -> bool:
    if name.endswith("_pinch"):
        return float(np.linalg.norm(kp[4] - kp[8])) < PINCH_M
    mcp = float(np.linalg.norm(kp[9] - kp[0]))
    tips = float(np.mean([np.linalg.norm(kp[i] - kp[0]) for i in _TIPS]))
    return mcp > 1e-3 and tips < mcp


class GestureDetector:
    """Edge events of the configured gestures from the newest keypoints of each hand."""

    def __init__(self, names: list[str], rate_hz: float, hold_s: float = 0.3) -> None:
        self.names = [n for n in GESTURES if n in set(names)]
        self.hold_ticks = max(1, round(hold_s * rate_hz))
        self._count = dict.fromkeys(self.names, 0)
        self._pressed = dict.fromkeys(self.names, False)

    def update(self, kp: np.ndarray, fresh: np.ndarray) -> list[tuple[str, bool]]:
        """``kp`` (2, 21, 3) left/right keypoints, ``fresh`` (2,) which sides have a new sample.
        Returns (``gesture:<name>``, pressed) edges."""
        out = []
        for name in self.names:
            side = 0 if name.startswith("left") else 1
            on = bool(fresh[side]) and _active(name, kp[side])
            self._count[name] = self._count[name] + 1 if on else 0
            pressed = self._count[name] >= self.hold_ticks
            if pressed != self._pressed[name] and (pressed or not on):
                self._pressed[name] = pressed
                out.append((f"gesture:{name}", pressed))
        return out
