"""Message schemas of the robot link. Field units are in the names (``_s``, ``_ns``, ``_hz``).

Variable dimensions are the ``Dim``s below, each with the largest size a message may carry: a
sender cannot make a message (or a robot state that echoes a command) arbitrarily large. Above
its maximum an array is rejected as ``too_large``. Symbols: ``n`` commanded joints (spec order),
``b`` free bodies, ``f`` fingertips, ``k`` source samples a command came from, ``g`` groups,
``c`` cameras or channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from teleop.bus.codec import Arr, Dim, Message, message

__all__ = [
    "JointCommand",
    "RobotState",
    "CameraFrame",
    "Request",
    "Reply",
    "RobotSpec",
    "MODES",
    "HandKeypoints",
    "WristPose",
    "WristMatrix",
    "SessionCommand",
    "HandSampleMsg",
    "PoseSampleMsg",
    "TactileSampleMsg",
    "ButtonMsg",
    "SessionEvent",
    "SessionInfo",
    "VideoFrameRef",
    "PolicyObservation",
    "PolicyAction",
    "DIMS",
]

F64 = npt.NDArray[np.float64]
_EMPTY_I8 = np.zeros(0, dtype=np.int64)

# -- the largest sizes any message may carry -----------------------------------------------------
JOINTS = Dim("n", 512)  # commanded joints of a robot (the bundled humanoid has 46)
SOURCES = Dim("k", 16)  # device samples one command came from (a session uses 4)
BODIES = Dim("b", 256)  # free bodies whose poses a robot reports
TRACKED = Dim("bt", 256)  # the same bodies, in the optional tracking fields (empty, or one per body)
TRUTH = Dim("bg", 256)  # the same bodies again, in the simulator-only ground truth (empty, or one per body)
FINGERTIPS = Dim("f", 64)
GROUPS = Dim("g", 64)
CAMERAS = Dim("c", 16)
IMAGE_H, IMAGE_W = Dim("h", 4096), Dim("w", 4096)
KEYPOINTS = Dim("k", 64)  # one hand's keypoints (21 MediaPipe, 26 OpenXR)
ANGLES = Dim("a", 64)
CHANNELS = Dim("c", 256)  # raw device channels
MARKERS = Dim("m", 4096)  # tactile markers
MASK_H, MASK_W = Dim("h", 2048), Dim("w", 2048)
TACTILE_H, TACTILE_W = Dim("ih", 2048), Dim("iw", 2048)
POLICY_JOINTS = Dim("p", 512)
HANDS = Dim("h", 4)
TACTILE = Dim("t", 64)
HORIZON = Dim("H", 1024)  # rows of one policy action chunk
OBS_IMAGE_H, OBS_IMAGE_W = Dim("ih", 4096), Dim("iw", 4096)
#: Every declared dimension, for docs and tests.
DIMS = {
    name: value for name, value in dict(globals()).items() if isinstance(value, Dim)
}

#: Robot modes reported in ``RobotState.mode``.
MODES = ("idle", "active", "hold", "estop")


@message("joint_command")
@dataclass(frozen=True, slots=True)
class JointCommand(Message):
    """Joint position targets for every commanded joint, in spec order.

    ``source_capture_ns`` are the capture times of the device samples this command was computed
    from (latency tracing); ``author`` is ``human`` or ``policy`` (intervention logging);
    ``instance`` is the server instance it is meant for (``RobotSpec.instance``): a server drops a
    command meant for another instance (one queued while it restarted), "" is for any."""

    q: F64
    source_capture_ns: npt.NDArray[np.int64] = field(default_factory=lambda: _EMPTY_I8)
    author: str = "human"
    instance: str = ""

    SCHEMA = {
        "q": Arr("float64", (JOINTS,), finite=True),
        "source_capture_ns": Arr("int64", (SOURCES,)),
        "author": str,
        "instance": str,
    }


@message("robot_state")
@dataclass(frozen=True, slots=True)
class RobotState(Message):
    """Measured state. ``target`` is what the server actually applied after clamping to
    position limits and rate-limiting to velocity limits. ``cmd_*`` trace the last command:
    its sequence, its header capture time, when it arrived and when it was applied (monotonic
    ns on the server host). ``instance`` is the server instance (``RobotSpec.instance``) that
    measured it: a client drives only the instance it connected to.

    Object poses measured by a tracker (robots/objects) say how fresh they are: ``body_pose_ns``
    the capture time of each row (monotonic ns on the server host), ``body_status`` 0 measured in
    the newest frame, 1 held (not seen since ``body_pose_ns``), 2 never seen (the row is a
    placeholder). Both empty: every row is measured with this state (a simulator's truth).
    ``body_pose_truth``: a simulator that tracks its own renders puts MuJoCo's pose at each row's
    capture here, for scoring; a real robot leaves it empty."""

    time_s: float
    mode: str
    q: F64
    dq: F64
    target: F64
    effort: F64
    body_pose: F64
    fingertip_force: F64
    cmd_seq: int = -1
    cmd_capture_ns: int = 0
    cmd_recv_ns: int = 0
    cmd_applied_ns: int = 0
    cmd_source_capture_ns: npt.NDArray[np.int64] = field(default_factory=lambda: _EMPTY_I8)
    instance: str = ""
    body_pose_ns: npt.NDArray[np.int64] = field(default_factory=lambda: _EMPTY_I8)
    body_status: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros(0, np.uint8))
    body_pose_truth: F64 = field(default_factory=lambda: np.zeros((0, 7)))

    SCHEMA = {
        "time_s": float,
        "mode": str,
        "q": Arr("float64", (JOINTS,)),
        "dq": Arr("float64", (JOINTS,)),
        "target": Arr("float64", (JOINTS,)),
        "effort": Arr("float64", (JOINTS,)),
        "body_pose": Arr("float64", (BODIES, 7)),
        "fingertip_force": Arr("float64", (FINGERTIPS, 3)),
        "cmd_seq": int,
        "cmd_capture_ns": int,
        "cmd_recv_ns": int,
        "cmd_applied_ns": int,
        "cmd_source_capture_ns": Arr("int64", (SOURCES,)),
        "instance": str,
        "body_pose_ns": Arr("int64", (TRACKED,)),
        "body_status": Arr("uint8", (TRACKED,)),
        "body_pose_truth": Arr("float64", (TRUTH, 7)),
    }


@message("camera_frame")
@dataclass(frozen=True, slots=True)
class CameraFrame(Message):
    """One RGB frame, shape (height, width, 3) uint8; ``time_s`` is robot/sim time at render."""

    camera: str
    frame_index: int
    time_s: float
    image: npt.NDArray[np.uint8]

    SCHEMA = {"camera": str, "frame_index": int, "time_s": float, "image": Arr("uint8", (IMAGE_H, IMAGE_W, 3))}


@message("request")
@dataclass(frozen=True, slots=True)
class Request(Message):
    """Request/reply call: ``op`` in spec, estop, release, ping, stats, reset."""

    op: str
    args: dict[str, Any] = field(default_factory=dict)

    SCHEMA = {"op": str, "args": "nummap"}


@message("reply")
@dataclass(frozen=True, slots=True)
class Reply(Message):
    """Generic answer; ``ok`` false carries ``error`` saying what went wrong and what to do."""

    op: str
    ok: bool
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    SCHEMA = {"op": str, "ok": bool, "error": str, "values": "nummap"}


@message("robot_spec")
@dataclass(frozen=True, slots=True)
class RobotSpec(Message):
    """What a robot server offers. Joints are grouped contiguously: ``group_names[i]`` has
    ``group_sizes[i]`` joints, in command order. Limits in [rad], [rad/s]. ``instance`` names
    this run of the server (new at every start, also in every ``RobotState``): a session that
    sees another instance on the same endpoints knows the robot it engaged is gone."""

    name: str
    joint_names: tuple[str, ...]
    group_names: tuple[str, ...]
    group_sizes: npt.NDArray[np.int64]
    lower: F64
    upper: F64
    velocity: F64
    body_names: tuple[str, ...]
    fingertip_names: tuple[str, ...]
    camera_names: tuple[str, ...]
    camera_shapes: npt.NDArray[np.int64]
    camera_hz: float
    state_hz: float
    watchdog_s: float
    endpoints: dict[str, str]
    wrist_frames: tuple[str, ...] = ()
    description_toml: str = ""
    instance: str = ""

    SCHEMA = {
        "name": str,
        "joint_names": "strs",
        "group_names": "strs",
        "group_sizes": Arr("int64", (GROUPS,)),
        "lower": Arr("float64", (JOINTS,)),
        "upper": Arr("float64", (JOINTS,)),
        "velocity": Arr("float64", (JOINTS,)),
        "body_names": "strs",
        "fingertip_names": "strs",
        "camera_names": "strs",
        "camera_shapes": Arr("int64", (CAMERAS, 2)),
        "camera_hz": float,
        "state_hz": float,
        "watchdog_s": float,
        "endpoints": "strmap",
        "wrist_frames": "strs",
        "description_toml": str,
        "instance": str,
    }

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    def group_slice(self, group: str) -> slice:
        """Slice of the command vector holding ``group`` (e.g. ``"left_hand"``)."""
        start = 0
        for name, size in zip(self.group_names, self.group_sizes):
            if name == group:
                return slice(start, start + int(size))
            start += int(size)
        raise KeyError(f"no group {group!r}; groups: {list(self.group_names)}")


# -- input streams (drivers/network): what a VR app, mocap bridge or hand tracker publishes ------


@message("hand_keypoints")
@dataclass(frozen=True, slots=True)
class HandKeypoints(Message):
    """One hand's keypoints, Shape (k, 3), in the layout and frame the driver is configured for
    (MediaPipe 21 in the wrist frame by default)."""

    side: str
    keypoints: npt.NDArray[np.float64]

    SCHEMA = {"side": str, "keypoints": Arr("float64", (KEYPOINTS, 3), finite=True)}


@message("wrist_pose")
@dataclass(frozen=True, slots=True)
class WristPose(Message):
    """A wrist pose: position (3,) and quaternion (w, x, y, z) (4,)."""

    side: str
    position: F64
    quat_wxyz: F64

    SCHEMA = {"side": str, "position": Arr("float64", (3,), finite=True), "quat_wxyz": Arr("float64", (4,), finite=True)}


@message("wrist_matrix")
@dataclass(frozen=True, slots=True)
class WristMatrix(Message):
    """A wrist pose as a 4x4 homogeneous matrix flattened to 16 floats (row- or column-major,
    as configured per source)."""

    side: str
    matrix: F64

    SCHEMA = {"side": str, "matrix": Arr("float64", (16,), finite=True)}


# -- the session tap (teleop/session/tap.py): what the recorder and other observers see -------------
# One topic per stream: session/command, session/event, session/info, session/hand/<device>,
# session/pose/<device>, session/tactile/<device>, session/button/<device>. Header capture_ns is
# the device capture time (samples) or the tick time (commands), on the session host's clock.


@message("session_command")
@dataclass(frozen=True, slots=True)
class SessionCommand(Message):
    """What the session sent the robot this tick (``q``, after safety) and why. ``target`` is the
    retargeted (or policy) target before safety; ``author`` is ``human``, ``policy`` or ``hold``;
    ``intervention`` is true while a human corrects a policy; ``policy_q`` is the policy's
    proposal during an intervention (empty otherwise)."""

    tick: int
    state: str
    q: F64
    target: F64
    author: str = "human"
    intervention: bool = False
    policy_q: F64 = field(default_factory=lambda: np.zeros(0))
    flags: int = 0
    source_capture_ns: npt.NDArray[np.int64] = field(default_factory=lambda: _EMPTY_I8)

    SCHEMA = {
        "tick": int,
        "state": str,
        "q": Arr("float64", (JOINTS,)),
        "target": Arr("float64", (JOINTS,)),
        "author": str,
        "intervention": bool,
        "policy_q": Arr("float64", (POLICY_JOINTS,)),
        "flags": int,
        "source_capture_ns": Arr("int64", (SOURCES,)),
    }


@message("hand_sample")
@dataclass(frozen=True, slots=True)
class HandSampleMsg(Message):
    """A driver's HandSample: keypoints (21, 3) in the wrist frame [m] (empty when the device
    gives none), joint angles [rad], raw channels (named in SessionInfo)."""

    device: str
    side: str
    seq: int
    keypoints: F64
    angles: F64
    channels: F64
    buttons: tuple[str, ...] = ()

    SCHEMA = {
        "device": str,
        "side": str,
        "seq": int,
        "keypoints": Arr("float64", (KEYPOINTS, 3)),
        "angles": Arr("float64", (ANGLES,)),
        "channels": Arr("float64", (CHANNELS,)),
        "buttons": "strs",
    }


@message("pose_sample")
@dataclass(frozen=True, slots=True)
class PoseSampleMsg(Message):
    """A driver's PoseSample (wrist tracker, SpaceMouse...): position [m], quaternion (w, x, y, z)."""

    device: str
    side: str
    seq: int
    position_m: F64
    quat_wxyz: F64
    frame: str = "tracker"
    channels: F64 = field(default_factory=lambda: np.zeros(0))

    SCHEMA = {
        "device": str,
        "side": str,
        "seq": int,
        "position_m": Arr("float64", (3,)),
        "quat_wxyz": Arr("float64", (4,)),
        "frame": str,
        "channels": Arr("float64", (CHANNELS,)),
    }


@message("tactile_sample")
@dataclass(frozen=True, slots=True)
class TactileSampleMsg(Message):
    """A driver's TactileSample: marker positions and displacements [px] (m, 2), contact mask
    (h, w), force [N] (3,) in the sensor frame; ``image`` (ih, iw, 3) RGB or empty (0, 0, 3)."""

    device: str
    side: str
    finger: str
    seq: int
    markers_px: F64
    displacement_px: F64
    contact_mask: npt.NDArray[np.bool_]
    force_n: F64
    torsion_nm: float = float("nan")
    image: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 0, 3), np.uint8))

    SCHEMA = {
        "device": str,
        "side": str,
        "finger": str,
        "seq": int,
        "markers_px": Arr("float64", (MARKERS, 2)),
        "displacement_px": Arr("float64", (MARKERS, 2)),
        "contact_mask": Arr("bool", (MASK_H, MASK_W)),
        "force_n": Arr("float64", (3,)),
        "torsion_nm": float,
        "image": Arr("uint8", (TACTILE_H, TACTILE_W, 3)),
    }


@message("button")
@dataclass(frozen=True, slots=True)
class ButtonMsg(Message):
    device: str
    button: str
    pressed: bool
    side: str = ""

    SCHEMA = {"device": str, "button": str, "pressed": bool, "side": str}


@message("session_event")
@dataclass(frozen=True, slots=True)
class SessionEvent(Message):
    """Something happened: ``event`` in state (``detail`` = the new state), fault (``detail`` =
    reason: message), episode (``detail`` = start, stop, discard, success, failure, task, note;
    ``values`` may carry ``text``), clock (``values``: source, offset_ns, rtt_ns: add offset_ns
    to that source's times to put them on the session clock), intervention (takeover/return)."""

    event: str
    detail: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    SCHEMA = {"event": str, "detail": str, "values": "nummap"}


@message("session_info")
@dataclass(frozen=True, slots=True)
class SessionInfo(Message):
    """Published at start and once a second: what a recorder needs for episode metadata."""

    session: str
    operator: str
    robot: str
    rate_hz: float
    joint_names: tuple[str, ...]
    session_toml: str
    description_toml: str
    devices: dict[str, str]  # device name -> driver
    channel_names: dict[str, str]  # device name -> comma-separated channel names
    software: str

    SCHEMA = {
        "session": str,
        "operator": str,
        "robot": str,
        "rate_hz": float,
        "joint_names": "strs",
        "session_toml": str,
        "description_toml": str,
        "devices": "strmap",
        "channel_names": "strmap",
        "software": str,
    }


@message("video_frame")
@dataclass(frozen=True, slots=True)
class VideoFrameRef(Message):
    """Written by the recorder in place of an image: frame ``video_index`` of the episode video
    ``video`` is the image of the camera message (``source``, ``seq``, header capture time) it
    received; ``video_index`` is -1 when the encoder had to drop it."""

    video: str
    video_index: int
    frame_index: int
    time_s: float
    source: str
    seq: int

    SCHEMA = {"video": str, "video_index": int, "frame_index": int, "time_s": float, "source": str, "seq": int}


# -- the policy protocol (teleop/policy/): observations out, joint-target chunks back ---------------


@message("policy_obs")
@dataclass(frozen=True, slots=True)
class PolicyObservation(Message):
    """What the runtime sends a policy server (request/reply). ``obs_id`` numbers requests;
    ``t_ns`` is the observation time on the runtime's clock. ``q``/``dq``: measured joints (spec
    order); ``command``: the last command sent; ``keypoints`` (h, 21, 3): the operator's hands
    (empty while no human input); ``tactile_force`` (t, 3); ``object_poses`` (b, 7) when the
    robot reports them (sim); ``images`` (c, ih, iw, 3) RGB, empty unless configured;
    ``episode_time_s``: seconds since the rollout started."""

    obs_id: int
    t_ns: int
    episode_time_s: float
    q: F64
    dq: F64
    command: F64
    object_poses: F64
    tactile_force: F64 = field(default_factory=lambda: np.zeros((0, 3)))
    keypoints: F64 = field(default_factory=lambda: np.zeros((0, 21, 3)))
    images: npt.NDArray[np.uint8] = field(default_factory=lambda: np.zeros((0, 0, 0, 3), np.uint8))
    task: str = ""

    SCHEMA = {
        "obs_id": int,
        "t_ns": int,
        "episode_time_s": float,
        "q": Arr("float64", (JOINTS,), finite=True),
        "dq": Arr("float64", (JOINTS,), finite=True),
        "command": Arr("float64", (JOINTS,), finite=True),
        "object_poses": Arr("float64", (BODIES, 7), finite=True),
        "tactile_force": Arr("float64", (TACTILE, 3), finite=True),
        "keypoints": Arr("float64", (HANDS, 21, 3), finite=True),
        "images": Arr("uint8", (CAMERAS, OBS_IMAGE_H, OBS_IMAGE_W, 3)),
        "task": str,
    }


@message("policy_action")
@dataclass(frozen=True, slots=True)
class PolicyAction(Message):
    """A policy's answer: an action chunk of joint targets ``q`` (H, n) in spec order. Row k is
    the target for ``t_ns(obs) + start_s + k * dt_s``; a single target is H = 1. ``done`` says
    the policy thinks the task is over."""

    obs_id: int
    q: F64
    dt_s: float
    start_s: float = 0.0
    done: bool = False

    SCHEMA = {
        "obs_id": int,
        "q": Arr("float64", (HORIZON, JOINTS), finite=True),
        "dt_s": float,
        "start_s": float,
        "done": bool,
    }
