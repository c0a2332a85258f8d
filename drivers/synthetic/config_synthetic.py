from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from drivers.config import DriverConfig
from teleop.errors import ConfigError

__all__ = ["SyntheticConfig"]


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig(DriverConfig):
    """``script``: which motion (``drivers.synthetic.script.SCRIPTS``); ``speed`` scales time;
    samples are a pure function of the sample index, so two runs give identical data."""

    side: Literal["left", "right"] = "right"
    script: Literal["bimanual_demo", "pick_handover", "hand_poses"] = "bimanual_demo"
    rate_hz: float = 100.0
    speed: float = 1.0
    loop: bool = True
    hand_length_m: float = 0.185
    emit_hand: bool = True
    emit_pose: bool = True
    noise_m: float = 0.0  # Gaussian keypoint noise (seeded), to exercise filters
    seed: int = 0
    # moves this wrist's whole motion after the first keyframe by (dx, dy, dz) [m], blended in over the
    # second keyframe: a scripted operator that reaches for an object moved from its home position
    shift_m: tuple[float, ...] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.rate_hz <= 2000:
            raise ConfigError(f"rate_hz={self.rate_hz}: must be within (0, 2000]")
        if not self.speed > 0:
            raise ConfigError(f"speed={self.speed}: must be > 0")
        if not (self.emit_hand or self.emit_pose):
            raise ConfigError("emit_hand and emit_pose are both false: the driver would emit nothing")
        if len(self.shift_m) != 3 or max(abs(v) for v in self.shift_m) > 0.3:
            raise ConfigError(f"shift_m={self.shift_m}: three values [m], each within +-0.3")
        if not 0.1 <= self.hand_length_m <= 0.3:
            raise ConfigError(f"hand_length_m={self.hand_length_m}: must be within 0.1..0.3 m")
