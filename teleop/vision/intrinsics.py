"""Camera intrinsics: a calibration file, or a documented default pinhole.

The file is TOML with ``fx``, ``fy``, ``cx``, ``cy`` [px], optional ``dist`` (OpenCV's k1, k2,
p1, p2, k3) and optional ``width``, ``height`` (the image size it was calibrated at; frames of
another size scale it). Without a file: a pinhole with ``hfov_deg`` horizontal field of view and
square pixels, centred (a typical webcam is 60-70 degrees; the wrist position's scale follows this
guess, its direction does not)."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from teleop.errors import ConfigError

__all__ = ["Intrinsics"]


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
        unknown = set(raw) - {"fx", "fy", "cx", "cy", "dist", "width", "height"}
        if unknown:
            raise ConfigError(f"intrinsics {p}: unknown keys {sorted(unknown)}; allowed: fx, fy, cx, cy, dist, "
                              "width, height")
        vals = {}
        for key in ("fx", "fy", "cx", "cy"):
            v = raw.get(key)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"intrinsics {p}: '{key}' must be a positive finite number of pixels, got {v!r}")
            vals[key] = float(v)
        dist = raw.get("dist", [0.0] * 5)
        if not (isinstance(dist, list) and len(dist) in (4, 5, 8) and all(
                isinstance(d, (int, float)) and not isinstance(d, bool) and math.isfinite(d) and abs(d) < 100
                for d in dist)):
            raise ConfigError(f"intrinsics {p}: 'dist' must be 4, 5 or 8 finite numbers (OpenCV's order), got {dist!r}")
        size = []
        for key in ("width", "height"):
            v = raw.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 16384:
                raise ConfigError(f"intrinsics {p}: '{key}' must be a whole number of pixels, got {v!r}")
            size.append(v)
        return cls(**vals, dist=tuple(float(d) for d in dist), width=size[0], height=size[1], source=str(p))

    def for_size(self, width: int, height: int) -> Intrinsics:
        """The same camera at another image size (a calibration at 1920x1080, frames at 1280x720)."""
        if not self.width or (self.width, self.height) == (width, height):
            return self
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, self.dist, width, height,
                          self.source + f" (scaled to {width}x{height})")

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])
