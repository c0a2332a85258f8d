"""HID devices through declarative TOML mappings: the generic ``hid`` driver, ``spacemouse`` and
``foot_pedal`` (docs/hid-mappings.md). ``mapping`` is pure parsing/decoding; ``hid`` holds the
drivers (imported lazily here so ``python -m drivers.hid.hid`` runs cleanly)."""

from __future__ import annotations

from typing import Any

from drivers.hid.config_hid import FootPedalConfig, HidConfig, SpaceMouseConfig
from drivers.hid.mapping import HidMapping, HidState, decode_report, load_mapping, parse_mapping

__all__ = [
    "HidConfig",
    "SpaceMouseConfig",
    "FootPedalConfig",
    "HidMapping",
    "HidState",
    "decode_report",
    "load_mapping",
    "parse_mapping",
    "HidDriver",
    "SpaceMouseDriver",
    "FootPedalDriver",
]

_LAZY = {"HidDriver", "SpaceMouseDriver", "FootPedalDriver"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from drivers.hid import hid

        return getattr(hid, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
