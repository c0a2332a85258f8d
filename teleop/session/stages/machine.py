"""State machine stage: the queued requests, auto-engage, the pending re-centre and stale inputs,
carried out through the table in teleop/session/machine.py; then whether this tick sends a
command (``Cadence``: in ``on_sample`` mode the operator's samples send their own)."""

from __future__ import annotations

import math

from teleop.session.frame import Frame
from teleop.session.machine import HUMAN_STATES, StateMachine, auto_engage_due

__all__ = ["MachineStage"]


class MachineStage:
    name = "machine"

    def __init__(self, session, machine: StateMachine, cadence) -> None:
        self.session = session
        self.machine = machine
        self.cadence = cadence
        auto = "auto" in session.config.controls.engage
        self.auto_next = 0.0 if auto else math.inf  # "auto": engage as soon as every input is fresh

    def step(self, f: Frame) -> None:
        m, requests = self.machine, self.session.requests
        if self.auto_next != math.inf:
            self.auto_next = auto_engage_due(m, f, self.auto_next)
        while requests:
            m.handle(requests.popleft(), f)
        if m.recentre_pending and f.inputs_ok:
            m.recentre(f)
            m.recentre_pending = False
        if m.state in HUMAN_STATES and not f.inputs_ok and not f.loop_was_away:
            m.handle("inputs_stale", f)
        f.send = self.cadence.due(f)
