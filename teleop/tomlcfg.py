"""Strict TOML reading shared by every config parser: unknown keys, wrong types and missing keys
are ``ConfigError``s that name the key and say what is allowed."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from teleop.errors import ConfigError

__all__ = ["load_toml", "check_keys", "get", "get_names", "get_float"]


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


def get_float(table: dict[str, Any], key: str, default: float, where: str, prefix: str = "",
              low: float | None = None, high: float | None = None, low_open: bool = False) -> float:
    """A number with a default and an allowed range."""
    value = get(table, key, (int, float), where, prefix, required=False)
    value = default if value is None else float(value)
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(f"{where}: key '{prefix}{key}' must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ConfigError(f"{where}: key '{prefix}{key}' must be <= {high}, got {value}")
    return value


def get_names(table: dict[str, Any], key: str, where: str, prefix: str = "", required: bool = True) -> tuple[str, ...]:
    value = table.get(key)
    if value is None:
        if required:
            raise ConfigError(f"{where}: missing key '{prefix}{key}'")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: key '{prefix}{key}' must be a list of names, got {value!r}")
    return tuple(value)
