"""Drivers are found through Python entry points, group ``teleop.drivers`` (ours are declared the
same way in pyproject.toml), so an external package adds one without touching this repository::

    [project.entry-points."teleop.drivers"]
    my_glove = "my_package.my_glove:MyGloveDriver"
"""

from __future__ import annotations

import difflib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from drivers.base import Driver
from teleop.errors import ConfigError

__all__ = ["GROUP", "available_drivers", "driver_class", "create_driver"]

GROUP = "teleop.drivers"


def available_drivers() -> dict[str, EntryPoint]:
    """Name -> entry point, sorted by name. Loading happens only in ``driver_class``."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


def driver_class(name: str) -> type[Driver]:
    eps = available_drivers()
    if name not in eps:
        near = difflib.get_close_matches(name, list(eps), n=3)
        hint = f"; did you mean {near}?" if near else ""
        raise ConfigError(f"no driver named {name!r}{hint} Installed drivers: {sorted(eps)} (`teleop drivers list`)")
    try:
        cls = eps[name].load()
    except Exception as exc:
        raise ConfigError(f"driver {name!r} ({eps[name].value}) failed to import: {type(exc).__name__}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Driver)):
        raise ConfigError(f"entry point {name!r} = {eps[name].value} is not a drivers.base.Driver subclass")
    return cls


def create_driver(name: str, options: dict[str, Any] | None = None) -> Driver:
    """Instantiate a driver from option values (strings are converted by its config class)."""
    cls = driver_class(name)
    return cls(cls.config_class.from_options(options or {}, driver=name))
