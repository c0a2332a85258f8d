"""Errors of the vision package (under the runtime's one root, ``teleop.errors.TeleopError``)."""

from __future__ import annotations

from teleop.errors import TeleopError

__all__ = ["CalibrationError"]


class CalibrationError(TeleopError, ValueError):
    """The pictures cannot give a calibration (too few show the board, the poses do not turn
    enough); the message says what to take again."""
