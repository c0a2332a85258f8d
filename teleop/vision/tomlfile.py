"""Writing the small calibration files: TOML text with ``#`` comments on top, numbers written so
they read back exactly (``repr``), and an atomic replace (a crash leaves the old file or the new
one, never half of one)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from teleop.atomic import write_atomic

__all__ = ["toml_value", "toml_text", "write_atomic"]


def toml_value(value: object) -> str:
    """A TOML literal for a str, int, finite float or a list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML files here hold finite numbers only, got {value!r}")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML literal for {type(value).__name__}")


def toml_text(items: Sequence[tuple[str, object]], comment_lines: Iterable[str] = ()) -> str:
    """``key = value`` lines under ``# comment`` lines (a comment with line breaks becomes several)."""
    lines = []
    for comment in comment_lines:
        for line in str(comment).splitlines() or [""]:
            lines.append(f"# {line}".rstrip())
    lines += [f"{key} = {toml_value(value)}" for key, value in items]
    return "\n".join(lines) + "\n"
