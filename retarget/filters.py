"""One-Euro filters for glove channels, 21 keypoints and wrist poses (Casiez et al., CHI 2012).

The One-Euro filter is a first-order low-pass whose cutoff rises with the (low-passed) speed of
the signal: ``cutoff = min_cutoff_hz + beta * |dx/dt|``. Slow motion is smoothed hard (jitter
goes), fast motion passes with little lag. Tuning: set ``beta = 0`` and lower ``min_cutoff_hz``
until the jitter at rest is acceptable, then raise ``beta`` until fast moves stop lagging.
``beta`` has the units of 1 / (signal unit): 1/m for positions, 1/rad for angles.

Orientation (``PoseFilter``) is filtered on the rotation manifold, not per quaternion component:
the increment from the previous output to the sample is a rotation vector (the tangent space at
the previous output), its rate is the angular velocity whose norm sets the cutoff, and the
low-pass step moves along the geodesic. Why: the result does not depend on the frame the
rotation is expressed in (a component-wise filter does), the cutoff reacts to the angular speed
rather than to arbitrary component changes, the shortest-arc logarithm makes ``q`` and ``-q``
identical inputs (no hemisphere bookkeeping), and the output is a unit quaternion by
construction (renormalised only against rounding). Component-wise filtering with hemisphere
alignment and renormalisation would be cheaper by a few multiplications but only approximate
this for small increments.

Timestamps are seconds on one monotonic clock. A sample whose timestamp does not advance
(``dt <= 0``, or NaN) returns the previous output unchanged and does not touch the state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from retarget.kernels.filters import one_euro_step, so3_one_euro_step
from teleop.errors import ConfigError

__all__ = ["FilterConfig", "OneEuroFilter", "KeypointFilter", "PoseFilter", "FilteredPose"]


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return v


@dataclass(frozen=True, kw_only=True)
class FilterConfig:
    """One-Euro parameters. ``min_cutoff_hz`` and ``d_cutoff_hz`` must be > 0, ``beta`` >= 0."""

    min_cutoff_hz: float = 1.0
    beta: float = 0.0
    d_cutoff_hz: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _number(f.name, getattr(self, f.name)))
        for name in ("min_cutoff_hz", "d_cutoff_hz"):
            if not getattr(self, name) > 0.0:
                raise ConfigError(f"{name}={getattr(self, name)!r}: must be > 0 Hz")
        if self.beta < 0.0:
            raise ConfigError(f"beta={self.beta!r}: must be >= 0 (0 disables speed adaptation)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FilterConfig:
        """Build from a parsed TOML/JSON table; missing keys take the defaults."""
        if not isinstance(data, dict):
            raise ConfigError(f"a filter config must be a table/dict, got {type(data).__name__}")
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(f"unknown filter key(s) {unknown}; allowed keys: {allowed}")
        return cls(**data)

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class OneEuroFilter:
    """One-Euro filter over ``n`` channels sharing one clock; state preallocated at construction."""

    def __init__(
        self, n: int, min_cutoff_hz: float = 1.0, beta: float = 0.0, d_cutoff_hz: float = 1.0
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"n={n!r}: the channel count must be a positive int")
        self.n = int(n)
        self.config = FilterConfig(min_cutoff_hz=min_cutoff_hz, beta=beta, d_cutoff_hz=d_cutoff_hz)
        self._x_prev = np.zeros(self.n)
        self._dx_prev = np.zeros(self.n)
        self._t_prev = np.zeros(1)
        self._initialised = np.zeros(1, dtype=np.bool_)

    @classmethod
    def from_config(cls, n: int, config: FilterConfig) -> OneEuroFilter:
        return cls(
            n, min_cutoff_hz=config.min_cutoff_hz, beta=config.beta, d_cutoff_hz=config.d_cutoff_hz
        )

    def filter(
        self, x: npt.ArrayLike, t_s: float, out: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """Filtered ``x`` (Shape (n,)) at time ``t_s``. ``out`` may be ``x`` itself."""
        xa = np.ascontiguousarray(x, dtype=np.float64)
        if xa.shape != (self.n,):
            raise ValueError(f"x must have shape ({self.n},), got {xa.shape}")
        if out is None:
            out = np.empty(self.n)
        elif out.shape != (self.n,) or out.dtype != np.float64:
            raise ValueError(
                f"out must be a float64 array of shape ({self.n},), got {out.dtype} {out.shape}"
            )
        c = self.config
        one_euro_step(
            xa, float(t_s), self._x_prev, self._dx_prev, self._t_prev, self._initialised,
            c.min_cutoff_hz, c.beta, c.d_cutoff_hz, out,
        )  # fmt: skip
        return out

    def reset(self) -> None:
        """Forget the history: the next sample passes through unchanged."""
        self._initialised[0] = False

    @property
    def initialised(self) -> bool:
        return bool(self._initialised[0])


class KeypointFilter:
    """One-Euro filter for 21 keypoints, Shape (21, 3) (63 channels, one clock)."""

    def __init__(self, config: FilterConfig | None = None) -> None:
        self.config = config or FilterConfig()
        self._f = OneEuroFilter.from_config(63, self.config)

    def filter(
        self, keypoints: npt.ArrayLike, t_s: float, out: npt.NDArray[np.float64] | None = None
    ) -> npt.NDArray[np.float64]:
        """Filtered keypoints, Shape (21, 3). ``out`` may be ``keypoints`` itself."""
        k = np.ascontiguousarray(keypoints, dtype=np.float64)
        if k.shape != (21, 3):
            raise ValueError(f"keypoints must have shape (21, 3), got {k.shape}")
        if out is None:
            out = np.empty((21, 3))
        elif out.shape != (21, 3) or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be a C-contiguous float64 (21, 3) array, got {out.dtype} {out.shape}"
            )
        self._f.filter(k.reshape(63), t_s, out.reshape(63))
        return out

    def reset(self) -> None:
        self._f.reset()


class FilteredPose(NamedTuple):
    position_m: npt.NDArray[np.float64]  # Shape (3,)
    quat_wxyz: npt.NDArray[np.float64]  # Shape (4,), unit norm


class PoseFilter:
    """Wrist pose filter: position by a 3-channel One-Euro filter (``position``, beta in 1/m),
    orientation by the One-Euro filter on SO(3) (``orientation``, beta in 1/rad; see the module
    docstring). Output quaternions are unit norm and never flip hemisphere between calls."""

    def __init__(
        self, position: FilterConfig | None = None, orientation: FilterConfig | None = None
    ) -> None:
        self.position_config = position or FilterConfig()
        self.orientation_config = orientation or FilterConfig()
        self._pos = OneEuroFilter.from_config(3, self.position_config)
        self._q_prev = np.array([1.0, 0.0, 0.0, 0.0])
        self._w_prev = np.zeros(3)
        self._t_prev = np.zeros(1)
        self._initialised = np.zeros(1, dtype=np.bool_)

    def filter(
        self,
        position_m: npt.ArrayLike,
        quat_wxyz: npt.ArrayLike,
        t_s: float,
        out_position_m: npt.NDArray[np.float64] | None = None,
        out_quat_wxyz: npt.NDArray[np.float64] | None = None,
    ) -> FilteredPose:
        """Filtered pose at ``t_s``.

        ``position_m`` Shape (3,); ``quat_wxyz`` Shape (4,) as (w, x, y, z), need not be
        normalised (a zero quaternion is treated as a missing orientation: previous output).
        """
        q = np.ascontiguousarray(quat_wxyz, dtype=np.float64)
        if q.shape != (4,):
            raise ValueError(f"quat_wxyz must have shape (4,), got {q.shape}")
        if out_quat_wxyz is None:
            out_quat_wxyz = np.empty(4)
        elif out_quat_wxyz.shape != (4,) or out_quat_wxyz.dtype != np.float64:
            raise ValueError(
                f"out_quat_wxyz must be a float64 array of shape (4,), got {out_quat_wxyz.shape}"
            )
        p = self._pos.filter(position_m, t_s, out_position_m)
        c = self.orientation_config
        so3_one_euro_step(
            q, float(t_s), self._q_prev, self._w_prev, self._t_prev, self._initialised,
            c.min_cutoff_hz, c.beta, c.d_cutoff_hz, out_quat_wxyz,
        )  # fmt: skip
        return FilteredPose(p, out_quat_wxyz)

    def reset(self) -> None:
        self._pos.reset()
        self._initialised[0] = False
