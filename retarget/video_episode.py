"""A human video -> robot commands -> an episode folder, as the live recorder writes one.

``process_video(video, robot, dataset, options=...)`` is the whole path for one video, a plain
function a batch runner can call per file:

1. track every frame (``retarget.video_track``): per side the smoothed keypoints and wrist pose,
   gaps flagged, never filled in;
2. retarget with ``BimanualRetargeter``: the hands from the keypoints; the wrists through the arm
   IK after placing the camera in the robot's base frame (``camera_pose``). Each side engages on
   the first frame its wrist pose is known, at the arm's current joints, as the live session's
   clutch does, so the arm follows the hand's motion from there and never jumps; after a gap it
   engages afresh. A side not seen holds its joints;
3. write the episode: ``meta.json``, ``log.tlog`` (bus frames encoded as the recorder stores
   them: session info, robot spec, per frame the hand and pose samples, the command, a robot
   state, the video frame reference, and a ``tracking`` event whenever a side is found or lost)
   and ``video/camera.mp4`` (the frames the tracker saw, re-encoded by the recorder's writer).
   No robot ran: the logged robot state is the command itself (``mode = "kinematic"``), so
   ``teleop export`` and ``teleop replay EP --sim`` take the episode unchanged.

The episode is built in a hidden folder of the dataset (``.incoming_*``, which nothing lists)
and renamed to ``episode_NNNNNN`` only once complete: a killed run leaves no episode that looks
finished. A video in which no hand is ever seen gives no episode: the summary says
``"status": "no_hands"`` (a robot that never moves is no demonstration, and a batch should not
fill a dataset with them).
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import teleop
from retarget.video_track import VideoTrack, open_video, sha256_file, track_video
from teleop.errors import ConfigError, TeleopError
from teleop.types import SIDES

__all__ = ["VideoOptions", "process_video", "parse_camera_pose", "sweep_incoming", "warm_up",
           "DEFAULT_CAMERA_POSE", "CAMERA"]

#: The camera at the bundled humanoid's head, looking straight ahead: its frame (x forward, y left,
#: z up) has the base frame's axes. A camera filming the person's hands from their own eyes or chest
#: (the usual first-person recording) maps moving a hand forward / left / up to the robot's.
DEFAULT_CAMERA_POSE = (0.08, 0.0, 0.36, 1.0, 0.0, 0.0, 0.0)
CAMERA = "camera"  # the episode's video stream
INCOMING = ".incoming_"  # + host_pid_ns_stem: an episode being built (``sweep_incoming`` removes a dead one's)
DEVICE = "video_{side}"  # one device per side, so an export gets one feature per hand
_T0_NS = 1_000_000_000  # the episode's clock: frame i at 1 s + i / fps (the same input gives the same log)
_QUEUE = 32  # frames queued to an encoder at most (the writer drops past its queue: we wait instead)
_MAX_GAPS_IN_META = 1000
_SKELETON = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
             (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20))


def parse_camera_pose(text: str | tuple | list) -> tuple[float, ...]:
    """``x,y,z,qw,qx,qy,qz`` (metres, a unit quaternion) of the camera frame in the robot base frame."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        vals = [float(v) for v in parts]
    except (TypeError, ValueError):
        vals = []
    if len(vals) != 7 or not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"camera pose {text!r}: give 7 finite numbers x,y,z,qw,qx,qy,qz (metres, then a unit "
                          f"quaternion), e.g. {','.join(f'{v:g}' for v in DEFAULT_CAMERA_POSE)}")
    if any(abs(v) > 10.0 for v in vals[:3]):
        raise ConfigError(f"camera pose {text!r}: the position must be within 10 m of the robot base")
    norm = math.sqrt(sum(v * v for v in vals[3:]))
    if abs(norm - 1.0) > 0.01:
        raise ConfigError(f"camera pose {text!r}: the quaternion (qw,qx,qy,qz) has norm {norm:.3f}; give a unit "
                          "quaternion (1,0,0,0: the camera's axes are the base frame's)")
    return (*vals[:3], *(v / norm for v in vals[3:]))


def _check_number(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or not math.isfinite(value) or not low <= value <= high:
        kind = "a whole number" if integer else "a finite number"
        raise ConfigError(f"video option {name}={value!r}: give {kind} in {low:g}..{high:g}")


@dataclass(frozen=True)
class VideoOptions:
    camera_pose: tuple[float, ...] = DEFAULT_CAMERA_POSE
    intrinsics: str | None = None  # a calibration TOML (docs/camera-hands.md); None: pinhole with hfov_deg
    hfov_deg: float = 65.0
    mirror: bool = False  # the video is a mirror image (a selfie camera)
    start_frame: int = 0
    max_frames: int | None = None  # at most this many frames (None: all)
    max_hands: int = 2
    min_detection: float = 0.5
    min_presence: float = 0.5
    threads: int = 1
    task: str = ""
    operator: str = ""
    preview: str | None = None  # also write the video with the detected skeletons drawn here (.mp4)
    crf: int = 23

    def __post_init__(self) -> None:
        object.__setattr__(self, "camera_pose", parse_camera_pose(self.camera_pose))
        _check_number("hfov_deg", self.hfov_deg, 10, 170)
        _check_number("start_frame", self.start_frame, 0, 1e9, integer=True)
        if self.max_frames is not None:
            _check_number("max_frames", self.max_frames, 1, 1e9, integer=True)
        _check_number("max_hands", self.max_hands, 1, 2, integer=True)
        _check_number("min_detection", self.min_detection, 0, 1)
        _check_number("min_presence", self.min_presence, 0, 1)
        _check_number("threads", self.threads, 1, 64, integer=True)
        _check_number("crf", self.crf, 0, 51, integer=True)


def process_video(video: str | Path, robot: str | Path | None, dataset: str | Path, *,
                  options: VideoOptions | None = None, progress: Callable[[int], None] | None = None,
                  sha256: str | None = None) -> dict[str, Any]:
    """One video -> one episode in ``dataset`` (module docstring). Returns a summary: ``status``
    (``complete`` or ``no_hands``), ``episode`` (its folder, or None), ``frames``, ``hands`` (frames
    per side), ``gaps`` (per side: runs of missing frames), ``seconds``. Raises only
    ``TeleopError`` subclasses for bad input (a missing or corrupt video, a bad robot config,
    missing hand models). ``progress(frames_done)`` is called after every tracked frame;
    ``sha256`` is the video's digest when the caller has it already (else it is computed)."""
    from robots.description import bundled_description_path, load_description

    opts = options or VideoOptions()
    t_start = time.perf_counter()
    video = Path(video).expanduser().resolve()
    robot_path = Path(robot).expanduser() if robot else bundled_description_path()
    desc = load_description(robot_path)
    cap, _, _ = open_video(video)  # a bad file is said before anything is compiled or written
    cap.release()
    retargeter, config = _retargeter(desc)
    dataset = Path(dataset).expanduser()
    dataset.mkdir(parents=True, exist_ok=True)
    tmp = dataset / f"{INCOMING}{socket.gethostname()}_{os.getpid()}_{time.time_ns()}_{video.stem[:40]}"
    (tmp / "video").mkdir(parents=True)
    writers = _Writers(tmp, opts)
    try:
        track = track_video(
            video, max_frames=opts.max_frames, start_frame=opts.start_frame, intrinsics=opts.intrinsics,
            hfov_deg=opts.hfov_deg, mirror=opts.mirror, max_hands=opts.max_hands, min_detection=opts.min_detection,
            min_presence=opts.min_presence, threads=opts.threads, keypoint_filter=config.keypoint_filter,
            position_filter=config.wrist_position_filter, orientation_filter=config.wrist_orientation_filter,
            sink=writers.frame)
        videos = writers.close()
        summary = _summary(video, track, opts)
        if not any(track.sides[s].found.any() for s in SIDES):
            shutil.rmtree(tmp, ignore_errors=True)
            return {**summary, "status": "no_hands", "episode": None, "index": None,
                    "reason": f"no hand was found in any of the {track.frames} frames: no episode written",
                    "seconds": round(time.perf_counter() - t_start, 3)}
        q = _retarget(retargeter, desc, track, opts.camera_pose)
        meta = _write_log(tmp, video, robot_path, desc, track, q, videos, writers.indices, opts,
                          sha256 or sha256_file(video))
        folder = _publish(tmp, dataset, meta)
    except BaseException:
        writers.abort()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**summary, "status": "complete", "episode": str(folder), "index": meta["index"],
            "seconds": round(time.perf_counter() - t_start, 3)}


def _reporting(sink, progress: Callable[[int], None]):
    def frame(i: int, rgb: np.ndarray, hands: dict) -> None:
        sink(i, rgb, hands)
        progress(i + 1)
    return frame


def warm_up(robot: str | Path | None = None) -> None:
    """Load what a video job needs (the hand models, the retargeting kernels for ``robot``), so
    that a batch's workers do it before their first video rather than in it."""
    from drivers.camera_hands.tracker import HandTracker
    from robots.description import bundled_description_path, load_description

    _retargeter(load_description(Path(robot).expanduser() if robot else bundled_description_path()))
    HandTracker(max_hands=1).process(np.zeros((64, 64, 3), np.uint8), 0.0)


def sweep_incoming(dataset: str | Path) -> list[str]:
    """Remove the build folders that processes of this host left when they died (killed, out of
    memory) mid-video; folders of live processes and of other hosts are left alone. Returns what
    went."""
    host = socket.gethostname()
    gone = []
    for folder in Path(dataset).glob(f"{INCOMING}{host}_*"):
        try:
            pid = int(folder.name[len(INCOMING) + len(host) + 1:].split("_", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        gone.append(folder.name)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- retargeting -------------------------------------------------------------------------------------


def _retargeter(desc):
    """The bimanual retargeter for ``desc``, its inputs unfiltered (the tracking smoothed them, with
    this config's filter settings) and its workspace rotation the identity (the camera pose places
    the wrist in the base frame; the config's scale still applies)."""
    import dataclasses

    from retarget.bimanual import BimanualRetargeter
    from retarget.config import WorkspaceConfig, load_retarget_config

    config = load_retarget_config(desc)
    config = dataclasses.replace(config, workspace=WorkspaceConfig(scale=config.workspace.scale))
    r = BimanualRetargeter(desc, config, filter_inputs=False)
    r.warmup()
    return r, config


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    from retarget.kernels.poses import quat_to_mat

    r = np.zeros((3, 3))
    quat_to_mat(np.ascontiguousarray(q, dtype=np.float64), r)
    return r


def _mat_to_quat(r: np.ndarray) -> np.ndarray:
    from retarget.kernels.poses import mat_to_quat

    q = np.zeros(4)
    mat_to_quat(np.ascontiguousarray(r), q)
    return q


def _retarget(retargeter, desc, track: VideoTrack, camera_pose: tuple[float, ...]) -> np.ndarray:
    """Commands (N, n_command) in the description's joint order."""
    rc, tc = _quat_to_mat(np.array(camera_pose[3:])), np.array(camera_pose[:3])
    n = track.frames
    out = np.zeros((n, retargeter.n_command))
    cmd = np.zeros(retargeter.n_command)
    kp, wpos, wquat = np.zeros((2, 21, 3)), np.zeros((2, 3)), np.zeros((2, 4))
    engaged = {s: False for s in SIDES}
    for i in range(n):
        t = i / track.fps
        kp[:], wpos[:], wquat[:] = math.nan, math.nan, math.nan  # NaN: that side holds its joints
        for j, side in enumerate(SIDES):
            st = track.sides[side]
            if st.found[i]:
                kp[j] = st.keypoints[i]
            if not st.pose_ok[i]:
                engaged[side] = False  # after a gap the clutch engages afresh, as in a live session
                continue
            wpos[j] = rc @ st.wrist_pos[i] + tc
            wquat[j] = _mat_to_quat(rc @ _quat_to_mat(st.wrist_quat[i]))
            if not engaged[side]:
                arm = retargeter.sides[side].arm
                retargeter.engage(side, wpos[j], wquat[j], arm.q.copy())
                engaged[side] = True
        retargeter.tick(t, kp, wpos, wquat, cmd, per_frame=True)  # offline: each hand solves its whole frame
        out[i] = cmd
    return out


# -- the episode -------------------------------------------------------------------------------------


class _Writers:
    """The episode's video and the preview, fed frame by frame while the video is tracked."""

    def __init__(self, folder: Path, opts: VideoOptions) -> None:
        self.folder, self.opts = folder, opts
        self.episode = self.preview = None
        self.preview_info = None
        self.queued = {"episode": 0, "preview": 0}
        self.indices: list[int] = []

    def _open(self, path: Path, w: int, h: int):
        from recorder.video import VideoWriter

        return VideoWriter(path, w, h, 30.0, crf=self.opts.crf, preset="ultrafast", queue_frames=_QUEUE)

    @staticmethod
    def _put(writer, key: str, queued: dict, image: np.ndarray, t_s: float) -> int:
        deadline = time.monotonic() + 60.0
        while queued[key] - writer.frames_written >= _QUEUE - 2:  # wait for the encoder, never drop
            if writer.error is not None:
                break  # write() raises it
            if time.monotonic() > deadline:
                raise TeleopError(f"{writer.path}: the video encoder took no frame for 60 s; is the disk stalled?")
            time.sleep(0.002)
        idx = writer.write(image, t_s)
        queued[key] += 1
        return idx

    def frame(self, i: int, rgb: np.ndarray, hands: dict) -> None:
        h, w = rgb.shape[:2]
        if self.episode is None:
            self.episode = self._open(self.folder / "video" / f"{CAMERA}.mp4", w, h)
            if self.opts.preview:
                out = Path(self.opts.preview).expanduser()
                out.parent.mkdir(parents=True, exist_ok=True)
                self.preview = self._open(out, w, h)
        t_s = 0.003 + i / 30.0  # only order matters to the writer (pts = frame index)
        self.indices.append(self._put(self.episode, "episode", self.queued, rgb, t_s))
        if self.preview is not None:
            self._put(self.preview, "preview", self.queued, draw_hands(rgb, hands, i), t_s)

    def close(self) -> dict:
        infos = {}
        if self.episode is not None:
            infos[CAMERA] = self.episode.close(120.0)
        if self.preview is not None:
            self.preview_info = self.preview.close(120.0)
        return infos

    def abort(self) -> None:
        for w in (self.episode, self.preview):
            if w is not None:
                try:
                    w.close(30.0)
                except Exception:  # noqa: BLE001 - the run failed already; its folder goes
                    pass


def draw_hands(rgb: np.ndarray, hands: dict, index: int) -> np.ndarray:
    """A copy of ``rgb`` with each tracked hand's skeleton, its side and P(right) drawn."""
    import cv2

    img = rgb.copy()
    colors = {"left": (60, 140, 255), "right": (255, 90, 60)}  # RGB
    scale = max(img.shape[1] / 1280, 0.4)
    for side, hand in hands.items():
        if hand is None:
            continue
        px = np.asarray(hand.image_px)
        if not np.all(np.isfinite(px)):
            continue
        pts = [tuple(int(round(v)) for v in p) for p in px]
        for a, b in _SKELETON:
            cv2.line(img, pts[a], pts[b], colors[side], max(1, int(3 * scale)), cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, p, max(2, int(5 * scale)), (255, 255, 255), -1, cv2.LINE_AA)
        label = f"{side} (P(right) {hand.handedness:.2f})"
        x, y = pts[0]
        cv2.putText(img, label, (x + 10, min(y + 30, img.shape[0] - 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale,
                    colors[side], max(1, int(2 * scale)), cv2.LINE_AA)
    missing = [s for s in SIDES if hands.get(s) is None]
    text = f"frame {index}" + (f"  no {' / '.join(missing)} hand" if missing else "")
    cv2.putText(img, text, (int(12 * scale), int(36 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale,
                (255, 255, 0), max(1, int(2 * scale)), cv2.LINE_AA)
    return img


def _summary(video: Path, track: VideoTrack, opts: VideoOptions) -> dict[str, Any]:
    hands, gaps, gap_frames = {}, {}, {}
    for s in SIDES:
        st = track.sides[s]
        g = st.gaps()
        hands[s], gaps[s], gap_frames[s] = int(st.found.sum()), len(g), int(sum(b - a + 1 for a, b in g))
    return {"video": str(video), "frames": track.frames, "fps": track.fps, "hands": hands,
            "pose_frames": {s: int(track.sides[s].pose_ok.sum()) for s in SIDES}, "gaps": gaps,
            "gap_frames": gap_frames, "ended_early": track.ended_early, "tracking_s": round(track.seconds, 3),
            "preview": opts.preview}


def _joint_limits(desc) -> tuple[np.ndarray, np.ndarray]:
    import mujoco

    model = (mujoco.MjModel.from_xml_path(str(desc.model_path)))
    lo, hi = [], []
    for name in desc.joint_names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0 or not model.jnt_limited[jid]:
            lo.append(-math.pi)
            hi.append(math.pi)
            continue
        a, b = model.jnt_range[jid]
        lo.append(float(a))
        hi.append(float(b))
    lo_a, hi_a = np.array(lo), np.array(hi)
    for name, (a, b) in desc.position_overrides.items():
        if name in desc.joint_names:
            k = desc.joint_names.index(name)
            lo_a[k], hi_a[k] = a, b
    return lo_a, hi_a


def _write_log(folder: Path, video: Path, robot_path: Path, desc, track: VideoTrack, q: np.ndarray,
               videos: dict, indices: list[int], opts: VideoOptions, digest: str) -> dict[str, Any]:
    from drivers.camera_hands.driver import CHANNELS
    from recorder.episode import LOG_NAME
    from recorder.log import LogWriter
    from robots.description import GROUPS
    from teleop.bus.codec import Encoder
    from teleop.bus.messages import (
        HandSampleMsg,
        PoseSampleMsg,
        RobotSpec,
        RobotState,
        SessionCommand,
        SessionEvent,
        SessionInfo,
        VideoFrameRef,
    )

    n, fps = track.frames, track.fps
    session, robot, recorder = Encoder("video-retarget"), Encoder("kinematic"), Encoder("recorder")
    log = LogWriter(folder / LOG_NAME)
    counts: dict[str, int] = {}

    def put(enc: Encoder, msg: Any, topic: str, t_ns: int, recv_off: int) -> None:
        log.append(enc.encode(msg, topic, t_ns), t_ns + recv_off)
        counts[topic] = counts.get(topic, 0) + 1

    desc_toml = desc.source.read_text(encoding="utf-8") if desc.source else ""
    devices = {DEVICE.format(side=s): "camera_hands" for s in SIDES}
    lower, upper = _joint_limits(desc)
    names = desc.joint_names
    info = SessionInfo(session="video", operator=opts.operator, robot=desc.name, rate_hz=float(fps),
                       joint_names=names, session_toml="", description_toml=desc_toml, devices=devices,
                       channel_names={d: ",".join(CHANNELS) for d in devices},
                       software=f"teleop {teleop.__version__} (retarget video)")
    spec = RobotSpec(name=desc.name, joint_names=names, group_names=GROUPS,
                     group_sizes=np.array([len(desc.groups[g]) for g in GROUPS], np.int64), lower=lower,
                     upper=upper, velocity=np.array([desc.velocity_limit(j) for j in names]), body_names=(),
                     fingertip_names=(), camera_names=(), camera_shapes=np.zeros((0, 2), np.int64), camera_hz=0.0,
                     state_hz=float(fps), watchdog_s=0.0, endpoints={},
                     wrist_frames=tuple(desc.sides[s].wrist_frame for s in SIDES), description_toml=desc_toml,
                     instance=f"video:{digest[:12]}")
    start_ns = _T0_NS - 3_000_000
    put(session, info, "session/info", _T0_NS - 2_000_000, 1000)
    put(session, spec, "session/robot_spec", _T0_NS - 1_000_000, 1000)
    dq = np.vstack([np.zeros((1, q.shape[1])), np.diff(q, axis=0) * fps]) if n else q
    zero_q = np.zeros(q.shape[1])
    seen_once = False
    prev = {s: (False, False) for s in SIDES}
    seqs = {s: 0 for s in SIDES}
    empty_body, empty_tips = np.zeros((0, 7)), np.zeros((0, 3))
    for i in range(n):
        t = _T0_NS + round(i * 1e9 / fps)
        if i < len(indices) and indices[i] >= 0:
            put(recorder, VideoFrameRef(video=CAMERA, video_index=indices[i], frame_index=track.first_frame + i,
                                        time_s=i / fps, source="video", seq=i), f"recorder/video/{CAMERA}", t, 500)
        any_found = False
        for side in SIDES:
            st, dev = track.sides[side], DEVICE.format(side=side)
            now = (bool(st.found[i]), bool(st.pose_ok[i]))
            if now != prev[side]:
                put(session, SessionEvent(event="tracking", detail=side, values={
                    "frame": track.first_frame + i, "found": now[0], "pose": now[1]}), "session/event", t, 600)
                prev[side] = now
            if not now[0]:
                continue
            any_found = True
            channels = np.concatenate([[st.presence[i], st.handedness[i]], st.confidence[i]])
            put(session, HandSampleMsg(device=dev, side=side, seq=seqs[side], keypoints=st.keypoints[i],
                                       angles=np.zeros(0), channels=channels), f"session/hand/{dev}", t, 700)
            if now[1]:
                put(session, PoseSampleMsg(device=dev, side=side, seq=seqs[side], position_m=st.wrist_pos[i],
                                           quat_wxyz=st.wrist_quat[i], frame="camera"), f"session/pose/{dev}", t, 800)
            seqs[side] += 1
        seen_once |= any_found
        state = "engaged" if any_found else ("stale" if seen_once else "idle")
        put(session, SessionCommand(tick=i, state=state, q=q[i], target=q[i], author="human" if any_found else "hold",
                                    source_capture_ns=np.array([t], np.int64)), "session/command", t, 900)
        put(robot, RobotState(time_s=i / fps, mode="kinematic", q=q[i], dq=dq[i], target=q[i], effort=zero_q,
                              body_pose=empty_body, fingertip_force=empty_tips, instance=spec.instance),
            "robot/state", t, 1000)
    log.close()
    stop_ns = _T0_NS + round(n * 1e9 / fps)
    tracking = {}
    for side in SIDES:
        st = track.sides[side]
        found = np.flatnonzero(st.found)
        gaps = st.gaps()
        tracking[side] = {
            "frames": int(st.found.sum()), "pose_frames": int(st.pose_ok.sum()),
            "first_frame": int(track.first_frame + found[0]) if len(found) else None,
            "last_frame": int(track.first_frame + found[-1]) if len(found) else None,
            "gaps": [[track.first_frame + a, track.first_frame + b] for a, b in gaps[:_MAX_GAPS_IN_META]],
            "gap_count": len(gaps),
            "handedness_mean": round(float(np.nanmean(st.handedness)), 4) if len(found) else None,
        }
    meta_videos = {}
    for name, vi in videos.items():
        meta_videos[name] = {"file": f"video/{name}.mp4", "width": track.width, "height": track.height, "fps": fps,
                             "codec": "h264", "frames": vi.frames, "dropped": vi.dropped, "bytes": vi.bytes}
    errors = []
    if track.ended_early:
        errors.append(f"the video's decoding stopped at frame {track.first_frame + n} of the {track.declared_frames} "
                      "it declares (a damaged file?): the episode holds the frames before")
    return {
        "format": "teleop-episode/1", "index": -1, "status": "complete", "task": opts.task,
        "operator": opts.operator, "outcome": "unknown", "notes": [], "errors": errors,
        "start_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "start_ns": start_ns, "stop_ns": stop_ns,
        "duration_s": round((stop_ns - start_ns) / 1e9, 3), "session": "video", "robot": desc.name,
        "rate_hz": float(fps), "joint_names": list(names), "session_toml": "", "description_toml": desc_toml,
        "devices": devices, "channel_names": {d: list(CHANNELS) for d in devices},
        "software": {"teleop": teleop.__version__, "recorder": "retarget-video"},
        "recorder_pid": os.getpid(), "recorder_host": socket.gethostname(), "log": LOG_NAME,
        "videos": meta_videos, "records": log.records, "streams": dict(sorted(counts.items())),
        "dropped": {"bus_gaps": {}, "video": {k: v["dropped"] for k, v in meta_videos.items()}},
        "source": {"kind": "video", "path": str(video), "sha256": digest,
                   "frame_range": [track.first_frame, track.first_frame + n], "fps": fps,
                   "requested": {"start_frame": opts.start_frame, "max_frames": opts.max_frames},
                   "width": track.width, "height": track.height, "declared_frames": track.declared_frames,
                   "mirror": opts.mirror},
        "retarget": {"robot_config": str(robot_path), "camera_pose": list(opts.camera_pose),
                     "intrinsics": track.intrinsics, "filters": "the robot's retargeting [filter] settings, "
                     "applied while tracking", "robot_state": "kinematic: the logged robot state is the command "
                     "itself; no robot ran"},
        "tracking": tracking,
    }


def _publish(tmp: Path, dataset: Path, meta: dict[str, Any]) -> Path:
    """Give the finished episode the next free number: reserve the folder (``mkdir`` fails when
    another writer took the number) and rename the built one over the empty reservation."""
    from recorder.episode import episode_dir, next_index, write_index, write_meta

    for _ in range(1000):
        index = next_index(dataset)
        folder = episode_dir(dataset, index)
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        meta["index"] = index
        write_meta(tmp, meta)
        try:
            os.replace(tmp, folder)  # over an empty directory: atomic on POSIX
        except OSError as exc:
            folder.rmdir()
            raise TeleopError(f"{dataset}: could not move the finished episode into place ({exc})") from exc
        write_index(dataset)
        return folder
    raise TeleopError(f"{dataset}: no free episode number after 1000 tries (another writer keeps taking them?)")
