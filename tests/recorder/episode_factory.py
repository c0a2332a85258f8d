"""Real episode folders for tests, without a simulator or a session.

``make_episode`` writes ``meta.json`` (``recorder.episode.write_meta``), a ``log.tlog``
(``recorder.log.LogWriter``) of bus frames encoded by ``teleop.bus.codec.Encoder`` exactly as the
recorder stores them, and one small H.264 video per camera. Rates are realistic (state and
commands 500 Hz, hands and poses 100 Hz, tactile 50 Hz, cameras 30 Hz) with jittered capture
times; everything is seeded, so the same arguments give the same bytes of truth.

Video frame ``i`` of a file (its ``video_index``) is drawn as two flat gray halves, left
``8 * (i % 32)`` and right ``8 * ((i // 32) % 32)``; ``frame_index_of`` reads ``i`` back after
lossy compression. ``Truth`` holds what was logged, on the session clock, so tests compute
expectations independently of the exporter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recorder.episode import LOG_NAME, episode_dir, write_meta
from recorder.log import LogWriter
from recorder.video import VideoWriter
from teleop.bus.codec import Encoder
from teleop.bus.messages import (
    HandSampleMsg,
    PoseSampleMsg,
    RobotSpec,
    RobotState,
    SessionCommand,
    SessionEvent,
    SessionInfo,
    TactileSampleMsg,
    VideoFrameRef,
)

__all__ = ["Truth", "make_episode", "frame_index_of", "draw_frame"]

T_BASE_NS = 50_000_000_000  # session clock at the first episode's start (monotonic ns)
STATE_HZ, COMMAND_HZ, HAND_HZ, TACTILE_HZ = 500, 500, 100, 50
BODIES = ("bottle",)
TIPS = ("left_thumb", "right_thumb")
MARKERS = 4


@dataclass
class Truth:
    """What went into the log, on the session clock (ns)."""

    path: Path
    meta: dict[str, Any]
    joint_names: tuple[str, ...]
    t_state: np.ndarray  # (S,)
    q: np.ndarray  # (S, n)
    dq: np.ndarray  # (S, n)
    body_pose: np.ndarray  # (S, b, 7)
    t_cmd: np.ndarray  # (C,)
    cmd_q: np.ndarray  # (C, n)
    intervention: np.ndarray  # (C,) bool
    author: list[str]
    policy_q: np.ndarray  # (C, n); zeros where the command carried none
    hands: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # device -> (t, (H, 21, 3))
    poses: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # device -> (t, (P, 7))
    tactile: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # device -> (t, force (T, 3))
    cameras: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # name -> (t, video_index (F,))
    video_frames: dict[str, int] = field(default_factory=dict)


def draw_frame(index: int, width: int, height: int) -> np.ndarray:
    img = np.empty((height, width, 3), np.uint8)
    img[:, : width // 2] = 8 * (index % 32)
    img[:, width // 2 :] = 8 * ((index // 32) % 32)
    return img


def frame_index_of(img: np.ndarray) -> int:
    """The ``video_index`` drawn by ``draw_frame``, read from the middle of each half."""
    h, w = img.shape[:2]
    lo = float(img[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8].mean())
    hi = float(img[h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8].mean())
    return int(round(lo / 8)) % 32 + 32 * (int(round(hi / 8)) % 32)


def _times(rng: np.random.Generator, t0: int, seconds: float, hz: float, jitter_ns: int) -> np.ndarray:
    n = int(seconds * hz)
    t = t0 + np.round(np.arange(n) * 1e9 / hz).astype(np.int64) + rng.integers(-jitter_ns, jitter_ns + 1, n)
    return np.maximum.accumulate(t)  # capture times never go backwards


def _write_video(path: Path, n: int, width: int, height: int, fps: int) -> None:
    """Through the recorder's own writer (fragmented MP4, pts = frame index)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, width, height, float(fps), crf=12, preset="ultrafast", queue_frames=max(n, 1)) as w:
        for i in range(n):
            if w.write(draw_frame(i, width, height), i / fps) != i:
                raise RuntimeError(f"{path}: the writer did not take frame {i}")


def make_episode(
    dataset: Path,
    index: int,
    *,
    seconds: float = 1.5,
    seed: int = 0,
    n_joints: int = 6,
    task: str = "pick the bottle",
    outcome: str = "success",
    status: str = "complete",
    cameras: tuple[str, ...] = ("head",),
    camera_hz: int = 30,
    size: tuple[int, int] = (64, 48),
    hands: tuple[str, ...] = ("left_glove",),
    poses: tuple[str, ...] = ("left_tracker",),
    tactile: tuple[str, ...] = (),
    interventions: tuple[tuple[float, float], ...] = (),
    policy: bool = False,
    drop_frames: tuple[int, ...] = (),
    clock_offset_ns: int = 0,
) -> Truth:
    """Write ``DATASET/episode_<index>`` and return what it holds.

    ``interventions`` are (start_s, end_s) spans (from the episode start) where commands carry
    ``intervention=True`` (author ``human``, with ``policy_q`` when ``policy``); outside them the
    author is ``policy`` when ``policy`` else ``human``. ``drop_frames`` are camera message numbers
    the encoder "dropped" (logged with ``video_index=-1``). With ``clock_offset_ns`` the robot
    (``sim:test``) stamps its own clock and a ``clock`` event gives the offset to the session clock.
    """
    rng = np.random.default_rng(seed)
    folder = episode_dir(Path(dataset), index)
    folder.mkdir(parents=True)
    t0 = T_BASE_NS + index * 100_000_000_000
    joint_names = tuple(f"{side}_j{i}" for side in ("left", "right") for i in range(n_joints // 2))
    width, height = size

    robot, session, recorder = Encoder("sim:test"), Encoder("session"), Encoder("recorder")
    records: list[tuple[int, bytes]] = []

    def log(enc: Encoder, msg: Any, topic: str, t_session: int, robot_clock: bool = False) -> None:
        capture = t_session - clock_offset_ns if robot_clock else t_session
        records.append((t_session + 300_000 + len(records) % 7 * 1000, enc.encode(msg, topic, capture)))

    spec = RobotSpec(
        name="testbot", joint_names=joint_names, group_names=("left_arm", "right_arm"),
        group_sizes=np.array([n_joints // 2, n_joints - n_joints // 2], np.int64),
        lower=-np.ones(n_joints), upper=np.ones(n_joints), velocity=np.full(n_joints, 2.0), body_names=BODIES,
        fingertip_names=TIPS, camera_names=cameras, camera_shapes=np.array([[height, width]] * len(cameras), np.int64),
        camera_hz=float(camera_hz), state_hz=float(STATE_HZ), watchdog_s=0.2, endpoints={},
    )
    info = SessionInfo(session="test", operator="tester", robot="testbot", rate_hz=float(COMMAND_HZ),
                       joint_names=joint_names, session_toml="", description_toml="", devices={}, channel_names={},
                       software="test")
    log(session, info, "session/info", t0 - 5_000_000)
    log(session, spec, "session/robot_spec", t0 - 4_000_000)
    if clock_offset_ns:
        log(session, SessionEvent(event="clock", values={"source": "sim:test", "offset_ns": int(clock_offset_ns)}),
            "session/event", t0 - 3_000_000)

    # robot state, 500 Hz
    t_state = _times(rng, t0 + 700_000, seconds, STATE_HZ, 300_000)
    s = len(t_state)
    q = np.cumsum(rng.normal(0, 0.01, (s, n_joints)), axis=0)
    dq = rng.normal(0, 0.1, (s, n_joints))
    body_pose = np.concatenate(
        [rng.normal(0, 0.1, (s, len(BODIES), 3)), np.tile([1.0, 0, 0, 0], (s, len(BODIES), 1))], 2)
    force = rng.normal(0, 1, (s, len(TIPS), 3))
    for i in range(s):
        msg = RobotState(time_s=i / STATE_HZ, mode="active", q=q[i], dq=dq[i], target=q[i], effort=np.zeros(n_joints),
                         body_pose=body_pose[i], fingertip_force=force[i])
        log(robot, msg, "robot/state", int(t_state[i]), robot_clock=True)

    # executed commands, 500 Hz
    t_cmd = _times(rng, t0, seconds, COMMAND_HZ, 200_000)
    c = len(t_cmd)
    cmd_q = np.cumsum(rng.normal(0, 0.01, (c, n_joints)), axis=0)
    rel = (t_cmd - t0) / 1e9
    interv = np.zeros(c, bool)
    for a, b in interventions:
        interv |= (rel >= a) & (rel < b)
    author = ["human" if (iv or not policy) else "policy" for iv in interv]
    policy_q = np.zeros((c, n_joints))
    for i in range(c):
        pq = np.zeros(0)
        if policy and interv[i]:
            pq = policy_q[i] = rng.normal(0, 0.5, n_joints)
        msg = SessionCommand(tick=i, state="engaged", q=cmd_q[i], target=cmd_q[i], author=author[i],
                             intervention=bool(interv[i]), policy_q=pq)
        log(session, msg, "session/command", int(t_cmd[i]))
    edges = np.diff(interv.astype(np.int8), prepend=np.int8(0))
    for i in np.flatnonzero(edges):
        log(session, SessionEvent(event="intervention", detail="takeover" if edges[i] > 0 else "return"),
            "session/event", int(t_cmd[i]))

    truth = Truth(folder, {}, joint_names, t_state, q, dq, body_pose, t_cmd, cmd_q, interv, author, policy_q)

    for k, dev in enumerate(hands):  # 100 Hz, starting a little after the robot
        t = _times(rng, t0 + 3_000_000 + k * 1_000_000, seconds, HAND_HZ, 1_000_000)
        kp = rng.normal(0, 0.05, (len(t), 21, 3))
        for i in range(len(t)):
            log(session, HandSampleMsg(device=dev, side="left", seq=i, keypoints=kp[i], angles=np.zeros(5),
                                       channels=np.zeros(2)), f"session/hand/{dev}", int(t[i]))
        truth.hands[dev] = (t, kp)
    for k, dev in enumerate(poses):
        t = _times(rng, t0 + 2_000_000 + k * 1_000_000, seconds, HAND_HZ, 1_000_000)
        pos = rng.normal(0, 0.2, (len(t), 3))
        quat = np.tile([1.0, 0, 0, 0], (len(t), 1))
        for i in range(len(t)):
            log(session, PoseSampleMsg(device=dev, side="left", seq=i, position_m=pos[i], quat_wxyz=quat[i]),
                f"session/pose/{dev}", int(t[i]))
        truth.poses[dev] = (t, np.concatenate([pos, quat], 1))
    for k, dev in enumerate(tactile):
        t = _times(rng, t0 + 4_000_000 + k * 1_000_000, seconds, TACTILE_HZ, 1_000_000)
        fn = rng.normal(0, 1, (len(t), 3))
        disp = rng.normal(0, 1, (len(t), MARKERS, 2))
        for i in range(len(t)):
            log(session, TactileSampleMsg(device=dev, side="left", finger="index", seq=i, markers_px=disp[i],
                                          displacement_px=disp[i], contact_mask=np.zeros((2, 2), bool), force_n=fn[i]),
                f"session/tactile/{dev}", int(t[i]))
        truth.tactile[dev] = (t, fn)

    videos = {}
    for k, cam in enumerate(cameras):  # 30 Hz; the recorder logs a reference per camera message
        t = _times(rng, t0 + 5_000_000 + k * 2_000_000, seconds, camera_hz, 2_000_000)
        vidx = np.full(len(t), -1, np.int64)
        nxt = 0
        for i in range(len(t)):
            if i not in drop_frames:
                vidx[i], nxt = nxt, nxt + 1
            ref = VideoFrameRef(video=cam, video_index=int(vidx[i]), frame_index=i, time_s=i / camera_hz,
                                source="sim:test", seq=i)
            log(recorder, ref, f"recorder/video/{cam}", int(t[i]), robot_clock=True)
        _write_video(folder / "video" / f"{cam}.mp4", nxt, width, height, camera_hz)
        truth.cameras[cam] = (t, vidx)
        truth.video_frames[cam] = nxt
        videos[cam] = {"file": f"video/{cam}.mp4", "width": width, "height": height, "fps": float(camera_hz),
                       "codec": "h264", "frames": nxt}

    writer = LogWriter(folder / LOG_NAME)
    for recv, frame in sorted(records, key=lambda r: r[0]):
        writer.append(frame, recv)
    writer.close()
    stop = t0 + int(seconds * 1e9) + 5_000_000
    meta = {
        "format": "teleop-episode/1", "index": index, "status": status, "task": task, "operator": "tester",
        "outcome": outcome, "notes": [], "errors": [], "start_ns": t0 - 1_000_000, "stop_ns": stop,
        "duration_s": round((stop - t0) / 1e9, 3), "session": "test", "robot": "testbot",
        "joint_names": list(joint_names), "log": LOG_NAME, "videos": videos, "records": len(records),
    }
    write_meta(folder, meta)
    truth.meta = meta
    return truth
