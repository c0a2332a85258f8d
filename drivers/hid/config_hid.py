"""Options of the HID drivers (``hid``, ``spacemouse``, ``foot_pedal``); see docs/hid-mappings.md."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from drivers.config import DriverConfig
from teleop.errors import ConfigError

__all__ = ["HidConfig", "SpaceMouseConfig", "FootPedalConfig", "parse_key_options"]


@dataclass(frozen=True, kw_only=True)
class HidConfig(DriverConfig):
    """``mapping``: a shipped mapping name (drivers/hid/mappings/<name>.toml) or a path to a TOML
    file. Pick one device among several that match with ``path`` (hidapi path as printed by
    ``python -m drivers.hid.hid list``, e.g. ``/dev/hidraw3`` on Linux) or ``serial``.
    ``rate_hz`` is the nominal report rate shown in ``sample_spec`` (0: as fast as the device sends).
    ``read_timeout_s`` bounds one blocking read. When nothing arrives for ``presence_check_s`` the
    driver checks the device is still enumerated, so an unplug is noticed even on a quiet device."""

    mapping: str
    path: str | None = None
    serial: str | None = None
    rate_hz: float = 0.0
    read_timeout_s: float = 0.05
    presence_check_s: float = 1.0

    HELP: ClassVar[dict[str, str]] = {
        "mapping": "shipped mapping name (spacemouse, spacemouse_split, foot_pedal) or a .toml path",
        "path": "hidapi device path, e.g. /dev/hidraw3 (`python -m drivers.hid.hid list`)",
        "serial": "USB serial number, to pick one of several identical devices",
        "rate_hz": "nominal rate shown in sample_spec",
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.mapping:
            raise ConfigError("mapping='': give a shipped mapping name (spacemouse, spacemouse_split, foot_pedal) "
                              "or a path to a mapping TOML file (docs/hid-mappings.md)")
        if self.path is not None and self.serial is not None:
            raise ConfigError(f"path={self.path!r} and serial={self.serial!r}: give one of them, not both")
        if not (self.rate_hz >= 0 and math.isfinite(self.rate_hz)):
            raise ConfigError(f"rate_hz={self.rate_hz}: must be >= 0")
        if not 0 < self.read_timeout_s <= 0.1:
            raise ConfigError(f"read_timeout_s={self.read_timeout_s}: must be in (0, 0.1] (the reader thread stops "
                              "and notices unplugs only between reads)")
        if not self.presence_check_s > 0:
            raise ConfigError(f"presence_check_s={self.presence_check_s}: must be > 0")


@dataclass(frozen=True, kw_only=True)
class SpaceMouseConfig(HidConfig):
    """A SpaceMouse as a 6-DoF wrist for desk testing. Full deflection of an axis moves the pose
    at ``translation_speed_m_s`` / turns it at ``rotation_speed_rad_s``; axis values within
    ``deadband`` (0..1 of full scale) count as zero and the rest is rescaled to stay continuous.
    The pose starts at ``start_position_m`` / ``start_quat_wxyz`` (frame "spacemouse": x right,
    y away from the operator, z up) and returns there while all ``reset_buttons`` are held.
    ``rotation_frame``: "world" turns about the fixed desk axes, "body" about the pose's own axes.
    ``mapping = "auto"`` picks spacemouse or spacemouse_split by VID:PID."""

    mapping: str = "auto"
    rate_hz: float = 100.0
    translation_speed_m_s: float = 0.15
    rotation_speed_rad_s: float = 1.0
    deadband: float = 0.05
    start_position_m: tuple[float, ...] = (0.0, 0.0, 0.0)
    start_quat_wxyz: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0)
    rotation_frame: Literal["world", "body"] = "world"
    reset_buttons: tuple[str, ...] = ("left", "right")
    led: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1.0 <= self.rate_hz <= 1000.0:
            raise ConfigError(f"rate_hz={self.rate_hz}: the pose is emitted at this rate; allowed 1..1000")
        for name in ("translation_speed_m_s", "rotation_speed_rad_s"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"{name}={v}: must be >= 0")
        if not 0 <= self.deadband < 1:
            raise ConfigError(f"deadband={self.deadband}: must be in [0, 1)")
        if len(self.start_position_m) != 3:
            raise ConfigError(f"start_position_m={self.start_position_m}: give 3 numbers x,y,z [m]")
        if len(self.start_quat_wxyz) != 4 or not math.isclose(math.hypot(*self.start_quat_wxyz), 1.0, abs_tol=1e-3):
            raise ConfigError(f"start_quat_wxyz={self.start_quat_wxyz}: give a unit quaternion w,x,y,z")
        if self.rotation_frame not in ("world", "body"):
            raise ConfigError(f"rotation_frame={self.rotation_frame!r}: allowed values: ['world', 'body']")


@dataclass(frozen=True, kw_only=True)
class FootPedalConfig(HidConfig):
    """USB foot pedal read as a keyboard. ``keys`` overrides the mapping's key table, as
    ``key=button`` items, e.g. ``keys=a=clutch,b=intervene,c=episode`` (key names or usage IDs as
    in docs/hid-mappings.md)."""

    mapping: str = "foot_pedal"
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_key_options(self.keys)


def parse_key_options(items: tuple[str, ...]) -> dict[str, str]:
    """``("a=clutch", "b=intervene")`` -> ``{"a": "clutch", "b": "intervene"}``."""
    table: dict[str, str] = {}
    for item in items:
        key, sep, button = item.partition("=")
        if not sep or not key.strip() or not button.strip():
            raise ConfigError(f"keys item {item!r}: write key=button, e.g. keys=a=clutch,b=intervene")
        table[key.strip()] = button.strip()
    return table
