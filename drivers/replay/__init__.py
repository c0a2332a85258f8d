"""Replay of recorded samples (JSON lines as written by ``teleop drivers echo NAME --json``)."""

from drivers.replay.config_replay import ReplayConfig
from drivers.replay.replay import ReplayDriver, load_samples

__all__ = ["ReplayConfig", "ReplayDriver", "load_samples"]
