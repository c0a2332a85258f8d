"""The arbiter: who drives the robot in this pass and how fast the command may move to them.

* the operator (``ramping``, ``engaged``): the retargeted target; while ramping a bounded step
  per command (``safety.engage_max_step_rad``) until the command reaches it;
* the policy (``policy``, ``returning``): its action; while returning (after a takeover) a bounded
  blend (``policy.blend_max_step_rad``); a late or missing action holds, counted;
* nobody (every other state): the command holds where it is.

The safety filter (teleop/session/safety.py) then moves the command toward the chosen target,
and the arbiter reads its flags back: a ramp that arrived ends (``ramp_done``), wrists held
apart are a fault, limits applied are counted.
"""

from __future__ import annotations

import math

import numpy as np

from teleop.session.frame import Frame
from teleop.session.machine import HUMAN_STATES, POLICY_STATES, RAMPING, RETURNING, StateMachine
from teleop.session.safety import CLAMPED, HANDS_TOO_CLOSE, RAMPED, RATE_LIMITED

__all__ = ["Arbiter", "HUMAN", "POLICY_AUTHOR", "HOLD"]

HUMAN, POLICY_AUTHOR, HOLD = 0, 1, 2  # teleop.session.tap.AUTHORS


class Arbiter:
    def __init__(self, session, machine: StateMachine) -> None:
        self.session, self.machine = session, machine
        cfg = session.config
        self.engage_step = cfg.safety.engage_max_step_rad
        self.blend_step = cfg.policy.blend_max_step_rad
        self.min_hand_m = cfg.safety.min_hand_distance_m
        self.engaged_ticks = 0

    def choose(self, f: Frame) -> tuple[np.ndarray | None, float]:
        """(the target to move the command toward, or None to hold; the ramp step) and
        ``f.author``."""
        state = self.machine.state
        if state in POLICY_STATES:
            if not f.have_policy:  # late or missing answer: hold where we are, counted
                faults = self.session.faults
                faults["policy_no_action"] = faults.get("policy_no_action", 0) + 1
                f.author = HOLD
                return None, 0.0
            f.author = POLICY_AUTHOR
            return f.q_policy, self.blend_step if state == RETURNING else math.inf
        if state in HUMAN_STATES:
            self.session.hold_unsourced(f.q_target, f.q_cmd)
            f.author = HUMAN
            return f.q_target, self.engage_step if state == RAMPING else math.inf
        f.author = HOLD
        return None, 0.0

    def settle(self, f: Frame, flags: int) -> None:
        """What the filter's flags mean for the session."""
        m, session = self.machine, self.session
        human = f.author == HUMAN
        if m.state in (RAMPING, RETURNING) and not flags & RAMPED:
            m.handle("ramp_done", f)
        if flags & HANDS_TOO_CLOSE:
            who = "wrists would come closer than" if human else "the policy would bring the wrists closer than"
            session.fault("hands_too_close", f"{who} {self.min_hand_m} m: arms held")
        if human:
            faults = session.faults
            if flags & CLAMPED:
                faults["clamped"] = faults.get("clamped", 0) + 1
            if flags & RATE_LIMITED:
                faults["rate_limited"] = faults.get("rate_limited", 0) + 1

    def count_tick(self, f: Frame) -> None:
        """Time driven (the summary's ``engaged_s``), counted per fixed-rate tick."""
        state = self.machine.state
        if f.is_tick and (state in HUMAN_STATES or state in POLICY_STATES and f.have_policy):
            self.engaged_ticks += 1
