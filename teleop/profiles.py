"""Operator profiles: one operator's calibration, loaded with ``teleop run SESSION --operator NAME``.

A profile holds, per hand: the hand length (wrist crease to middle fingertip), the glove's
driver-specific calibration (e.g. OpenGloves channel ranges), a neutral wrist pose, an optional
per-bone ``retarget.human_hand.HandCalibration``, and a few check values measured during the
walkthrough (thumb-index distance in a pinch, fingertip span with the fingers spread).

Stored as JSON at ``<config dir>/operators/<name>.json``; the config dir is ``$TELEOP_CONFIG_DIR``
when set, else ``~/.config/teleop``. Loading is strict: unknown keys, wrong shapes and values out
of range are ``ConfigError``s naming the file, the key and the fix. File layout::

    {"format": "teleop-operator-profile", "version": 1, "name": "alice",
     "created": "2025-01-31T09:12:00+00:00", "updated": "2025-01-31T09:12:00+00:00",
     "sides": {"right": {"hand_length_m": 0.178,
                         "glove_driver": "opengloves", "glove": {"format": "opengloves-calibration", ...},
                         "neutral_wrist": {"position_m": [x, y, z], "quat_wxyz": [w, x, y, z],
                                           "frame": "tracker", "driver": "network"},
                         "hand_calibration": null,
                         "checks": {"pinch_distance_m": 0.012, "splay_span_m": 0.09}}}}

``apply_profile(session_config, profile)`` puts the calibration into the session's device options,
decided by the fields of each driver's config class (never by driver name): ``hand_length_m``
when the hand device has that option; the glove dict, written to
``<config dir>/operators/<name>.<side>.glove.json``, as the ``calibration`` option when it has that
one; ``hand_calibration`` when it has that one.

``calibrate_operator(session_config, name)`` is the walkthrough behind
``teleop calibrate --operator NAME --session SESSION``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from teleop.atomic import write_atomic
from teleop.errors import ConfigError, DeviceError, DeviceTimeoutError, TeleopError
from teleop.tomlcfg import describe_range
from teleop.types import SIDES, Side

if TYPE_CHECKING:
    from teleop.session.config import SessionConfig

__all__ = [
    "FORMAT",
    "VERSION",
    "HAND_LENGTH_RANGE_M",
    "NeutralWrist",
    "SideProfile",
    "OperatorProfile",
    "config_dir",
    "profiles_dir",
    "profile_path",
    "glove_path",
    "check_name",
    "list_profiles",
    "load_profile",
    "save_profile",
    "profile_from_dict",
    "apply_profile",
    "average_quaternions",
    "calibrate_operator",
]

logger = logging.getLogger(__name__)

FORMAT: Final = "teleop-operator-profile"
VERSION: Final = 1

#: Accepted hand lengths (the drivers' ``hand_length_m`` range); adults are about 0.16..0.21 m.
HAND_LENGTH_RANGE_M: Final = (0.10, 0.30)
DEFAULT_HAND_LENGTH_M: Final = 0.185

#: Known check values (metres), measured on the hand device's keypoints during the walkthrough.
CHECK_KEYS: Final = ("pinch_distance_m", "splay_span_m")
#: Allowed ranges of the other numbers in a profile (NaN and inf never pass): check values [m],
#: each neutral wrist coordinate [m] (a tracker's frame, so well beyond a room), and the
#: ``hand_calibration`` factors and offsets (a bone 3x the reference is no human hand).
CHECK_RANGE_M: Final = (0.0, 0.5)
WRIST_POSITION_RANGE_M: Final = (-100.0, 100.0)
BONE_SCALE_RANGE: Final = (0.0, 3.0)  # low end open: > 0
ANGLE_OFFSET_RANGE_RAD: Final = (-math.pi, math.pi)

#: A neutral wrist capture that moved more than this is offered again.
WRIST_STILL_M: Final = 0.03
WRIST_STILL_RAD: Final = math.radians(10.0)

_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_TOP_KEYS: Final = ("format", "version", "name", "created", "updated", "sides")
_SIDE_KEYS: Final = ("hand_length_m", "glove_driver", "glove", "neutral_wrist", "hand_calibration", "checks")
_WRIST_KEYS: Final = ("position_m", "quat_wxyz", "frame", "driver")

F64 = npt.NDArray[np.float64]


# -- where profiles live --------------------------------------------------------------------------
def config_dir() -> Path:
    """``$TELEOP_CONFIG_DIR`` when set (tests), else ``~/.config/teleop``."""
    env = os.environ.get("TELEOP_CONFIG_DIR")
    return Path(env).expanduser() if env else Path.home() / ".config" / "teleop"


def profiles_dir() -> Path:
    return config_dir() / "operators"


def check_name(name: str) -> str:
    """Operator names are file names: letters, digits, ``_`` and ``-`` (no dots, no slashes)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(
            f"operator name {name!r}: use 1..64 letters, digits, '_' or '-', starting with a letter or digit "
            "(it becomes a file name)"
        )
    return name


def profile_path(name: str) -> Path:
    return profiles_dir() / f"{check_name(name)}.json"


def glove_path(name: str, side: Side) -> Path:
    """Where ``apply_profile`` writes the side's glove calibration for the driver to load."""
    return profiles_dir() / f"{check_name(name)}.{side}.glove.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- validation helpers ---------------------------------------------------------------------------
def _floats(value: Any, n: int, where: str, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> tuple[float, ...]:
    """``n`` finite numbers, each within [low, high] (``(low, high]`` when ``low_open``); errors name
    the entry (``neutral_wrist.position_m[2]``)."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"{where} must be a list of {n} numbers, got {value!r}")
    items = value.tolist() if isinstance(value, np.ndarray) else list(value)
    if len(items) != n or any(isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer))
                              for v in items):
        raise ConfigError(f"{where} must be a list of {n} numbers, got {value!r}")
    try:
        out = tuple(float(v) for v in items)
    except OverflowError:  # a JSON integer too large for a float
        out = (math.inf,)
    if not all(math.isfinite(v) for v in out):
        raise ConfigError(f"{where} must be finite, got {list(out)}")
    for i, v in enumerate(out):
        if (low is not None and (v < low or (low_open and v == low))) or (high is not None and v > high):
            name = where if n == 1 else f"{where}[{i}]"
            raise ConfigError(f"{name} = {v!r}: must be {describe_range(low, high, low_open=low_open)}")
    return out


def _nonfinite(value: Any, path: str) -> str | None:
    """The path of the first NaN or infinite number inside plain JSON data, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, Mapping):
        items: Any = ((f"{path}.{k}", v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for sub, v in items:
        if (found := _nonfinite(v, sub)) is not None:
            return found
    return None


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; allowed keys here: {list(allowed)}")


def _json_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"{where} must be a JSON object (string keys), got {type(value).__name__}")
    if (bad := _nonfinite(value, where)) is not None:
        raise ConfigError(f"{bad} must be a finite number (JSON has no NaN or Infinity)")
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))  # a plain, JSON-safe copy
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} must hold plain JSON values (numbers, strings, lists, objects): {exc}") from None


def _timestamp(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be an ISO 8601 date string, got {value!r}")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{where} = {value!r} is not an ISO 8601 date (e.g. 2025-01-31T09:12:00+00:00)") from None
    return value


# -- the profile ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class NeutralWrist:
    """The operator's relaxed wrist pose as the wrist device reported it: position [m] and unit
    quaternion (w, x, y, z) in the device's ``frame`` (runtime convention: right-handed, Z up)."""

    position_m: tuple[float, float, float]
    quat_wxyz: tuple[float, float, float, float]
    frame: str = "tracker"
    driver: str | None = None  # the wrist device's driver when it was captured

    def __post_init__(self) -> None:
        pos = _floats(self.position_m, 3, "neutral_wrist.position_m", *WRIST_POSITION_RANGE_M)
        q = _floats(self.quat_wxyz, 4, "neutral_wrist.quat_wxyz")
        norm = math.sqrt(sum(v * v for v in q))
        if abs(norm - 1.0) > 1e-3:
            raise ConfigError(f"neutral_wrist.quat_wxyz must be a unit quaternion (w, x, y, z), got {list(q)} "
                              f"(norm {norm:.4f})")
        object.__setattr__(self, "position_m", tuple(round(v, 6) for v in pos))  # what the file keeps
        object.__setattr__(self, "quat_wxyz", tuple(v / norm for v in q) if abs(norm - 1.0) > 1e-9 else q)
        if not isinstance(self.frame, str) or not self.frame:
            raise ConfigError(f"neutral_wrist.frame must be a non-empty string, got {self.frame!r}")
        if self.driver is not None and not isinstance(self.driver, str):
            raise ConfigError(f"neutral_wrist.driver must be a string or null, got {self.driver!r}")

    @property
    def position(self) -> F64:
        return np.array(self.position_m)

    @property
    def quat(self) -> F64:
        return np.array(self.quat_wxyz)

    def to_dict(self) -> dict[str, Any]:
        return {"position_m": list(self.position_m), "quat_wxyz": list(self.quat_wxyz), "frame": self.frame,
                "driver": self.driver}


@dataclass(frozen=True)
class SideProfile:
    """One hand of an operator. Everything is optional (a session may calibrate one part only).

    ``glove``: the hand device's ``calibrate()`` result (driver-specific), ``glove_driver`` the
    driver that produced it (a glove dict is only applied to a device of the same driver);
    ``hand_calibration``: a ``HandCalibration.to_dict()``; ``checks``: values measured on the
    device's keypoints during the walkthrough (``CHECK_KEYS``), kept for comparison later."""

    hand_length_m: float | None = None
    glove: Mapping[str, Any] | None = None
    glove_driver: str | None = None
    neutral_wrist: NeutralWrist | None = None
    hand_calibration: Mapping[str, Any] | None = None
    checks: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hand_length_m is not None:
            (v,) = _floats([self.hand_length_m], 1, "hand_length_m")
            lo, hi = HAND_LENGTH_RANGE_M
            if not lo <= v <= hi:
                raise ConfigError(f"hand_length_m = {v} m: must be within {lo}..{hi} m (wrist crease to middle "
                                  "fingertip; adults are about 0.16..0.21 m)")
            object.__setattr__(self, "hand_length_m", round(v, 5))
        if self.glove is not None:
            glove = _json_object(self.glove, "glove")
            object.__setattr__(self, "glove", glove or None)
        if self.glove_driver is not None and not isinstance(self.glove_driver, str):
            raise ConfigError(f"glove_driver must be a driver name or null, got {self.glove_driver!r}")
        if self.neutral_wrist is not None and not isinstance(self.neutral_wrist, NeutralWrist):
            raise ConfigError(f"neutral_wrist must be a NeutralWrist, got {type(self.neutral_wrist).__name__}")
        if self.hand_calibration is not None:
            from retarget.human_hand import HandCalibration

            data = _json_object(self.hand_calibration, "hand_calibration")
            cal = HandCalibration.from_dict(data)
            _floats(cal.bone_scale, len(cal.bone_scale), "hand_calibration.bone_scale", *BONE_SCALE_RANGE,
                    low_open=True)
            _floats(cal.angle_offset_rad, len(cal.angle_offset_rad), "hand_calibration.angle_offset_rad",
                    *ANGLE_OFFSET_RANGE_RAD)
            object.__setattr__(self, "hand_calibration", cal.to_dict())
        if not isinstance(self.checks, Mapping):
            raise ConfigError(f"checks must be an object of {list(CHECK_KEYS)} -> metres, got {self.checks!r}")
        _check_keys(self.checks, CHECK_KEYS, "checks")
        checks = {k: round(_floats([v], 1, f"checks.{k}", *CHECK_RANGE_M)[0], 5) for k, v in self.checks.items()}
        object.__setattr__(self, "checks", checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hand_length_m": self.hand_length_m,
            "glove_driver": self.glove_driver,
            "glove": None if self.glove is None else dict(self.glove),
            "neutral_wrist": None if self.neutral_wrist is None else self.neutral_wrist.to_dict(),
            "hand_calibration": None if self.hand_calibration is None else dict(self.hand_calibration),
            "checks": dict(self.checks),
        }


@dataclass(frozen=True)
class OperatorProfile:
    """``sides``: "left"/"right" -> ``SideProfile`` (only the sides calibrated so far).
    ``created``/``updated``: ISO 8601 (UTC) strings."""

    name: str
    sides: Mapping[Side, SideProfile] = field(default_factory=dict)
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        check_name(self.name)
        if not isinstance(self.sides, Mapping):
            raise ConfigError(f"sides must be a mapping of side -> SideProfile, got {self.sides!r}")
        for side, sp in self.sides.items():
            if side not in SIDES:
                raise ConfigError(f"sides: unknown side {side!r}; allowed: {list(SIDES)}")
            if not isinstance(sp, SideProfile):
                raise ConfigError(f"sides.{side} must be a SideProfile, got {type(sp).__name__}")
        object.__setattr__(self, "sides", {s: self.sides[s] for s in SIDES if s in self.sides})
        _timestamp(self.created, "created")
        _timestamp(self.updated, "updated")

    def side(self, side: Side) -> SideProfile | None:
        return self.sides.get(side)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "created": self.created,
                "updated": self.updated, "sides": {s: sp.to_dict() for s, sp in self.sides.items()}}


def profile_from_dict(data: Any, where: str = "operator profile") -> OperatorProfile:
    """Strict inverse of ``OperatorProfile.to_dict``; errors name ``where`` and the key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a JSON object, got {type(data).__name__}")
    _check_keys(data, _TOP_KEYS, where)
    for key in _TOP_KEYS:
        if key not in data:
            raise ConfigError(f"{where}: missing key {key!r}")
    if data["format"] != FORMAT or isinstance(data["version"], bool) or data["version"] != VERSION:
        raise ConfigError(f"{where}: format/version {data['format']!r}/{data['version']!r} not supported; "
                          f"expected {FORMAT!r}/{VERSION}")
    sides_raw = data["sides"]
    if not isinstance(sides_raw, Mapping):
        raise ConfigError(f"{where}: 'sides' must be an object with 'left' and/or 'right', got {sides_raw!r}")
    _check_keys(sides_raw, SIDES, f"{where}: sides")
    sides: dict[Side, SideProfile] = {}
    for side, raw in sides_raw.items():
        at = f"{where}: sides.{side}"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{at} must be an object, got {raw!r}")
        _check_keys(raw, _SIDE_KEYS, at)
        wrist = raw.get("neutral_wrist")
        nw = None
        if wrist is not None:
            if not isinstance(wrist, Mapping):
                raise ConfigError(f"{at}.neutral_wrist must be an object or null, got {wrist!r}")
            _check_keys(wrist, _WRIST_KEYS, f"{at}.neutral_wrist")
            for key in ("position_m", "quat_wxyz"):
                if key not in wrist:
                    raise ConfigError(f"{at}.neutral_wrist: missing key {key!r}")
            try:
                nw = NeutralWrist(wrist["position_m"], wrist["quat_wxyz"], wrist.get("frame", "tracker"),
                                  wrist.get("driver"))
            except ConfigError as exc:
                raise ConfigError(f"{at}: {exc}") from None
        try:
            sides[side] = SideProfile(
                hand_length_m=raw.get("hand_length_m"), glove=raw.get("glove"), glove_driver=raw.get("glove_driver"),
                neutral_wrist=nw, hand_calibration=raw.get("hand_calibration"), checks=raw.get("checks") or {},
            )
        except ConfigError as exc:
            raise ConfigError(f"{at}: {exc}") from None
    try:
        return OperatorProfile(name=data["name"], sides=sides, created=data["created"], updated=data["updated"])
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# -- files ----------------------------------------------------------------------------------------
def list_profiles() -> list[str]:
    """Names of the stored profiles, sorted (glove files and temporary files are not profiles)."""
    d = profiles_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.json") if p.is_file() and _NAME_RE.match(p.stem))


def load_profile(name: str) -> OperatorProfile:
    """The stored profile ``name``. ``ConfigError`` when there is none (listing the known ones) or
    when the file is broken (naming the key)."""
    path = profile_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = list_profiles()
        raise ConfigError(
            f"no operator profile {name!r} in {profiles_dir()}; known profiles: {known or 'none'}. "
            f"Create it with `teleop calibrate --operator {name} --session SESSION`"
        ) from None
    except OSError as exc:
        raise ConfigError(f"operator profile {path} is unreadable: {exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"operator profile {path} is not valid JSON: {exc}; fix it or calibrate again") from None
    profile = profile_from_dict(data, where=f"operator profile {path}")
    if profile.name != name:
        raise ConfigError(f"operator profile {path}: key 'name' is {profile.name!r} but the file is {name!r}.json; "
                          "make them the same")
    return profile


def save_profile(profile: OperatorProfile) -> Path:
    """Write ``profile`` (as given: timestamps are the caller's) atomically; returns the path."""
    path = profile_path(profile.name)
    write_atomic(path, json.dumps(profile.to_dict(), indent=2, allow_nan=False) + "\n")
    return path


# -- applying a profile to a session --------------------------------------------------------------
def _init_fields(driver: str) -> set[str]:
    from drivers.registry import driver_class

    return {f.name for f in dataclasses.fields(driver_class(driver).config_class) if f.init}


def apply_profile(session_config: SessionConfig, profile: OperatorProfile) -> SessionConfig:
    """A copy of ``session_config`` (a ``SessionConfig``) whose hand devices carry the operator's
    calibration, decided by each driver config class's fields:

    * ``hand_length_m``: set from the profile;
    * ``calibration`` (a file path): the profile's glove dict is written to
      ``glove_path(name, side)`` and the option points there, when the glove dict came from the
      same driver (else it is skipped with a warning: another glove's ranges would be wrong);
    * ``hand_calibration``: set to the profile's ``HandCalibration`` dict.

    A device that is the hand of both sides gets the values of its own ``side`` option, else of
    the right hand (with a warning). ``operator`` is set to the profile's name."""
    devices = dict(session_config.devices)
    users: dict[str, list[Side]] = {}
    for side in SIDES:
        ic = session_config.inputs.get(side)
        if ic is not None and ic.hand:
            users.setdefault(ic.hand, []).append(side)
    for dev_name, sides in users.items():
        dc = devices[dev_name]
        side = sides[0]
        if len(sides) > 1:
            own = dc.options.get("side")
            side = own if own in sides else "right"
            logger.warning("device %r is the hand of both sides; it takes one calibration: the %s hand's",
                           dev_name, side)
        sp = profile.sides.get(side)
        if sp is None:
            logger.info("operator %r has no %s-hand calibration: device %r unchanged", profile.name, side, dev_name)
            continue
        fields = _init_fields(dc.driver)
        options = dict(dc.options)
        applied = []
        if sp.hand_length_m is not None and "hand_length_m" in fields:
            options["hand_length_m"] = sp.hand_length_m
            applied.append(f"hand_length_m={sp.hand_length_m:.3f}")
        if sp.glove and "calibration" in fields:
            if sp.glove_driver is not None and sp.glove_driver != dc.driver:
                logger.warning("operator %r: the %s glove calibration was made with driver %r, device %r uses %r: "
                               "not applied (calibrate again with this session)", profile.name, side,
                               sp.glove_driver, dev_name, dc.driver)
            else:
                path = glove_path(profile.name, side)
                write_atomic(path, json.dumps(dict(sp.glove), indent=2) + "\n")
                options["calibration"] = str(path)
                applied.append(f"calibration={path}")
        if sp.hand_calibration and "hand_calibration" in fields:
            options["hand_calibration"] = dict(sp.hand_calibration)
            applied.append("hand_calibration")
        logger.info("operator %r, %s hand, device %r: %s", profile.name, side, dev_name,
                    ", ".join(applied) or "nothing this driver takes")
        devices[dev_name] = dataclasses.replace(dc, options=options)
    return dataclasses.replace(session_config, devices=devices, operator=profile.name)


# -- the walkthrough ------------------------------------------------------------------------------
def average_quaternions(quats: npt.ArrayLike) -> F64:
    """Mean rotation of unit quaternions (N, 4) (w, x, y, z): each is flipped into the first one's
    hemisphere (q and -q are the same rotation), then the principal eigenvector of sum(q q^T)
    (Markley et al. 2007), returned in the first one's hemisphere. Shape (4,)."""
    q = np.asarray(quats, dtype=np.float64).reshape(-1, 4)
    if not len(q):
        raise ValueError("average_quaternions needs at least one quaternion")
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where((q @ q[0])[:, None] < 0.0, -q, q)
    _, vecs = np.linalg.eigh(q.T @ q)
    mean = vecs[:, -1]
    if mean @ q[0] < 0.0:
        mean = -mean
    return mean / np.linalg.norm(mean)


def _angle_between(q: F64, mean: F64) -> F64:
    return 2.0 * np.arccos(np.clip(np.abs(q @ mean), 0.0, 1.0))


def _record(drv: Any, kind: type, side: Side, seconds: float) -> list[Any]:
    """Samples of ``kind`` for ``side`` (or unsided) captured during the next ``seconds``."""
    t0 = time.monotonic_ns()
    deadline = time.monotonic() + seconds
    out = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            s = drv.get_sample(timeout_s=min(left, 0.2))
        except DeviceTimeoutError:
            continue
        if isinstance(s, kind) and getattr(s, "capture_ns", 0) >= t0 and getattr(s, "side", None) in (side, None):
            out.append(s)
    return out


def _ask_hand_length(side: Side, default_m: float, prompt: Callable[[str], object],
                     ask: Callable[[str], str]) -> float:
    lo, hi = HAND_LENGTH_RANGE_M
    for _ in range(5):
        answer = ask(f"{side.upper()} hand length in cm, from the wrist crease to the tip of the middle finger "
                     f"[{default_m * 100:.1f}]: ").strip().replace(",", ".")
        if not answer:
            return default_m
        try:
            cm = float(answer.removesuffix("cm").strip())
        except ValueError:
            cm = float("nan")
        if math.isfinite(cm) and lo * 100 <= cm <= hi * 100:
            return round(cm / 100.0, 4)
        prompt(f"  {answer!r} is not a hand length: give centimetres between {lo * 100:.0f} and {hi * 100:.0f} "
               "(adults are usually 16 to 21 cm), or press Enter for the default.")
    raise ConfigError(f"no valid {side} hand length after 5 tries; calibration aborted, nothing saved")


def _device_default_hand_length(session_config: SessionConfig, dev_name: str | None) -> float | None:
    if dev_name is None:
        return None
    v = session_config.devices[dev_name].options.get("hand_length_m")
    try:
        return float(v) if v is not None and HAND_LENGTH_RANGE_M[0] <= float(v) <= HAND_LENGTH_RANGE_M[1] else None
    except (TypeError, ValueError):
        return None


@contextlib.contextmanager
def _open_devices(
    session_config: SessionConfig, names: list[str], overrides: dict[str, dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """Create and connect the named devices (each once); disconnect them all on leaving."""
    from drivers.registry import create_driver

    with ExitStack() as stack:
        opened: dict[str, Any] = {}
        for name in dict.fromkeys(names):
            dc = session_config.devices[name]
            options = {k: (str(Path(v).expanduser()) if isinstance(v, str) and v.startswith("~") else v)
                       for k, v in dc.options.items()}
            options.update(overrides.get(name, {}))
            drv = create_driver(dc.driver, options)
            try:
                drv.connect()
            except TeleopError as exc:
                raise DeviceError(f"device {name!r} ({dc.driver}): {exc}") from exc
            stack.callback(drv.disconnect)
            opened[name] = drv
        yield opened


def _glove_step(side: Side, dev_name: str, driver: str, drv: Any, seconds: float, prompt: Callable[[str], object],
                ask: Callable[[str], str]) -> tuple[dict[str, Any] | None, set[str]]:
    """Runs the device's calibrate() (if it has one). Returns (its result or None, the extra poses
    it recorded itself among {"splay", "pinch"})."""
    from drivers.base import Driver

    S = side.upper()
    if type(drv).calibrate is Driver.calibrate:
        prompt(f"  Glove ranges: {dev_name} ({driver}) has no calibration routine; nothing to record.")
        return None, set()
    try:
        params: Mapping[str, inspect.Parameter] = inspect.signature(drv.calibrate).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs: dict[str, Any] = {}
    for pname, p in params.items():
        if pname == "prompt":
            kwargs[pname] = lambda text: prompt(f"  {text}")
        elif pname == "save":
            kwargs[pname] = False  # the profile keeps it; the session's own calibration file stays untouched
        elif pname.endswith("_s") and isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            kwargs[pname] = seconds  # one duration per recorded pose (open_s, fist_s, ...)
    own = {pose for pose in ("splay", "pinch") if f"{pose}_s" in params}
    ask(f"  Glove ranges ({S}, {dev_name}): put the glove on; you will hold a few poses, {seconds:g} s each. "
        "Press Enter to start... ")
    result = drv.calibrate(**kwargs)
    if not result:
        prompt(f"  {dev_name} ({driver}) needs no calibration.")
        return None, own
    prompt(f"  Glove ranges recorded ({len(result.get('ranges', result))} entries).")
    return dict(result), own


def _keypoint_checks(side: Side, dev_name: str, drv: Any, own: set[str], seconds: float,
                     prompt: Callable[[str], object], ask: Callable[[str], str]) -> dict[str, float]:
    """Splay and pinch: recorded by the device's own calibrate() when it has those steps; else the
    poses are recorded on the device's keypoints as check values only (nothing is changed on the
    device)."""
    from drivers.samples import HandSample
    from retarget.human_hand import TIP_INDEX

    checks: dict[str, float] = {}
    spec = drv.sample_spec
    if "hand" not in spec.kinds:
        prompt(f"  Splay and pinch: {dev_name} gives no hand samples; skipped.")
        return checks
    poses = (
        ("splay", "splay_span_m", "Splay: spread your fingers as wide as you can, hand flat",
         ("index", "pinky"), "index tip to little-finger tip"),
        ("pinch", "pinch_distance_m", "Pinch: touch the tip of your thumb to the tip of your index finger",
         ("thumb", "index"), "thumb tip to index tip"),
    )
    for pose, key, instruction, (a, b), what in poses:
        if pose in own:
            prompt(f"  {pose.capitalize()}: recorded by the device's own calibration above.")
            continue
        prompt(f"  {instruction}; hold it for {seconds:g} s. {dev_name} has no separate {pose} calibration step: "
               f"the pose is only measured as a check ({what}) and stored in the profile; the device is not changed.")
        samples = [s for s in _record(drv, HandSample, side, seconds) if s.keypoints is not None]
        if not samples:
            prompt(f"  No {side} hand keypoints from {dev_name} in {seconds:g} s: {pose} check skipped.")
            continue
        kp = np.stack([s.keypoints for s in samples[len(samples) // 2:]])  # the later half: the pose is held
        dist = float(np.median(np.linalg.norm(kp[:, TIP_INDEX[a]] - kp[:, TIP_INDEX[b]], axis=1)))
        checks[key] = dist
        prompt(f"  Measured {what}: {dist * 100:.1f} cm.")
    return checks


def _wrist_step(side: Side, dev_name: str, driver: str, drv: Any, wrist_s: float, prompt: Callable[[str], object],
                ask: Callable[[str], str]) -> NeutralWrist:
    from drivers.samples import PoseSample

    S = side.upper()
    for attempt in range(1, 4):
        ask(f"  Neutral wrist pose ({S}, {dev_name}): relax your {side} arm, forearm about horizontal, palm facing "
            f"your other hand, fingers pointing forward. Hold still and press Enter; keep still for {wrist_s:g} s... ")
        samples = _record(drv, PoseSample, side, wrist_s)
        if not samples:
            raise DeviceError(
                f"device {dev_name!r} ({driver}): no {side} wrist pose within {wrist_s:g} s; is it tracking the "
                f"{side} wrist? (`teleop drivers echo {driver} ...` shows what arrives)"
            )
        pos = np.stack([s.position_m for s in samples])
        quats = np.stack([s.quat_wxyz for s in samples])
        mean_q = average_quaternions(quats)
        mean_p = pos.mean(axis=0)
        moved_m = float(np.max(np.linalg.norm(pos - mean_p, axis=1)))
        moved_rad = float(np.max(_angle_between(quats / np.linalg.norm(quats, axis=1, keepdims=True), mean_q)))
        if moved_m > WRIST_STILL_M or moved_rad > WRIST_STILL_RAD:
            prompt(f"  You moved during the capture ({moved_m * 100:.1f} cm, {math.degrees(moved_rad):.0f} deg; "
                   f"still is under {WRIST_STILL_M * 100:.0f} cm and {math.degrees(WRIST_STILL_RAD):.0f} deg).")
            if attempt < 3:
                answer = ask("  Press Enter to try again, or type k and Enter to keep this capture: ")
                if answer.strip().lower() not in ("k", "keep"):
                    continue
            else:
                prompt("  Keeping the last capture; run the calibration again if it is wrong.")
        nw = NeutralWrist(tuple(mean_p), tuple(mean_q), samples[0].frame or "tracker", driver)
        prompt(f"  Neutral wrist pose stored ({len(samples)} samples): position "
               f"({mean_p[0]:.3f}, {mean_p[1]:.3f}, {mean_p[2]:.3f}) m in the {nw.frame} frame.")
        return nw
    raise AssertionError("unreachable")


def calibrate_operator(
    session_config: SessionConfig,
    name: str,
    prompt: Callable[[str], object] = print,
    ask: Callable[[str], str] = input,
    seconds: float = 2.0,
    *,
    wrist_s: float = 1.0,
    sides: tuple[Side, ...] | None = None,
    save: bool = True,
) -> OperatorProfile:
    """Walk operator ``name`` through the calibration with the session's devices, per side:
    hand length (asked), glove ranges (the hand device's ``calibrate()``, ``seconds`` per pose),
    splay and pinch (by the device when its ``calibrate()`` has those steps, else measured on its
    keypoints as check values), and the neutral wrist pose (wrist device, averaged over
    ``wrist_s``). Devices are opened per side and closed afterwards, also on errors. Values a
    session cannot measure (e.g. no wrist device) are kept from the operator's previous profile.
    Saves the profile (unless ``save`` is false) and returns it; nothing is saved on an error."""
    check_name(name)
    old = load_profile(name) if profile_path(name).exists() else None
    todo = [s for s in (sides or SIDES)
            if (ic := session_config.inputs.get(s)) is not None and (ic.hand or ic.wrist)]
    if not todo:
        raise ConfigError("the session has no hand or wrist device for the sides asked; nothing to calibrate")
    src = getattr(session_config, "source", None)
    prompt(f"Operator calibration for {name!r}" + (f" with session {src}" if src else "") + ".")
    prompt("For each hand: (1) hand length, (2) glove ranges (open and closed hand, finger spread, pinch), "
           "(3) a neutral wrist pose. Ctrl-C aborts; nothing is saved until the end.")
    new_sides: dict[Side, SideProfile] = dict(old.sides) if old else {}
    for side in todo:
        ic = session_config.inputs[side]
        prev = new_sides.get(side) or SideProfile()
        prompt(f"\n== {side.upper()} hand ==")
        default = prev.hand_length_m or _device_default_hand_length(session_config, ic.hand) or DEFAULT_HAND_LENGTH_M
        length = _ask_hand_length(side, default, prompt, ask)
        overrides: dict[str, dict[str, Any]] = {}
        if ic.hand and "hand_length_m" in _init_fields(session_config.devices[ic.hand].driver):
            overrides[ic.hand] = {"hand_length_m": length}  # keypoints (pinch check) at the operator's size
        glove, glove_driver = prev.glove, prev.glove_driver
        checks = dict(prev.checks)
        neutral = prev.neutral_wrist
        names = [n for n in (ic.hand, ic.wrist) if n]
        with _open_devices(session_config, names, overrides) as devs:
            if ic.hand:
                driver = session_config.devices[ic.hand].driver
                result, own = _glove_step(side, ic.hand, driver, devs[ic.hand], seconds, prompt, ask)
                if result:
                    glove, glove_driver = result, driver
                checks.update(_keypoint_checks(side, ic.hand, devs[ic.hand], own, seconds, prompt, ask))
            else:
                prompt(f"  No {side} hand device in this session: glove steps skipped"
                       + (" (the previous glove calibration is kept)." if glove else "."))
            if ic.wrist:
                driver = session_config.devices[ic.wrist].driver
                neutral = _wrist_step(side, ic.wrist, driver, devs[ic.wrist], wrist_s, prompt, ask)
            else:
                prompt(f"  No {side} wrist device in this session: neutral wrist pose skipped"
                       + (" (the previous one is kept)." if neutral else "."))
        new_sides[side] = SideProfile(hand_length_m=length, glove=glove, glove_driver=glove_driver,
                                      neutral_wrist=neutral, hand_calibration=prev.hand_calibration, checks=checks)
    now = _now()
    profile = OperatorProfile(name=name, sides=new_sides, created=old.created if old else now, updated=now)
    if save:
        path = save_profile(profile)
        prompt(f"\nSaved operator profile {name!r} to {path}.")
        prompt(f"Use it with: teleop run SESSION --operator {name}")
    return profile
