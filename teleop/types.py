"""Small shared types."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["Side", "SIDES"]

Side = Literal["left", "right"]
SIDES: Final[tuple[Side, Side]] = ("left", "right")
