"""``teleop bench intervention``: a policy drives the bundled sim robot, a synthetic operator takes
over and hands back again and again; how fast a takeover reaches the robot, and the largest joint
step the robot is commanded during takeovers and returns.

Reference, same run: the jump each switch would have made without the ramp and the blend (the
distance between the outgoing and the incoming command at the switch tick).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np

from teleop.bus.messages import PolicyObservation
from teleop.loop import percentiles
from teleop.policy.base import Policy
from teleop.session.config import load_session
from teleop.session.safety import LIMITS_APPLIED
from teleop.session.session import HUMAN_STATES, POLICY, Session

__all__ = ["run", "SwayPolicy"]


class SwayPolicy(Policy):
    """Holds the first pose it sees and sways the arm joints slowly around it (0.15 rad, 0.3 Hz),
    as 10-row chunks 20 ms apart: motion for the operator to take over from."""

    dt_s = 0.02
    chunk = 10

    def __init__(self, amplitude_rad: float = 0.15, hz: float = 0.3, arm_joints: int = 7) -> None:
        self.amplitude, self.hz, self.arm = amplitude_rad, hz, arm_joints
        self.q0: np.ndarray | None = None
        self.last_obs: PolicyObservation | None = None

    def reset(self, task: str = "") -> None:
        self.q0 = None

    def act(self, obs: PolicyObservation) -> np.ndarray:
        self.last_obs = obs
        if self.q0 is None:
            self.q0 = obs.q.copy()
        t = obs.episode_time_s + self.dt_s * np.arange(self.chunk)
        out = np.tile(self.q0, (self.chunk, 1))
        sway = self.amplitude * np.sin(2 * np.pi * self.hz * t)[:, None]
        n = len(self.q0)
        half = n // 2  # the bundled robot: left arm + hand, then right arm + hand
        out[:, : self.arm] += sway
        out[:, half: half + self.arm] -= sway
        return out


def run(cycles: int = 10, port_base: int = 17810, hold_s: float = 1.5) -> dict:
    from teleop.policy.server import PolicyServer

    endpoint = f"tcp://127.0.0.1:{port_base + 20}"
    cfg = load_session("sim_synthetic")
    cfg = dataclasses.replace(
        cfg,
        robot=dataclasses.replace(cfg.robot, port_base=port_base),
        policy=dataclasses.replace(cfg.policy, enabled=True, endpoint=endpoint),
        controls=dataclasses.replace(cfg.controls, engage=("auto",)),
        # the synthetic operator does not match its fingers to the robot's before taking over (a person
        # would); allow the whole hand range so every takeover ramps instead of being refused
        safety=dataclasses.replace(cfg.safety, max_start_distance_rad=3.5),
    )
    server = PolicyServer(SwayPolicy(), endpoint)
    server.open()
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, kwargs={"stop_event": stop}, daemon=True)
    thread.start()
    sess = Session(cfg, status="quiet", keys=False)
    n_ticks = int((cycles * 2 * hold_s + 6.0) * cfg.rate_hz)
    t_ns = np.zeros(n_ticks, np.int64)
    q = np.zeros((n_ticks, 46))
    state = np.zeros(n_ticks, np.int8)  # 0 other, 1 ramping, 2 engaged, 3 returning, 4 policy
    codes = {"ramping": 1, "engaged": 2, "returning": 3, "policy": 4}
    switches: list[tuple[str, int, int, float]] = []  # (kind, request ns, tick, jump rad)
    nxt = {"t": 0.0, "want": "takeover", "done": 0}

    def hook(s: Session, tick: int) -> None:
        if tick >= n_ticks:
            s.stop()
            return
        t_ns[tick] = time.monotonic_ns()
        q[tick] = s.command
        state[tick] = codes.get(s.state, 0)
        now = time.monotonic()
        if nxt["t"] == 0.0 and s.state == POLICY:
            nxt["t"] = now + hold_s
        if nxt["t"] and now >= nxt["t"] and nxt["done"] < 2 * cycles:
            want = nxt["want"]
            if want == "return" and s.state == POLICY:  # the takeover was refused: try again
                nxt["want"], nxt["done"] = "takeover", nxt["done"] - 1
                switches.pop()
                want = "takeover"
            ok = (want == "takeover" and s.state == POLICY) or (want == "return" and s.state in HUMAN_STATES)
            if ok:
                # the jump an unramped switch would make: incoming command - outgoing command
                incoming = s.target if want == "takeover" else s.policy_command
                switches.append((want, time.monotonic_ns(), tick, float(np.max(np.abs(incoming - s.command)))))
                s.request(want)
                nxt["want"] = "return" if want == "takeover" else "takeover"
                nxt["done"] += 1
                nxt["t"] = now + hold_s
            if nxt["done"] >= 2 * cycles:
                nxt["t"] = now + 1.0  # a last second after the final switch, then stop
        elif nxt["done"] >= 2 * cycles and now >= nxt["t"]:
            s.stop()

    sess.on_tick = hook
    try:
        summary = sess.run(seconds=n_ticks / cfg.rate_hz + 10.0)
    finally:
        stop.set()
        thread.join(5)
        server.close()
    last = int(np.nonzero(t_ns)[0].max()) + 1 if t_ns.any() else 0
    steps = np.max(np.abs(np.diff(q[:last], axis=0)), axis=1) if last > 1 else np.zeros(0)
    lat, step_take, step_ret, jump_take, jump_ret, ramp_take = [], [], [], [], [], []
    for kind, req_ns, tick, jump in switches:
        moving, settled = (1, 2) if kind == "takeover" else (3, 4)  # ramp/blend, then steady
        after = np.nonzero(np.isin(state[tick + 1: last], (moving, settled)))[0]
        done = np.nonzero(state[tick + 1: last] == settled)[0]
        if not len(after) or not len(done):
            continue
        first, end = tick + 1 + int(after[0]), tick + 1 + int(done[0])
        window = steps[tick: end]  # from the switch until the ramp/blend has arrived
        if kind == "takeover":
            lat.append((t_ns[first] - req_ns) / 1e6)
            step_take.append(float(window.max()))
            jump_take.append(jump)
            ramp_take.append((end - first) / cfg.rate_hz)
        else:
            step_ret.append(float(window.max()))
            jump_ret.append(jump)
    return {
        "bench": "intervention",
        "switches": len(switches),
        "takeover_latency_ms": percentiles(np.array(lat)),  # takeover request -> first operator command sent
        "max_joint_step_rad": {
            "takeover": round(max(step_take), 5) if step_take else None,
            "return": round(max(step_ret), 5) if step_ret else None,
            "bound": cfg.safety.engage_max_step_rad,
            "return_bound": cfg.policy.blend_max_step_rad,
        },
        "takeover_ramp_s": percentiles(np.array(ramp_take)),
        "reference_unramped_jump_rad": {
            "takeover": round(max(jump_take), 4) if jump_take else None,
            "return": round(max(jump_ret), 4) if jump_ret else None,
        },
        "loop_hz": summary.loop_hz,
        "jitter_ms": summary.jitter_ms,
        "policy": summary.extra.get("policy", {}),
        "faults": {k: v for k, v in summary.faults.items() if k not in LIMITS_APPLIED},
    }
