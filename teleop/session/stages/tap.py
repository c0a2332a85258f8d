"""Tap: what this pass commanded and why (state, target, flags, author, intervention) goes to
the recorder's ring, with state changes as events. One row per command sent, and one per tick
that sent none (e-stopped, lost, or between the operator's samples for longer than a tick)."""

from __future__ import annotations

from teleop.session.arbiter import HOLD, HUMAN, POLICY_AUTHOR
from teleop.session.frame import Frame
from teleop.session.machine import HUMAN_STATES, POLICY_STATES
from teleop.session.tap import STATES, SessionTap

__all__ = ["TapStage"]

_STATE_INDEX = {name: i for i, name in enumerate(STATES)}


class TapStage:
    name = "tap"

    def __init__(self, tap: SessionTap, machine, period_ns: int) -> None:
        self.tap, self.machine = tap, machine
        self.half_period_ns = period_ns // 2
        self.last_ns = 0
        self.last_state = machine.state

    def step(self, f: Frame) -> None:
        m = self.machine
        if f.sent or (f.is_tick and f.now_ns - self.last_ns >= self.half_period_ns):
            self.last_ns = f.now_ns
            human = m.state in HUMAN_STATES
            by_policy = m.state in POLICY_STATES and f.have_policy
            author = HUMAN if human else (POLICY_AUTHOR if by_policy else HOLD)
            interv = human and m.intervening
            self.tap.command(f.tick, f.now_ns, _STATE_INDEX[m.state], f.q_cmd, f.q_policy if by_policy else f.q_target,
                             f.flags, f.captures if human else None, author, interv,
                             f.q_policy if interv and f.have_policy else None)
        if m.state != self.last_state:
            self.last_state = m.state
            self.tap.event("state", m.state)
