"""What the view logs to rerun, from decoded bus messages, thinned to rates a viewer can draw.

One ``ViewLogger`` is fed the same way live (``live.py``, from the bus) and from a recorded
episode (``episode.py``, from its log): each ``on_*`` takes a message and its capture time on
the session clock. Streams are thinned on a time grid per stream (``Rates``), so a 500 Hz
state becomes 50 joint samples a second and 25 robot poses, whatever the source rate; what is
left out is counted in ``thinned``. State changes, faults and events are never thinned.

Entities (the blueprint in ``blueprint.py`` shows them):

* ``joints/<group>/commanded`` and ``joints/<group>/measured``: scalars, one series per joint
  (the command the session sent after safety; the robot's measured position);
* ``world/robot/measured``, ``world/robot/commanded``: the robot's stick figure at both;
  ``world/robot/fingertips`` (red with contact), ``world/robot/forces`` (arrows, 5 mm per N);
* ``world/objects/<body>``: each free body's pose (its shapes under it), ``world/static``;
* ``world/operator/<side>``: the operator's hand keypoints on the robot's measured wrist frame
  (the wrist frame of both is the same convention, docs/hand-keypoints.md);
* ``operator/<side>``: the wrist tracker's pose, the hand keypoints under it;
* ``cameras/<name>``, ``tactile/<device>/image``: JPEG images; ``tactile/<device>/force``;
* ``forces/fingertips``: contact force magnitude per fingertip [N];
* ``states/session``, ``states/robot``: state changes; ``log``: events and faults.
"""

from __future__ import annotations

import colorsys
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rerun as rr

from teleop.bus.messages import (
    HandSampleMsg,
    PoseSampleMsg,
    RobotSpec,
    RobotState,
    SessionCommand,
    SessionEvent,
    SessionInfo,
    TactileSampleMsg,
)
from teleop.types import SIDES
from teleop.view.blueprint import build_blueprint

__all__ = ["ViewLogger", "Rates", "TIMELINE", "HAND_BONES"]

logger = logging.getLogger(__name__)

#: The timeline every entity is logged on: seconds since the view's first message (live) or the
#: episode's start (recorded), on the session clock.
TIMELINE = "session_time"
#: MediaPipe hand topology (docs/hand-keypoints.md): one strip per finger from the wrist.
HAND_BONES = [[0, 1, 2, 3, 4], [0, 5, 6, 7, 8], [0, 9, 10, 11, 12], [0, 13, 14, 15, 16], [0, 17, 18, 19, 20],
              [5, 9, 13, 17]]
FORCE_M_PER_N = 0.005  # arrow length per newton of fingertip force
CONTACT_N = 0.05  # below this a fingertip shows no contact
_JPEG_QUALITY = 85
_GREY = (150, 155, 165, 255)
_GHOST = (255, 140, 0, 150)
_HAND_COLOURS = {"left": (60, 160, 255, 255), "right": (255, 80, 160, 255)}


@dataclass(frozen=True)
class Rates:
    """Per-stream rates [Hz] the view logs at (at most)."""

    joints_hz: float = 50.0  # commanded and measured joints, fingertip force magnitudes
    scene_hz: float = 15.0  # the 3D robot poses, objects, force arrows
    hands_hz: float = 15.0  # keypoints and wrist poses, per device
    cameras_hz: float = 10.0  # per camera
    tactile_hz: float = 50.0  # tactile force, per sensor
    tactile_image_hz: float = 5.0  # tactile images, per sensor


class ViewLogger:
    def __init__(self, rec: Any, rates: Rates = Rates(), description: Path | None = None) -> None:
        self.rec = rec
        self.rates = rates
        self.description = description  # the robot's description TOML (for the 3D robot)
        self.t0_ns: int | None = None
        self.logged: Counter[str] = Counter()
        self.thinned: Counter[str] = Counter()
        self.notes: list[str] = []  # what the view could not show, and why
        self.spec: RobotSpec | None = None
        self.scene: Any = None  # teleop.view.scene.RobotScene when the robot's model is known
        self._next: dict[str, int] = {}
        self._groups: list[tuple[str, slice]] = []
        self._tip_index = np.zeros(0, np.int64)  # spec fingertip i -> scene fingertip
        self._wrist: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._last: dict[str, np.ndarray] = {}  # what the 3D scene shows now, to skip what did not move
        self._states: dict[str, str] = {}
        self._tactile: list[str] = []
        self._hands: dict[str, Any] = {}  # side -> HumanHand, for gloves that send angles only
        self._info_key: tuple | None = None

    # -- time and thinning -----------------------------------------------------------------------
    def _at(self, t_ns: int) -> None:
        if self.t0_ns is None:
            self.t0_ns = int(t_ns)
        self.rec.set_time(TIMELINE, duration=(int(t_ns) - self.t0_ns) * 1e-9)

    def _due(self, key: str, t_ns: int, hz: float) -> bool:
        """On a grid of 1/hz per stream: the first message from half a period before each grid
        point on is logged (so a live feed polled at about ``hz`` is not halved by its jitter)."""
        period = int(1e9 / hz)
        nxt = self._next.get(key)
        if nxt is not None and t_ns < nxt - period // 2:
            self.thinned[key] += 1
            return False
        # keep the grid unless the stream paused for more than a period (then restart it here)
        self._next[key] = t_ns + period if nxt is None or t_ns - nxt >= period else nxt + period
        self.logged[key] += 1
        return True

    def text(self, t_ns: int, text: str, level: str = "INFO") -> None:
        """A line in the event log."""
        self._at(t_ns)
        self.rec.log("log", rr.TextLog(text, level=level))

    def _note(self, text: str, t_ns: int | None = None) -> None:
        if text in self.notes:
            return
        self.notes.append(text)
        logger.warning("view: %s", text)
        if t_ns is not None:
            self._at(t_ns)
        self.rec.log("log", rr.TextLog(f"view: {text}", level="WARN"))

    def _state(self, lane: str, value: str, t_ns: int) -> None:
        if self._states.get(lane) != value:
            self._states[lane] = value
            self._at(t_ns)
            self.rec.log(f"states/{lane}", rr.StateChange(state=value))

    # -- context ---------------------------------------------------------------------------------
    def on_info(self, t_ns: int, info: SessionInfo) -> None:
        key = (info.session, info.operator, info.robot, info.rate_hz, tuple(sorted(info.devices.items())))
        if key == self._info_key:
            return
        self._info_key = key
        self._at(t_ns)
        devices = ", ".join(f"{k} ({v})" for k, v in info.devices.items()) or "none yet"
        self.rec.log("log", rr.TextLog(f"session {info.session!r} on {info.robot} at {info.rate_hz:g} Hz, operator "
                                       f"{info.operator or '-'}, devices: {devices}", level="INFO"))

    def on_spec(self, t_ns: int, spec: RobotSpec) -> None:
        old = self.spec
        if old is not None and (old.instance, old.joint_names, old.camera_names) == \
                (spec.instance, spec.joint_names, spec.camera_names):
            return
        self.spec = spec
        rec = self.rec
        start = 0
        self._groups = []
        for name, size in zip(spec.group_names, spec.group_sizes, strict=True):
            sl = slice(start, start + int(size))
            start += int(size)
            self._groups.append((name, sl))
            names = list(spec.joint_names[sl])
            colours = _palette(len(names))
            rec.log(f"joints/{name}/measured", rr.SeriesLines(names=names, colors=colours, widths=1.5), static=True)
            rec.log(f"joints/{name}/commanded", rr.SeriesLines(names=[f"{n} (cmd)" for n in names],
                                                               colors=[_light(c) for c in colours], widths=1.0),
                    static=True)
        if spec.fingertip_names:
            rec.log("forces/fingertips", rr.SeriesLines(names=list(spec.fingertip_names),
                                                        colors=_palette(len(spec.fingertip_names))), static=True)
        self._scene_for(spec, t_ns)
        self._send_blueprint()

    def _scene_for(self, spec: RobotSpec, t_ns: int) -> None:
        from robots.description import bundled_description_path, load_description
        from teleop.errors import TeleopError
        from teleop.view.scene import RobotScene, world_shapes

        self.scene = None
        path = self.description
        if path is None:
            try:
                path = bundled_description_path(spec.name)
            except TeleopError:
                self._note(f"no model of robot {spec.name!r} here: no 3D robot (give its description TOML with "
                           "--robot ROBOT.toml)", t_ns)
                return
        try:
            desc = load_description(path)
            self.scene = RobotScene(desc, tuple(spec.joint_names))
            static, bodies = world_shapes(desc.model_path, tuple(spec.body_names))
        except TeleopError as exc:
            self._note(f"no 3D robot: {exc}", t_ns)
            return
        names = list(self.scene.fingertip_names)
        self._tip_index = np.array([names.index(n) if n in names else -1 for n in spec.fingertip_names], np.int64)
        _log_shapes(self.rec, "world/static", static)
        for body, shapes in bodies.items():
            _log_shapes(self.rec, f"world/objects/{body}/shape", shapes)

    def _send_blueprint(self) -> None:
        spec = self.spec
        groups = [g for g, _ in self._groups]
        self.rec.send_blueprint(build_blueprint(groups, spec.camera_names if spec else (), self._tactile))

    # -- streams ---------------------------------------------------------------------------------
    def on_command(self, t_ns: int, cmd: SessionCommand) -> None:
        self._state("session", cmd.state, t_ns)
        spec = self.spec
        if spec is None or len(cmd.q) != spec.n_joints:
            return
        if self._due("joints/commanded", t_ns, self.rates.joints_hz):
            self._at(t_ns)
            for name, sl in self._groups:
                self.rec.log(f"joints/{name}/commanded", rr.Scalars(cmd.q[sl]))
        if self.scene is not None and self._due("scene/commanded", t_ns, self.rates.scene_hz) and \
                not _same(self._last.get("q_cmd"), cmd.q):
            self._last["q_cmd"] = cmd.q.copy()
            self._at(t_ns)
            pose = self.scene.pose(cmd.q)
            self.rec.log("world/robot/commanded", rr.LineStrips3D(pose.segments, radii=0.003, colors=_GHOST))

    def on_state(self, t_ns: int, st: RobotState) -> None:
        self._state("robot", st.mode, t_ns)
        spec = self.spec
        if spec is None or len(st.q) != spec.n_joints:
            return
        if self._due("joints/measured", t_ns, self.rates.joints_hz):
            self._at(t_ns)
            for name, sl in self._groups:
                self.rec.log(f"joints/{name}/measured", rr.Scalars(st.q[sl]))
            if len(st.fingertip_force):
                self.rec.log("forces/fingertips", rr.Scalars(np.linalg.norm(st.fingertip_force, axis=1)))
        if self._due("scene/measured", t_ns, self.rates.scene_hz):
            self._at(t_ns)
            for i, body in enumerate(spec.body_names[:len(st.body_pose)]):
                p = st.body_pose[i]
                if _same(self._last.get(body), p):  # objects mostly rest: log them when they move
                    continue
                self._last[body] = p.copy()
                self.rec.log(f"world/objects/{body}", rr.Transform3D(
                    translation=p[:3], quaternion=rr.Quaternion(xyzw=[p[4], p[5], p[6], p[3]])))
            if self.scene is not None:
                self._robot_pose(st)

    def _robot_pose(self, st: RobotState) -> None:
        force = st.fingertip_force
        if _same(self._last.get("q"), st.q) and _same(self._last.get("force"), force.ravel(), 0.01):
            return  # a robot at rest: what is drawn is still right
        self._last["q"], self._last["force"] = st.q.copy(), force.ravel().copy()
        pose = self.scene.pose(st.q)
        self._wrist = {s: (pose.wrist_pos[s], pose.wrist_rot[s]) for s in pose.wrist_pos}
        rec = self.rec
        rec.log("world/robot/measured", rr.LineStrips3D(pose.segments, radii=0.006, colors=_GREY))
        ok = (self._tip_index >= 0)[:len(force)]
        tips = pose.fingertips[self._tip_index[:len(force)][ok]]
        f = force[ok]
        mag = np.linalg.norm(f, axis=1) if len(f) else np.zeros(0)
        touch = mag > CONTACT_N
        colours = np.where(touch[:, None], [[230, 40, 40, 255]], [[90, 90, 100, 255]]).astype(np.uint8)
        rec.log("world/robot/fingertips", rr.Points3D(tips, radii=0.009, colors=colours))
        rec.log("world/robot/forces", rr.Arrows3D(origins=tips[touch], vectors=f[touch] * FORCE_M_PER_N,
                                                  radii=0.004, colors=[230, 40, 40, 255]))

    def on_camera(self, t_ns: int, name: str, image: np.ndarray) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or not image.size:
            return
        if self._due(f"camera/{name}", t_ns, self.rates.cameras_hz):
            self._at(t_ns)
            self.rec.log(f"cameras/{name}", _jpeg(image))

    def on_hand(self, t_ns: int, device: str, msg: HandSampleMsg) -> None:
        side = msg.side or device
        if not self._due(f"hand/{device}", t_ns, self.rates.hands_hz):
            return
        kp = self._keypoints(msg)
        if kp is None:
            return
        self._at(t_ns)
        colour = _HAND_COLOURS.get(side, (200, 200, 60, 255))
        _log_hand(self.rec, f"operator/{side}/hand", kp, colour)
        wrist = self._wrist.get(side)
        if wrist is not None:  # on the robot's wrist: what retargeting is asked to reach
            pos, rot = wrist
            _log_hand(self.rec, f"world/operator/{side}", pos + kp @ rot.T, colour)

    def _keypoints(self, msg: HandSampleMsg) -> np.ndarray | None:
        if msg.keypoints.shape == (21, 3):
            return msg.keypoints
        if msg.angles.shape == (20,) and msg.side in SIDES:  # a glove that measures angles
            from retarget.human_hand import HumanHand

            hand = self._hands.get(msg.side)
            if hand is None:
                hand = self._hands[msg.side] = HumanHand(msg.side)  # type: ignore[arg-type]
            return hand.keypoints(msg.angles)
        return None

    def on_pose(self, t_ns: int, device: str, msg: PoseSampleMsg) -> None:
        side = msg.side or device
        if self._due(f"pose/{device}", t_ns, self.rates.hands_hz):
            self._at(t_ns)
            w, x, y, z = msg.quat_wxyz
            self.rec.log(f"operator/{side}", rr.Transform3D(translation=msg.position_m,
                                                            quaternion=rr.Quaternion(xyzw=[x, y, z, w])),
                         rr.TransformAxes3D(0.05))

    def _tactile_device(self, device: str) -> None:
        if device not in self._tactile:
            self._tactile.append(device)
            self.rec.log(f"tactile/{device}/force", rr.SeriesLines(names=["fx", "fy", "fz"]), static=True)
            if self.spec is not None:
                self._send_blueprint()

    def on_tactile(self, t_ns: int, device: str, msg: TactileSampleMsg) -> None:
        self._tactile_device(device)
        if self._due(f"tactile/{device}", t_ns, self.rates.tactile_hz):
            self._at(t_ns)
            self.rec.log(f"tactile/{device}/force", rr.Scalars(msg.force_n))
        if msg.image.size:
            self.on_tactile_image(t_ns, device, msg.image)

    def on_tactile_image(self, t_ns: int, device: str, image: np.ndarray) -> None:
        self._tactile_device(device)
        if image.ndim == 3 and image.shape[2] == 3 and image.size and \
                self._due(f"tactile_image/{device}", t_ns, self.rates.tactile_image_hz):
            self._at(t_ns)
            self.rec.log(f"tactile/{device}/image", _jpeg(image))

    def on_event(self, t_ns: int, ev: SessionEvent) -> None:
        if ev.event == "clock":  # the feeds apply clock offsets; nothing to draw
            return
        self._at(t_ns)
        values = {k: v for k, v in ev.values.items() if k != "message"}
        if ev.event == "state":
            self._state("session", ev.detail, t_ns)
            self.rec.log("log", rr.TextLog(f"state -> {ev.detail}", level="INFO"))
        elif ev.event == "fault":
            self.rec.log("log", rr.TextLog(f"fault {ev.detail}: {ev.values.get('message', '')}", level="WARN"))
        else:
            extra = f" {values}" if values else ""
            self.rec.log("log", rr.TextLog(f"{ev.event} {ev.detail}{extra}".strip(), level="INFO"))

    def stats(self) -> dict[str, Any]:
        return {"logged": dict(self.logged), "thinned": dict(self.thinned), "notes": list(self.notes),
                "robot_3d": self.scene is not None}


def _same(old: np.ndarray | None, new: np.ndarray, tol: float = 1e-4) -> bool:
    """``new`` within ``tol`` of what was logged last (rad, m, unit quaternion or N)."""
    return old is not None and old.shape == new.shape and bool(np.max(np.abs(old - new), initial=0.0) <= tol)


def _log_hand(rec: Any, path: str, kp: np.ndarray, colour: tuple[int, int, int, int]) -> None:
    rec.log(path, rr.Points3D(kp, radii=0.005, colors=colour),
            rr.LineStrips3D([kp[b] for b in HAND_BONES], radii=0.002, colors=colour))


def _jpeg(image: np.ndarray) -> Any:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of shape {image.shape}")
    return rr.EncodedImage(contents=buf.tobytes(), media_type="image/jpeg")


def _log_shapes(rec: Any, path: str, shapes: list) -> None:
    """Static shapes, one entity per kind (rerun draws a batch per archetype)."""
    by_kind: dict[str, list] = {}
    for s in shapes:
        by_kind.setdefault(s.kind, []).append(s)
    for kind, group in by_kind.items():
        pos = np.array([s.pos for s in group])
        quat = [rr.Quaternion(xyzw=s.quat_xyzw) for s in group]
        colours = [s.rgba for s in group]
        size = np.array([s.size for s in group])
        if kind == "box":
            arch = rr.Boxes3D(centers=pos, half_sizes=size, quaternions=quat, colors=colours, fill_mode="solid")
        elif kind == "sphere":
            arch = rr.Ellipsoids3D(centers=pos, half_sizes=np.repeat(size[:, :1], 3, axis=1), quaternions=quat,
                                   colors=colours, fill_mode="solid")
        elif kind == "cylinder":
            arch = rr.Cylinders3D(centers=pos, radii=size[:, 0], lengths=2 * size[:, 1], quaternions=quat,
                                  colors=colours, fill_mode="solid")
        else:  # capsule: rerun's starts at its translation and runs along +z
            rot = [_rotate(s.quat_xyzw, [0.0, 0.0, -s.size[1]]) for s in group]
            arch = rr.Capsules3D(translations=pos + np.array(rot), radii=size[:, 0], lengths=2 * size[:, 1],
                                 quaternions=quat, colors=colours, fill_mode="solid")
        rec.log(f"{path}/{kind}", arch, static=True)


def _rotate(q_xyzw: np.ndarray, v: list[float]) -> np.ndarray:
    x, y, z, w = q_xyzw
    u = np.array([x, y, z])
    v = np.asarray(v, np.float64)
    return v + 2 * np.cross(u, np.cross(u, v) + w * v)


def _palette(n: int) -> list[tuple[int, int, int]]:
    return [tuple(int(c * 255) for c in colorsys.hsv_to_rgb(i / max(n, 1), 0.75, 0.9)) for i in range(n)]


def _light(c: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(v + (255 - v) * 0.55) for v in c)  # type: ignore[return-value]
