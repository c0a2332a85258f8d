from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drivers.config import DriverConfig
from teleop.errors import ConfigError

__all__ = ["ReplayConfig"]


@dataclass(frozen=True, kw_only=True)
class ReplayConfig(DriverConfig):
    """``path``: a JSON-lines file from ``teleop drivers echo NAME --json``. Samples come out with
    their original spacing divided by ``speed``, stamped with the current time; ``side`` keeps only
    that side's samples (and re-labels unhanded ones)."""

    path: Path
    speed: float = 1.0
    loop: bool = False
    reconnect: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.speed > 0:
            raise ConfigError(f"speed={self.speed}: must be > 0")
