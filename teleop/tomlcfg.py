"""Strict TOML reading shared by every config parser: unknown keys, wrong types and missing keys
are ``ConfigError``s that name the key and say what is allowed. Numbers are always finite (TOML
has literal ``nan`` and ``inf``; neither passes any check here), whole numbers are never truncated
(``get_int``: 2.5 is an error), and each comes with its allowed range."""

from __future__ import annotations

import math
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teleop.errors import ConfigError

__all__ = ["load_toml", "check_keys", "get", "get_names", "get_float", "get_int", "check_number", "describe_range",
           "NumberRange"]


def load_toml(path: str | Path, what: str) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def check_keys(table: dict[str, Any], allowed: set[str], where: str, prefix: str = "") -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{prefix}{unknown[0]}'; allowed keys here: {sorted(allowed)}")


def get(table: dict[str, Any], key: str, typ: Any, where: str, prefix: str = "", required: bool = True) -> Any:
    """``table[key]`` checked against ``typ`` (a type or tuple of types; bools never pass as
    numbers). Missing: ConfigError if ``required``, else None."""
    if key not in table:
        if required:
            raise ConfigError(f"{where}: missing key '{prefix}{key}'")
        return None
    value = table[key]
    if (isinstance(value, bool) and typ is not bool) or not isinstance(value, typ):
        want = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise ConfigError(f"{where}: key '{prefix}{key}' must be {want}, got {value!r}")
    return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def describe_range(low: float | None = None, high: float | None = None, *, low_open: bool = False,
                   high_open: bool = False, integer: bool = False) -> str:
    """What a range allows, for error messages: ``a finite number with 0 < value <= 5``,
    ``a finite number with value >= 0``, ``a whole number in 1024..65530`` (integer ranges are
    inclusive)."""
    if integer:
        if low is not None and high is not None:
            return f"a whole number in {_fmt(low)}..{_fmt(high)}"
        if low is not None:
            return f"a whole number >= {_fmt(low)}"
        if high is not None:
            return f"a whole number <= {_fmt(high)}"
        return "a whole number"
    lo = "" if low is None else f"{_fmt(low)} {'<' if low_open else '<='} "
    hi = "" if high is None else f" {'<' if high_open else '<='} {_fmt(high)}"
    return f"a finite number with {lo}value{hi}" if lo or hi else "a finite number"


def check_number(value: Any, name: str, where: str, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False, integer: bool = False) -> Any:
    """``value`` checked: a number (bools are not), finite (NaN and +-inf never pass, whatever the
    range), a whole number when ``integer`` (returned as int; 2.0 passes, 2.5 does not) and within
    the range. ``name`` is the key as the user wrote it (``safety.stale_timeout_s``); the
    ConfigError names it, the value and what is allowed. Returns a float (or an int)."""
    allowed = describe_range(low, high, low_open=low_open, high_open=high_open, integer=integer)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) if isinstance(value, float) else abs(value) <= sys.float_info.max)
        or (integer and isinstance(value, float) and not value.is_integer())
    ):
        raise ConfigError(f"{where}: key '{name}' must be {allowed}, got {value!r}")
    if integer:
        value = int(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(f"{where}: key '{name}' must be {'>' if low_open else '>='} {_fmt(low)} "
                          f"(allowed: {allowed}), got {value!r}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ConfigError(f"{where}: key '{name}' must be {'<' if high_open else '<='} {_fmt(high)} "
                          f"(allowed: {allowed}), got {value!r}")
    return value if integer else float(value)


@dataclass(frozen=True)
class NumberRange:
    """An allowed range, kept next to a config field (``field(metadata={"range": NumberRange(...)})``)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        return describe_range(self.low, self.high, low_open=self.low_open, high_open=self.high_open,
                              integer=self.integer)

    def check(self, value: Any, name: str, where: str) -> Any:
        return check_number(value, name, where, self.low, self.high, low_open=self.low_open,
                            high_open=self.high_open, integer=self.integer)


def get_float(table: dict[str, Any], key: str, default: float, where: str, prefix: str = "",
              low: float | None = None, high: float | None = None, low_open: bool = False,
              high_open: bool = False) -> float:
    """A finite number with a default and an allowed range (NaN and +-inf are always refused)."""
    value = get(table, key, (int, float), where, prefix, required=False)
    if value is None:
        return float(default)
    return check_number(value, f"{prefix}{key}", where, low, high, low_open=low_open, high_open=high_open)


def get_int(table: dict[str, Any], key: str, default: int, where: str, prefix: str = "",
            low: int | None = None, high: int | None = None) -> int:
    """A whole number (an integral float such as 8.0 passes; 8.5 is an error, never truncated)
    with a default and an inclusive range."""
    value = get(table, key, (int, float), where, prefix, required=False)
    if value is None:
        return int(default)
    return check_number(value, f"{prefix}{key}", where, low, high, integer=True)


def get_names(table: dict[str, Any], key: str, where: str, prefix: str = "", required: bool = True) -> tuple[str, ...]:
    value = table.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{where}: missing key '{prefix}{key}'")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: key '{prefix}{key}' must be a list of names, got {value!r}")
    return tuple(value)
