"""Driver configs: frozen dataclasses whose fields are the driver's options.

``DriverConfig.from_options`` turns strings (``teleop drivers echo NAME --port /dev/ttyUSB0``, TOML
values) into typed fields and raises ``ConfigError`` naming the option and what is allowed (or,
for a required option left out, how to give it).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args, get_origin

from teleop.errors import ConfigError
from teleop.types import Side

__all__ = ["DriverConfig", "option_help"]


@dataclass(frozen=True, kw_only=True)
class DriverConfig:
    """Base of every driver config. ``side`` is which hand/arm the device belongs to (None for
    devices that are not handed, e.g. a foot pedal). ``reconnect`` keeps retrying after an unplug."""

    side: Side | None = None
    reconnect: bool = True
    reconnect_interval_s: float = 0.5

    HELP: ClassVar[dict[str, str]] = {}

    def __post_init__(self) -> None:
        if self.side not in (None, "left", "right"):
            raise ConfigError(f"side={self.side!r}: allowed values are 'left', 'right' (or leave it unset)")
        if not self.reconnect_interval_s > 0:
            raise ConfigError(f"reconnect_interval_s={self.reconnect_interval_s}: must be > 0")

    @classmethod
    def from_options(cls, options: dict[str, Any], driver: str = "") -> DriverConfig:
        """Build from option strings or TOML values; dashes in names become underscores.
        ``driver`` (the driver's name) only makes the error for a missing option say the command."""
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        values: dict[str, Any] = {}
        for raw_name, value in options.items():
            name = raw_name.replace("-", "_")
            if name not in fields:
                raise ConfigError(f"{cls.__name__}: unknown option {raw_name!r}; options: {sorted(fields)}")
            values[name] = _coerce(name, value, hints[name])
        missing = [f.name for f in fields.values() if f.name not in values and _is_required(f)]
        if missing:
            raise ConfigError(_missing_text(cls, missing, driver))
        return cls(**values)


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _missing_text(cls: type[DriverConfig], missing: list[str], driver: str) -> str:
    """Which required options are missing, what each is, and the two ways to give it."""
    what = ", ".join(n.replace("_", "-") + (f" ({cls.HELP[n]})" if n in cls.HELP else "") for n in missing)
    cli = " ".join(f"--{n.replace('_', '-')} VALUE" for n in missing)
    toml = ", ".join(f'{n} = "..."' for n in missing)
    return (f"{driver or cls.__name__}: missing required option{'s' if len(missing) > 1 else ''} {what}. On the "
            f"command line: `teleop drivers echo {driver or 'NAME'} {cli}`; in a session file: "
            f"`options = {{ {toml} }}` in the device's [device.NAME] table (`teleop drivers list -v` lists "
            "every option)")


def _coerce(name: str, value: Any, hint: Any) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(name, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"option {name!r}: bad value {value!r}")
    if origin is Literal:
        allowed = args
        if value in allowed:
            return value
        if isinstance(value, str):
            for a in allowed:
                if str(a) == value:
                    return a
        raise ConfigError(f"option {name!r} = {value!r}; allowed values: {list(allowed)}")
    if origin in (tuple, list):
        items = value.split(",") if isinstance(value, str) else list(value)
        inner = args[0] if args else str
        return tuple(_coerce(name, v.strip() if isinstance(v, str) else v, inner) for v in items if v != "")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise ConfigError(f"option {name!r} = {value!r}; allowed values: {[m.value for m in hint]}") from None
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"option {name!r} = {value!r}; write true or false")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"option {name!r} = {value!r}; expected a number")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"option {name!r} = {value!r}; expected float") from None
        if not math.isfinite(number):  # "nan", "inf", TOML nan/inf, "1e999"
            raise ConfigError(f"option {name!r} = {value!r}; expected a finite number (not NaN or infinity)")
        return number
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"option {name!r} = {value!r}; expected a number")
        if isinstance(value, float):  # from TOML: 4095.0 is 4095, 2.5 is an error (never truncated)
            if not value.is_integer():
                raise ConfigError(f"option {name!r} = {value!r}; expected int, a whole number")
            return int(value)
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"option {name!r} = {value!r}; expected int") from None
    if hint is str:
        return str(value)
    if hint is Path:
        return Path(value)
    return value


def option_help(config_class: type[DriverConfig]) -> list[tuple[str, str, str, str]]:
    """(option, allowed values, default, help) rows for ``teleop drivers list --verbose``, written
    the way the command line takes them: ``left|right``, ``true|false``, ``float,...``, a
    required option's default is ``required``, an unset one's ``unset``."""
    hints = typing.get_type_hints(config_class)
    rows = []
    for f in dataclasses.fields(config_class):
        if not f.init:
            continue
        if _is_required(f):
            default = "required"
        else:
            default = _show_value(f.default if f.default is not dataclasses.MISSING else f.default_factory())
        rows.append((f.name.replace("_", "-"), _show_type(hints[f.name]), default, config_class.HELP.get(f.name, "")))
    return rows


def _show_type(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (typing.Union, types.UnionType):
        shown = [_show_type(a) for a in args if a is not type(None)]
        return " or ".join(shown) + (" or unset" if type(None) in args else "")
    if origin is Literal:
        return "|".join(str(a) for a in args)
    if origin in (tuple, list):
        return f"{_show_type(args[0]) if args else 'str'},... (comma-separated)"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "|".join(str(m.value) for m in hint)
    if hint is bool:
        return "true|false"
    if hint is Path:
        return "path"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _show_value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, tuple | list):
        return ",".join(_show_value(v) for v in value) if value else "(none)"
    return str(value)
