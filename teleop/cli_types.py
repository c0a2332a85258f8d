"""argparse ``type=`` functions for the numeric options of every ``teleop`` subcommand.

Each is finite (``nan``, ``inf`` and ``1e999`` never pass), within the range the option allows,
and whole when it counts something (``2.5`` is an error, never truncated). A bad value is an
argparse usage error (exit code 2) whose message says the range, e.g.
``teleop run: error: argument --seconds: 'nan' is not allowed: give a finite number with 0 < value <= 10000000 [s]``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from teleop.tomlcfg import describe_range

__all__ = ["finite_float", "int_in", "port_base", "seconds", "export_fps", "MAX_SECONDS", "MIN_PORT", "MAX_PORT"]

#: Longest duration any ``--seconds`` / ``--duration`` takes (about 115 days; leave it out to run until Ctrl-C).
MAX_SECONDS = 1e7
#: Port bases start above the privileged ports; the last port a command uses must exist.
MIN_PORT = 1024
MAX_PORT = 65535


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _refuse(text: str, allowed: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{text!r} is not allowed: give {allowed}")


def finite_float(low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False, unit: str = "") -> Callable[[str], float]:
    """A finite float within ``[low, high]`` (open at either end with ``low_open``/``high_open``)."""
    allowed = describe_range(low, high, low_open=low_open, high_open=high_open) + (f" [{unit}]" if unit else "")

    def parse(text: str) -> float:
        value = _number(text)
        if (
            not math.isfinite(value)
            or (low is not None and (value < low or (low_open and value == low)))
            or (high is not None and (value > high or (high_open and value == high)))
        ):
            raise _refuse(text, allowed)
        return value

    parse.__name__ = "number"
    return parse


def int_in(low: int, high: int, what: str = "") -> Callable[[str], int]:
    """A whole number in ``low..high`` (inclusive). ``"8"`` and ``"8.0"`` pass, ``"8.5"`` does not."""
    allowed = describe_range(low, high, integer=True) + (f" ({what})" if what else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            number = _number(text)
            if not (math.isfinite(number) and number.is_integer()):
                raise _refuse(text, allowed) from None
            value = int(number)
        if not low <= value <= high:
            raise _refuse(text, allowed)
        return value

    parse.__name__ = "whole number"
    return parse


def port_base(ports_above: int) -> Callable[[str], int]:
    """A port base for a command that uses the ports ``base .. base + ports_above``."""
    return int_in(MIN_PORT, MAX_PORT - ports_above, f"this command uses the ports up to port base + {ports_above}")


#: ``--seconds`` / ``--duration``: how long to run, > 0 (leave the option out to run until stopped).
seconds = finite_float(0, MAX_SECONDS, low_open=True, unit="s")


def export_fps(text: str) -> int:
    """``teleop export --fps``: the exporters' own rule (a whole number in 1..MAX_FPS)."""
    from recorder.export.common import check_fps
    from teleop.errors import ConfigError

    try:
        return check_fps(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
