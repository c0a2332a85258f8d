"""Numba kernels of the robot server's per-step path (in-place, allocation-free)."""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["rate_limit_step"]


@numba.njit(cache=True, nogil=True)
def rate_limit_step(desired: np.ndarray, target: np.ndarray, max_step: np.ndarray) -> bool:
    """Move ``target`` toward ``desired`` by at most ``max_step`` per joint, in place.
    Returns True when some joint was limited. Shapes (n,)."""
    limited = False
    for i in range(target.shape[0]):
        delta = desired[i] - target[i]
        if delta > max_step[i]:
            delta = max_step[i]
            limited = True
        elif delta < -max_step[i]:
            delta = -max_step[i]
            limited = True
        target[i] += delta
    return limited
