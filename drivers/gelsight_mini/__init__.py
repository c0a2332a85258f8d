"""GelSight Mini optical tactile sensor: capture, numba tactile pipeline and driver (docs/gelsight.md)."""

from drivers.gelsight_mini.config_gelsight_mini import GelSightMiniConfig

__all__ = ["GelSightMiniConfig"]
