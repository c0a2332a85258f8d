"""Status: the live status snapshot (10 Hz: state, loop rate, jitter, the command path's latency
per stage, inputs, faults) and, once a second, the command path's per-stage table on the tap
(the recorder keeps it in the episode's meta.json)."""

from __future__ import annotations

import math
import time

from teleop.session.frame import Frame
from teleop.session.safety import LIMITS_APPLIED
from teleop.session.trace import CommandTrace
from teleop.types import SIDES

__all__ = ["StatusStage"]


class StatusStage:
    name = "status"

    def __init__(self, session, machine, timer, trace: CommandTrace, keys) -> None:
        self.session, self.machine, self.timer, self.trace, self.keys = session, machine, timer, trace, keys
        rate = session.config.rate_hz
        self.every = max(1, round(rate / 10))
        self.second_every = max(1, round(rate))
        self.inputs = [(side, role, dev) for side in SIDES for role in ("hand", "wrist")
                       if (dev := session.input_device(side, 0 if role == "hand" else 1)) is not None]

    def step(self, f: Frame) -> None:
        if f.tick % self.every == 0:
            self.publish(f)
        if f.tick % self.second_every == 0 and f.tick:
            values = self.trace.second()
            if values and self.session.tap is not None:
                self.session.tap.event("stages", "", **values)

    def publish(self, f: Frame) -> None:
        s, cfg = self.session, self.session.config
        rate, misses, jitter_p99 = self.timer.recent()
        now_ns = time.monotonic_ns()
        stale_ms = cfg.safety.stale_timeout_s * 1e3
        inputs = {}
        for side, role, dev in self.inputs:
            h = dev.health()
            got = int(f.captures[2 * SIDES.index(side) + (role == "wrist")])  # the newest fresh sample's capture
            age = (now_ns - got) / 1e6 if got else math.inf
            inputs[f"{side}_{role}"] = {"device": getattr(cfg.inputs[side], role), "hz": h.rate_hz,
                                        "age_ms": round(age, 1), "fresh": age <= stale_ms}
        pol = s.policy
        stages = self.trace.table(500)
        s.status.publish({
            "state": self.machine.state,
            "loop_hz": round(rate, 1),
            "rate_hz": float(cfg.rate_hz),
            "ticks": self.timer.ticks,
            "deadline_misses": misses,
            "jitter_ms_p99": round(jitter_p99, 3),
            "latency_ms": stages["total"],
            "stages_ms": stages,
            "robot_mode": getattr(f.robot_state, "mode", "?"),
            "inputs": inputs,
            "policy": None if pol is None else {"intervening": self.machine.intervening, "late": pol.late,
                                                "errors": pol.errors},
            "faults": dict(s.faults),
            "faults_at": dict(s.faults_at),
            "fault_count": sum(v for k, v in s.faults.items() if k not in LIMITS_APPLIED),
            "last_fault": s.fault_log[-1] if s.fault_log else None,
            "keys_live": self.keys.active,
        })
