"""The XR page's wire messages (JSON text frames over the secure WebSocket), decoded strictly.

Page -> server:

* ``{"type": "frame", "seq": int, "t_ms": XRFrame time [ms], "hands": {side: hand}, "controllers":
  {side: controller}, "head": pose | null}`` once per XR frame. A hand is ``{"joints": 75 numbers,
  "wrist": pose}``: the 25 joint positions [m] in XRHand order (x, y, z each, in the page's
  ``local-floor`` space: WebXR's y-up axes) and the wrist joint's pose. A controller (the fallback
  without hand tracking) is ``{"grip": pose, "trigger": 0..1, "squeeze": 0..1, "buttons": [names]}``.
  A pose is 7 numbers: position x, y, z [m], then the quaternion x, y, z, w (WebXR's order).
* ``{"type": "visibility", "state": "visible" | "visible-blurred" | "hidden"}`` when the headset
  sleeps, the page is hidden, or the XR session ends (``hidden``).

Console page -> server (its own socket, ``/console-ws``; ``decode_console``):

* ``{"type": "action", "action": name}``, ``name`` one of ``CONSOLE_ACTIONS``; ``episode_task`` and
  ``episode_note`` carry ``"text"`` (printable, at most ``MAX_TEXT`` characters).
* ``{"type": "camera_ack", "name": camera, "index": frame index}``: a camera frame was drawn
  (sent only when ``teleop bench web`` asks the page to, to time camera -> drawn in a browser).

Server -> console: ``{"type": "status", ...}`` text frames (the session's status, ~10 Hz) and the
camera's binary frames (teleop/web/camera.py).

``decode_message`` and ``decode_console`` raise nothing but ``WireError`` for any input
(tests/web/test_protocol.py).
JSON, measured against a binary layout: a two-hand frame from the page (numbers rounded to 1e-5)
is ~1.5 kB (float32 binary: 0.7 kB) and decodes in ~60 us in Python (plus ~100 us for the
driver's conversion), far under the 11 ms a 90 Hz headset leaves and ~1 Mbit/s on the LAN, so the
readable, debuggable format stays.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from teleop.errors import DecodeError
from teleop.types import Side

__all__ = ["WireError", "XRPose", "XRHandFrame", "XRController", "XRFrameMsg", "VisibilityMsg", "decode_message",
           "MAX_MESSAGE_BYTES", "N_JOINTS", "CONTROLLER_BUTTONS", "ConsoleAction", "CameraAck", "decode_console",
           "CONSOLE_ACTIONS", "MAX_TEXT"]

F64 = npt.NDArray[np.float64]
N_JOINTS: Final = 25
MAX_MESSAGE_BYTES: Final = 16 * 1024  # a two-hand frame is ~1.6 kB; ten times that is not a frame
_MAX_POS_M: Final = 50.0  # a tracked hand or head farther than this from the floor origin is garbage
CONTROLLER_BUTTONS: Final = ("trigger", "squeeze", "thumbstick", "a", "b", "x", "y", "menu")
_VISIBILITY: Final = ("visible", "visible-blurred", "hidden")
#: What a console button can ask for: the session's own requests and the recorder's episode controls.
CONSOLE_ACTIONS: Final = ("estop", "release", "engage", "disengage", "intervene", "episode_start", "episode_stop",
                          "episode_discard", "episode_success", "episode_failure", "episode_task", "episode_note")
_TEXT_ACTIONS: Final = ("episode_task", "episode_note")
MAX_TEXT: Final = 500


class WireError(DecodeError):
    """A message from a page was rejected; ``reason`` is the counter's name."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)


@dataclass(frozen=True, slots=True)
class XRPose:
    position_m: F64  # (3,) WebXR axes (y up)
    quat_xyzw: F64  # (4,) unit, WebXR's order


@dataclass(frozen=True, slots=True)
class XRHandFrame:
    joints_m: F64  # Shape (25, 3), XRHand joint order, WebXR axes
    wrist: XRPose


@dataclass(frozen=True, slots=True)
class XRController:
    grip: XRPose
    trigger: float
    squeeze: float
    buttons: frozenset[str]


@dataclass(frozen=True, slots=True)
class XRFrameMsg:
    seq: int
    t_ms: float
    hands: dict[Side, XRHandFrame]
    controllers: dict[Side, XRController]
    head: XRPose | None


@dataclass(frozen=True, slots=True)
class VisibilityMsg:
    state: Literal["visible", "visible-blurred", "hidden"]


@dataclass(frozen=True, slots=True)
class ConsoleAction:
    action: str  # one of CONSOLE_ACTIONS
    text: str = ""  # episode_task, episode_note


@dataclass(frozen=True, slots=True)
class CameraAck:
    name: str
    index: int


def _object(data: str | bytes) -> dict:
    """A JSON text frame -> its object; ``WireError`` for anything else."""
    if isinstance(data, bytes | bytearray):
        raise WireError("binary", "the page sends JSON text frames")
    if not isinstance(data, str):
        raise WireError("bad_type", type(data).__name__)
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError("too_large", f"{len(data)} > {MAX_MESSAGE_BYTES} bytes")
    try:
        obj = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise WireError("bad_json", str(exc)[:80]) from None
    if not isinstance(obj, dict):
        raise WireError("bad_message", "not a JSON object")
    return obj


def decode_console(data: str | bytes) -> ConsoleAction | CameraAck:
    """One text frame from the console page -> a typed message; ``WireError`` for anything else."""
    obj = _object(data)
    kind = obj.get("type")
    if kind == "camera_ack":
        _keys(obj, {"type", "name", "index"}, "camera_ack")
        name, index = obj["name"], obj["index"]
        if not isinstance(name, str) or not 0 < len(name) <= 64 or type(index) is not int or not 0 <= index < 2**32:
            raise WireError("bad_field", "camera_ack: a camera name and a frame index 0..2**32-1")
        return CameraAck(name=name, index=index)
    if kind != "action":
        raise WireError("unknown_type", repr(kind)[:40])
    action = obj.get("action")
    if action not in CONSOLE_ACTIONS:
        raise WireError("bad_field", f"action {str(action)[:20]!r}; allowed {CONSOLE_ACTIONS}")
    if action not in _TEXT_ACTIONS:
        _keys(obj, {"type", "action"}, action)
        return ConsoleAction(action=action)
    _keys(obj, {"type", "action", "text"}, action)
    text = obj["text"]
    if not isinstance(text, str) or len(text) > MAX_TEXT or not text.isprintable():
        raise WireError("bad_field", f"{action} text: printable, at most {MAX_TEXT} characters")
    return ConsoleAction(action=action, text=text.strip())


def decode_message(data: str | bytes) -> XRFrameMsg | VisibilityMsg:
    """One text frame from the page -> a typed message; ``WireError`` for anything else."""
    obj = _object(data)
    kind = obj.get("type")
    if kind == "frame":
        return _frame(obj)
    if kind == "visibility":
        _keys(obj, {"type", "state"}, "visibility")
        if obj.get("state") not in _VISIBILITY:
            raise WireError("bad_field", f"visibility state {str(obj.get('state'))[:20]!r}; allowed {_VISIBILITY}")
        return VisibilityMsg(state=obj["state"])
    raise WireError("unknown_type", repr(kind)[:40])


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number the page may send")


def _keys(obj: dict, allowed: set[str], what: str, required: set[str] | None = None) -> None:
    extra = set(obj) - allowed
    if extra:
        raise WireError("unknown_field", f"{what}: {sorted(map(str, extra))[:3]}")
    missing = (allowed if required is None else required) - set(obj)
    if missing:
        raise WireError("missing_field", f"{what}: {sorted(missing)}")


def _numbers(value: Any, n: int, what: str, bound: float) -> F64:
    if not isinstance(value, list) or len(value) != n:
        raise WireError("bad_field", f"{what}: expected {n} numbers")
    if not all(type(v) in (int, float) for v in value):
        raise WireError("bad_field", f"{what}: not all numbers")
    try:
        arr = np.array(value, dtype=np.float64)
    except OverflowError:  # an integer too large for a float
        raise WireError("out_of_range", f"{what}: a number beyond a float") from None
    if not np.isfinite(arr).all() or np.abs(arr).max(initial=0.0) > bound:
        raise WireError("out_of_range", f"{what}: not finite or beyond {bound}")
    return arr


def _pose(value: Any, what: str) -> XRPose:
    arr = _numbers(value, 7, what, _MAX_POS_M)
    q = arr[3:]
    norm = float(np.linalg.norm(q))
    if not 0.9 < norm < 1.1:
        raise WireError("out_of_range", f"{what}: quaternion norm {norm:.3g}, not ~1")
    return XRPose(position_m=arr[:3], quat_xyzw=q / norm)


def _side_map(value: Any, what: str) -> dict:
    if not isinstance(value, dict) or not set(value) <= {"left", "right"}:
        raise WireError("bad_field", f"{what}: an object with keys left, right")
    return value


def _hand(value: Any, side: str) -> XRHandFrame:
    if not isinstance(value, dict):
        raise WireError("bad_field", f"hand {side}: not an object")
    _keys(value, {"joints", "wrist"}, f"hand {side}")
    joints = _numbers(value["joints"], 3 * N_JOINTS, f"hand {side} joints", _MAX_POS_M).reshape(N_JOINTS, 3)
    return XRHandFrame(joints_m=joints, wrist=_pose(value["wrist"], f"hand {side} wrist"))


def _unit(value: Any, what: str) -> float:
    if type(value) not in (int, float) or not 0.0 <= value <= 1.0:  # NaN fails the range too
        raise WireError("out_of_range", f"{what}: a number 0..1")
    return float(value)


def _controller(value: Any, side: str) -> XRController:
    if not isinstance(value, dict):
        raise WireError("bad_field", f"controller {side}: not an object")
    _keys(value, {"grip", "trigger", "squeeze", "buttons"}, f"controller {side}")
    buttons = value["buttons"]
    if not isinstance(buttons, list) or len(buttons) > len(CONTROLLER_BUTTONS) or \
            not all(isinstance(b, str) and b in CONTROLLER_BUTTONS for b in buttons):
        raise WireError("bad_field", f"controller {side} buttons: names from {CONTROLLER_BUTTONS}")
    return XRController(grip=_pose(value["grip"], f"controller {side} grip"),
                        trigger=_unit(value["trigger"], f"controller {side} trigger"),
                        squeeze=_unit(value["squeeze"], f"controller {side} squeeze"), buttons=frozenset(buttons))


def _frame(obj: dict) -> XRFrameMsg:
    _keys(obj, {"type", "seq", "t_ms", "hands", "controllers", "head"}, "frame")
    seq, t_ms = obj["seq"], obj["t_ms"]
    if type(seq) is not int or not 0 <= seq < 2**53:
        raise WireError("bad_field", "seq: a whole number >= 0")
    if type(t_ms) not in (int, float) or not math.isfinite(t_ms) or t_ms < 0:
        raise WireError("bad_field", "t_ms: a finite time >= 0")
    hands = {side: _hand(v, side) for side, v in _side_map(obj["hands"], "hands").items()}
    controllers = {side: _controller(v, side) for side, v in _side_map(obj["controllers"], "controllers").items()}
    head = None if obj["head"] is None else _pose(obj["head"], "head")
    return XRFrameMsg(seq=seq, t_ms=float(t_ms), hands=hands, controllers=controllers, head=head)
