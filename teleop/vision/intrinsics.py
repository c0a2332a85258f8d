"""Camera intrinsics: a calibration file, or a documented default pinhole.

The file is TOML with ``fx``, ``fy``, ``cx``, ``cy`` [px], optional ``dist`` (OpenCV's k1, k2,
p1, p2, k3) and optional ``width``, ``height`` (the image size it was calibrated at; frames of
another size scale it). Without a file: a pinhole with ``hfov_deg`` horizontal field of view and
square pixels, centred (a typical webcam is 60-70 degrees; the wrist position's scale follows this
guess, its direction does not). ``teleop calibrate camera`` measures them (docs/calibration.md) and
writes the file with ``Intrinsics.save``."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from teleop.errors import ConfigError
from teleop.vision.tomlfile import toml_text, write_atomic

__all__ = ["Intrinsics"]

_KEYS = ("fx", "fy", "cx", "cy", "dist", "width", "height")


@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float
    dist: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    width: int = 0  # calibrated image size (0: any)
    height: int = 0
    source: str = field(default="default", compare=False)

    @classmethod
    def pinhole(cls, width: int, height: int, hfov_deg: float) -> Intrinsics:
        f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        return cls(f, f, width / 2, height / 2, width=width, height=height, source=f"pinhole, {hfov_deg:g} deg hfov")

    @classmethod
    def load(cls, path: str | Path) -> Intrinsics:
        p = Path(path).expanduser()
        try:
            raw = tomllib.loads(p.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"intrinsics {p}: cannot read it ({exc})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"intrinsics {p}: not valid TOML ({exc})") from exc
        return cls._from_table(raw, f"intrinsics {p}", str(p))

    @classmethod
    def _from_table(cls, raw: dict[str, Any], where: str, source: str) -> Intrinsics:
        unknown = set(raw) - set(_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: fx, fy, cx, cy, dist, "
                              "width, height")
        vals = {}
        for key in ("fx", "fy", "cx", "cy"):
            v = raw.get(key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"{where}: '{key}' must be a positive finite number of pixels, got {v!r}")
            vals[key] = float(v)
        dist = raw.get("dist", [0.0] * 5)
        if not (isinstance(dist, (list, tuple)) and len(dist) in (4, 5, 8) and all(
                isinstance(d, (int, float)) and not isinstance(d, bool) and math.isfinite(d) and abs(d) < 100
                for d in dist)):
            raise ConfigError(f"{where}: 'dist' must be 4, 5 or 8 finite numbers (OpenCV's order), got {dist!r}")
        size = []
        for key in ("width", "height"):
            v = raw.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 16384:
                raise ConfigError(f"{where}: '{key}' must be a whole number of pixels, got {v!r}")
            size.append(v)
        return cls(**vals, dist=tuple(float(d) for d in dist), width=size[0], height=size[1], source=source)

    def save(self, path: str | Path, comment_lines: Iterable[str] = ()) -> Path:
        """Write the file ``load`` reads (atomically), with ``comment_lines`` as ``#`` comments on top
        (how it was made, the RMS reprojection error, the images used). Values ``load`` would refuse
        (NaN, a negative focal length) are a ConfigError and nothing is written. Returns the path."""
        p = Path(path).expanduser()
        def whole(v: Any) -> Any:
            return int(v) if isinstance(v, np.integer) else v

        table = {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "dist": list(self.dist),
                 "width": whole(self.width), "height": whole(self.height)}
        checked = self._from_table(table, f"intrinsics {p} (not saved)", str(p))
        items = [("fx", checked.fx), ("fy", checked.fy), ("cx", checked.cx), ("cy", checked.cy),
                 ("dist", list(checked.dist)), ("width", checked.width), ("height", checked.height)]
        return write_atomic(p, toml_text(items, comment_lines))

    def for_size(self, width: int, height: int) -> Intrinsics:
        """The same camera at another image size (a calibration at 1920x1080, frames at 1280x720)."""
        if not self.width or (self.width, self.height) == (width, height):
            return self
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, self.dist, width, height,
                          self.source + f" (scaled to {width}x{height})")

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])
