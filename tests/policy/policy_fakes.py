"""Fake policies and synthetic episodes for the policy tests.

Episodes are real folders: a ``log.tlog`` of bus frames (``recorder.log.LogWriter`` +
``teleop.bus.codec.Encoder``, as the recorder stores them) and a ``meta.json``. Their data is
learnable: the robot follows smooth sines, the command leads the measured state by ``LEAD_S``,
so the next commands are a smooth function of the state.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from recorder.episode import LOG_NAME, episode_dir, write_meta
from recorder.log import LogWriter
from teleop.bus.codec import Encoder
from teleop.bus.messages import PolicyAction, PolicyObservation, RobotState, SessionCommand
from teleop.policy import Policy

LEAD_S = 0.03
RATE_HZ = 500
T_BASE_NS = 20_000_000_000


def free_policy_port() -> int:
    """A free loopback port in 7641..7660 (the policy tests' range)."""
    for port in range(7641, 7661):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 7641..7660")


class IndexPolicy(Policy):
    """Row k of every chunk is ``k + 0.001 * j`` in column j, so a target tells its row."""

    name: ClassVar[str] = "index"

    def __init__(self, n_joints: int = 4, chunk: int = 5, dt_s: float = 0.02, start_s: float = 0.0) -> None:
        self.n_joints, self.chunk, self.dt_s, self.start_s = n_joints, chunk, dt_s, start_s
        self.rows = np.arange(chunk)[:, None] + 0.001 * np.arange(n_joints)[None, :]
        self.delay_s = 0.0
        self.fail = False
        self.tasks: list[str] = []

    def reset(self, task: str = "") -> None:
        self.tasks.append(task)

    def act(self, obs: PolicyObservation) -> PolicyAction:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("policy bug")
        return PolicyAction(obs_id=obs.obs_id, q=self.rows, dt_s=self.dt_s, start_s=self.start_s)


class ArrayPolicy(Policy):
    """Returns a bare (n,) array: the base class wraps it with ``dt_s``."""

    def __init__(self, n_joints: int = 3, value: float = 0.5) -> None:
        self.n_joints, self.value = n_joints, value

    def act(self, obs: PolicyObservation) -> np.ndarray:
        return np.full(len(obs.q), self.value)


def make_index_policy(n_joints: int = 4, chunk: int = 5) -> IndexPolicy:
    """A factory (not a class), for ``load_policy("policy_fakes:make_index_policy")``."""
    return IndexPolicy(n_joints=n_joints, chunk=chunk)


def not_a_policy() -> dict:
    return {}


@dataclass
class EpisodeTruth:
    path: Path
    start_ns: int
    t_state: np.ndarray  # (S,) session clock [ns]
    q: np.ndarray  # (S, n)
    body_pose: np.ndarray  # (S, b, 7)
    t_cmd: np.ndarray  # (C,)
    cmd: np.ndarray  # (C, n)
    intervention: np.ndarray  # (C,) bool


def trajectory(t_s: np.ndarray, n_joints: int, phase: float) -> np.ndarray:
    """Smooth joint positions (T, n) [rad] at times ``t_s`` [s]."""
    omega = 0.6 + 0.35 * np.arange(n_joints)
    return 0.5 * np.sin(omega[None, :] * t_s[:, None] + phase + 0.7 * np.arange(n_joints)[None, :])


def make_episode(dataset: Path, index: int, *, seconds: float = 2.0, n_joints: int = 4, phase: float = 0.0,
                 object_xyz: tuple[float, float, float] = (0.4, 0.0, 0.8),
                 interventions: tuple[tuple[float, float], ...] = (), policy: bool = False) -> EpisodeTruth:
    """``DATASET/episode_<index>``: state and commands at 500 Hz for ``seconds``; the command at
    time t is the trajectory at t + LEAD_S. Inside ``interventions`` spans [s] commands carry
    ``intervention=True`` (author human); outside, the author is ``policy`` when ``policy``."""
    folder = episode_dir(dataset, index)
    folder.mkdir(parents=True)
    t0 = T_BASE_NS + index * 100_000_000_000
    count = int(seconds * RATE_HZ)
    rel = np.arange(count) / RATE_HZ
    t_state = t0 + 400_000 + np.round(rel * 1e9).astype(np.int64)
    t_cmd = t0 + np.round(rel * 1e9).astype(np.int64)
    q = trajectory(rel + 0.0004, n_joints, phase)
    cmd = trajectory(rel + LEAD_S, n_joints, phase)
    pose = np.array([[*object_xyz, 1.0, 0.0, 0.0, 0.0]])
    body_pose = np.repeat(pose[None], count, axis=0)
    interv = np.zeros(count, bool)
    for a, b in interventions:
        interv |= (rel >= a) & (rel < b)
    robot, session = Encoder("sim:test"), Encoder("session")
    records = []
    for i in range(count):
        state = RobotState(time_s=float(rel[i]), mode="active", q=q[i], dq=np.zeros(n_joints), target=q[i],
                           effort=np.zeros(n_joints), body_pose=body_pose[i], fingertip_force=np.zeros((0, 3)))
        records.append((int(t_state[i]) + 1000, robot.encode(state, "robot/state", int(t_state[i]))))
        author = "human" if (interv[i] or not policy) else "policy"
        command = SessionCommand(tick=i, state="engaged", q=cmd[i], target=cmd[i], author=author,
                                 intervention=bool(interv[i]))
        records.append((int(t_cmd[i]) + 1000, session.encode(command, "session/command", int(t_cmd[i]))))
    writer = LogWriter(folder / LOG_NAME)
    for recv, frame in sorted(records, key=lambda r: r[0]):
        writer.append(frame, recv)
    writer.close()
    stop = t0 + int(seconds * 1e9)
    write_meta(folder, {"format": "teleop-episode/1", "index": index, "status": "complete", "task": "reach",
                        "operator": "tester", "outcome": "success", "notes": [], "errors": [], "start_ns": t0,
                        "stop_ns": stop, "duration_s": seconds, "log": LOG_NAME, "videos": {}, "records": len(records)})
    return EpisodeTruth(folder, t0, t_state, q, body_pose, t_cmd, cmd, interv)
