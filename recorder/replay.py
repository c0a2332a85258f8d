"""``teleop replay EP``: an episode back on the bus, on its own timeline.

* Every logged message is re-sent as the bytes that travelled, on a replay tap (by default the
  session tap endpoint, since no session runs during a replay), so a recorder, a policy under
  offline evaluation or any observer sees the episode as if it were live.
* With a robot (``--robot``, default the bundled sim started here with ``--sim``), the logged
  commands drive it again. The robot first moves from where it is to the first command with a
  bounded step per tick (the same rule as engaging a session), so a replay never jumps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recorder.episode import LOG_NAME, resolve_episode
from recorder.log import read_records
from recorder.reader import load_episode, session_time_ns
from teleop.bus.codec import DecodeError, Decoder
from teleop.bus.messages import SessionCommand
from teleop.bus.sockets import Bus
from teleop.errors import ConfigError

__all__ = ["replay_episode", "ReplayResult"]

logger = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    episode: str
    seconds: float
    published: int
    commands: int
    late_ms_p99: float
    ramp_s: float
    tracking_rms_rad: float  # replayed robot state vs logged robot state, same episode times

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def replay_episode(spec: str | Path, *, speed: float = 1.0, publish: str | None = None, robot_rpc: str | None = None,
                   max_step_rad: float = 0.01, rate_hz: float = 500.0, seconds: float | None = None,
                   compare: bool = True) -> ReplayResult:
    if not speed > 0:
        raise ConfigError(f"--speed {speed}: must be > 0")
    folder = resolve_episode(spec)
    ep = load_episode(folder, topics=("session/command", "robot/state"))
    cmds = ep.streams.get("session/command")
    t0 = ep.start_ns
    recs = list(read_records(folder / LOG_NAME))
    # each record's episode time, and the commands to send, from one decoding pass
    dec = Decoder()
    times = np.empty(len(recs), np.int64)
    commands: dict[int, np.ndarray] = {}
    for i, rec in enumerate(recs):
        try:
            h, m = dec.decode([rec.frame])
        except DecodeError:  # a record the reader would skip; keep its place
            times[i] = times[i - 1] if i else t0
            continue
        times[i] = session_time_ns(h, m, ep.offsets_ns)
        if isinstance(m, SessionCommand):
            commands[i] = m.q
    order = np.argsort(times, kind="stable")
    bus = Bus("replay")
    client = None
    states: list[tuple[int, np.ndarray]] = []
    try:
        pub = bus.publisher(publish, sndhwm=1_000_000) if publish else None
        ramp_s = 0.0
        if robot_rpc:
            from robots.client import RobotClient

            client = RobotClient(robot_rpc, source="replay", timeout_s=3.0)
            spec_ = client.connect()
            names = ep.meta.get("joint_names") or []
            if names and tuple(names) != tuple(spec_.joint_names):
                raise ConfigError(f"the episode was recorded on joints {names[:3]}...; the robot at {robot_rpc} "
                                  f"({spec_.name}) has {list(spec_.joint_names)[:3]}...: replay onto the same robot")
            if cmds is None or not len(cmds):
                raise ConfigError(f"{folder}: no session/command stream to drive the robot with")
            ramp_s = _ramp_to(client, cmds.messages[0].q, max_step_rad, rate_hz)
        if pub is not None:
            time.sleep(0.3)  # subscribers connect (PUB drops what is sent before they join)
        late = []
        n_cmd = 0
        start = time.monotonic_ns()
        end_ns = None if seconds is None else start + int(seconds * 1e9)
        origin = max(int(times[order[0]]), t0)  # the preamble (context from before the start) goes at once
        for i in order:
            due = start + int((times[i] - origin) / speed)
            now = time.monotonic_ns()
            if end_ns is not None and now > end_ns:
                break
            if due > now:
                time.sleep((due - now) / 1e9)
            else:
                late.append((now - due) / 1e6)
            rec = recs[i]
            if pub is not None:
                pub.sock.send(rec.frame, copy=len(rec.frame) < 65536)
            if client is not None and i in commands:
                client.send_command(commands[i], author="replay")
                n_cmd += 1
                st = client.read_latest()
                if st is not None and compare:
                    states.append((times[i], st.q.copy()))
        elapsed = (time.monotonic_ns() - start) / 1e9
        rms = _tracking(ep, states) if compare and states else float("nan")
        return ReplayResult(str(folder), round(elapsed, 3), len(recs) if pub is not None else 0, n_cmd,
                            round(float(np.percentile(late, 99)), 3) if late else 0.0, round(ramp_s, 3), rms)
    finally:
        if client is not None:
            client.disconnect()
        bus.close()


def _ramp_to(client: Any, q_goal: np.ndarray, max_step: float, rate_hz: float) -> float:
    """From the robot's current setpoint to ``q_goal``, at most ``max_step`` rad per tick."""
    st = client.get_state(2.0)
    q = np.array(st.target if st.mode in ("active", "hold") else st.q, dtype=np.float64)
    goal = np.clip(q_goal, client.spec.lower, client.spec.upper)
    t0 = time.monotonic()
    dt = 1.0 / rate_hz
    nxt = time.monotonic()
    while True:
        step = np.clip(goal - q, -max_step, max_step)
        q += step
        client.send_command(q, author="replay")
        if not np.any(np.abs(goal - q) > 1e-12):
            break
        nxt += dt
        time.sleep(max(0.0, nxt - time.monotonic()))
    return time.monotonic() - t0


def _tracking(ep: Any, states: list[tuple[int, np.ndarray]]) -> float:
    """RMS over joints and time of (replayed q - logged q) at the same episode times."""
    logged = ep.streams.get("robot/state")
    if logged is None or not len(logged):
        return float("nan")
    lt = logged.t_ns
    lq = logged.array("q")
    errs = []
    for t, q in states:
        j = int(np.searchsorted(lt, t, side="right")) - 1
        if 0 <= j < len(lq):
            errs.append(np.mean((q - lq[j]) ** 2))
    return round(float(np.sqrt(np.mean(errs))), 5) if errs else float("nan")


def evaluate_policy(spec: str | Path, endpoint: str, *, rate_hz: float = 10.0, timeout_s: float = 2.0) -> dict[str, Any]:
    """Offline evaluation: the episode's robot states, as observations at ``rate_hz``, go to a
    policy server; each answer's first row is compared with the command that was executed then.
    Returns the error per joint group (rad) and how often the policy answered."""
    from teleop.bus.messages import PolicyAction, PolicyObservation

    folder = resolve_episode(spec)
    ep = load_episode(folder, topics=("session/command", "robot/state", "session/robot_spec"))
    st, cm = ep.stream("robot/state"), ep.stream("session/command")
    if len(st) < 2 or len(cm) < 2:
        raise ConfigError(f"{folder}: needs robot/state and session/command streams to evaluate a policy on")
    t_first = int(cm.t_ns[0])
    grid = np.arange(max(int(st.t_ns[0]), t_first), int(st.t_ns[-1]), int(1e9 / rate_hz))
    q_st, dq_st, poses = st.array("q"), st.array("dq"), st.array("body_pose")
    q_cmd = cm.array("q")
    groups = _groups(ep)
    errs, answered, failed = [], 0, 0
    with Bus("policy-eval") as bus:
        rpc = bus.rpc_client(endpoint, timeout_s)
        for k, t in enumerate(grid):
            i = int(np.searchsorted(st.t_ns, t, side="right")) - 1
            j = int(np.searchsorted(cm.t_ns, t, side="right")) - 1
            obs = PolicyObservation(obs_id=k, t_ns=int(t), episode_time_s=(int(t) - t_first) / 1e9, q=q_st[i],
                                    dq=dq_st[i], command=q_cmd[max(j, 0)], object_poses=poses[i], task=ep.meta.get("task", ""))
            try:
                got = rpc.call(obs)
            except Exception as exc:  # noqa: BLE001 - a late or failing policy is a result, counted
                logger.debug("policy evaluation: %s", exc)
                failed += 1
                continue
            if not isinstance(got, PolicyAction) or got.q.shape[1] != q_cmd.shape[1]:
                failed += 1
                continue
            answered += 1
            errs.append(np.abs(got.q[0] - q_cmd[max(j, 0)]))
    e = np.array(errs) if errs else np.zeros((0, q_cmd.shape[1]))
    per_group = {name: {"mean": round(float(e[:, sl].mean()), 5), "p99": round(float(np.percentile(e[:, sl], 99)), 5)}
                 for name, sl in groups.items()} if len(e) else {}
    return {"episode": str(folder), "policy": endpoint, "observations": len(grid), "answered": answered,
            "failed": failed, "error_rad": per_group,
            "error_rad_all": {"mean": round(float(e.mean()), 5) if len(e) else None,
                              "p99": round(float(np.percentile(e, 99)), 5) if len(e) else None}}


def _groups(ep: Any) -> dict[str, slice]:
    """Joint groups from the logged robot spec (all joints as one group without it)."""
    spec = ep.streams.get("session/robot_spec")
    if spec is None or not len(spec):
        n = len(ep.meta.get("joint_names") or []) or ep.stream("session/command").array("q").shape[1]
        return {"all": slice(0, n)}
    s = spec.messages[-1]
    out, start = {}, 0
    for name, size in zip(s.group_names, s.group_sizes):
        out[name] = slice(start, start + int(size))
        start += int(size)
    return out
