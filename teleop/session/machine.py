"""The session's state machine: one table of which event does what in which state.

States: ``idle`` (holding, not engaged) -> engage -> ``ramping`` (toward the operator's pose, a
bounded step per command) -> ``engaged``; disengage -> ``idle``; a stale input (a glove
unplugged) -> ``stale`` (holding; only a fresh engage resumes); e-stop from a key, a device
button or the bus -> ``estop`` (the robot server holds; ``release`` then engage resumes); the
robot server silent or replaced -> ``lost`` (nothing is sent; back to ``idle`` only). With a
policy: ``policy`` (it drives) and ``returning`` (blending back to it); a takeover ramps the human
in, a return hands back.

Events come from the operator (keys, buttons, pedals, gestures, the bus: ``Session.request``)
and from the pipeline (inputs stale, the robot's e-stop, lost, back, a ramp done). An event not
in the table for the current state does nothing. Guards (inputs fresh, the start-pose check)
live in the handlers, which say in a fault why they refused.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np

from drivers.samples import hand_sample_problem
from teleop.errors import TeleopError
from teleop.types import SIDES

if TYPE_CHECKING:
    from teleop.session.frame import Frame

__all__ = ["StateMachine", "TABLE", "IDLE", "RAMPING", "ENGAGED", "STALE", "ESTOP", "LOST", "POLICY", "RETURNING",
           "HUMAN_STATES", "POLICY_STATES", "DRIVING_STATES"]

IDLE, RAMPING, ENGAGED, STALE, ESTOP = "idle", "ramping", "engaged", "stale", "estop"
LOST = "lost"  # the robot server went silent or another instance answers: nothing is sent
POLICY, RETURNING = "policy", "returning"  # a policy drives; control is blending back to it
HUMAN_STATES = (RAMPING, ENGAGED)
POLICY_STATES = (POLICY, RETURNING)
DRIVING_STATES = HUMAN_STATES + POLICY_STATES
ALL = (IDLE, RAMPING, ENGAGED, STALE, ESTOP, LOST, POLICY, RETURNING)

#: event -> {state: handler}. Handlers are the ``_on_<name>`` methods below.
TABLE: dict[str, dict[str, str]] = {
    "stop": dict.fromkeys(ALL, "stop"),
    "estop": dict.fromkeys(ALL, "estop"),
    "release": {ESTOP: "release"},
    "engage": {IDLE: "engage", STALE: "engage", ESTOP: "refuse_estopped", LOST: "refuse_lost"},
    "disengage": dict.fromkeys(DRIVING_STATES, "disengage"),
    "toggle": {**dict.fromkeys(DRIVING_STATES, "disengage"), IDLE: "engage", STALE: "engage",
               ESTOP: "refuse_estopped", LOST: "refuse_lost"},
    "takeover": dict.fromkeys(POLICY_STATES, "takeover"),
    "return": dict.fromkeys(HUMAN_STATES, "hand_back"),
    "intervene": {**dict.fromkeys(POLICY_STATES, "takeover"), **dict.fromkeys(HUMAN_STATES, "hand_back")},
    # from the pipeline
    "inputs_stale": dict.fromkeys(HUMAN_STATES, "stale"),
    "robot_estop": {s: "robot_estop" for s in ALL if s != ESTOP},
    "robot_lost": dict.fromkeys(ALL, "lost"),
    "robot_back": {LOST: "back"},
    "ramp_done": {RAMPING: "ramp_done", RETURNING: "ramp_done"},
}
RAMP_DONE = {RAMPING: ENGAGED, RETURNING: POLICY}
INTERVENTION_EVENTS = ("takeover", "return", "intervene")


class StateMachine:
    """Holds the state and carries out the table. ``session`` gives the faults, the config and
    the policy; ``client`` the robot; ``retarget`` the operator's mapping (engage re-centres it)."""

    def __init__(self, session, client, retarget) -> None:
        self.session, self.client, self.retarget = session, client, retarget
        self.config = session.config
        self.state = IDLE
        self.intervening = False  # the human has taken over from the policy
        self.interventions: list[dict[str, float]] = []  # takeover/return times (monotonic s)
        self.recentre_pending = False  # the operator's mapping is set at the next fresh inputs
        self.frame: Frame | None = None

    def handle(self, event: str, frame: Frame) -> None:
        if event in INTERVENTION_EVENTS and self.session.policy is None:
            self.session.fault("intervene_refused", "no policy in this session ([policy] enabled = false)")
            return
        handler = TABLE.get(event, {}).get(self.state)
        if handler is not None:
            getattr(self, f"_on_{handler}")(frame)

    # -- operator events ----------------------------------------------------------------------------
    def _on_stop(self, frame: Frame) -> None:
        self.session.stop()

    def _on_estop(self, frame: Frame) -> None:
        try:
            self.client.estop()
        except TeleopError as exc:
            self.session.fault("estop", f"could not reach the robot to e-stop it: {exc}")
        self.state = ESTOP
        self.session.fault("estop", "e-stop: the robot holds; release (r), then engage")

    def _on_release(self, frame: Frame) -> None:
        self.client.release()
        self.state = IDLE
        held = self.client.get_state(1.0)  # restart from where the robot holds (its setpoint since the e-stop)
        frame.q_cmd[:] = np.clip(held.target, self.client.spec.lower, self.client.spec.upper)

    def _on_refuse_estopped(self, frame: Frame) -> None:
        self.session.fault("engage_refused", "e-stopped: release first (r)")

    def _on_refuse_lost(self, frame: Frame) -> None:
        self.session.fault("engage_refused", "the robot server is lost (no fresh state from it): nothing to engage")

    def _on_disengage(self, frame: Frame) -> None:
        self.state = IDLE
        self.end_intervention("disengage")

    def _on_engage(self, frame: Frame) -> None:
        if self.session.policy is not None:  # the policy takes over from where the robot is, blended
            self.end_intervention("stale")
            self.state = RETURNING
            # the operator's mapping starts here too (what a takeover ramps to), once their devices are fresh
            self.recentre_pending = True
        else:
            self.check_and_engage(frame)

    def _on_takeover(self, frame: Frame) -> None:
        """The operator's wrists are re-centred on the robot's pose and the human command ramps in."""
        self.state = IDLE
        if self.config.policy.recentre_on_takeover:
            self.check_and_engage(frame)
        elif frame.inputs_ok and not self.recentre_pending:
            self.state = RAMPING  # toward the operator's pose under the mapping set at the policy start
        else:
            self.session.fault("engage_refused", self.inputs_not_ready(frame))
        if self.state == RAMPING:
            self.intervening = True
            self.interventions.append({"takeover_s": time.monotonic()})
            self.session.tap_event("intervention", "takeover")
        else:  # refused (no fresh hand input, too far): the policy keeps control
            self.state = POLICY

    def _on_hand_back(self, frame: Frame) -> None:
        if self.intervening:  # the policy's command blends back in
            self.state = RETURNING
            self.end_intervention("return")

    # -- pipeline events ----------------------------------------------------------------------------
    def _on_stale(self, frame: Frame) -> None:
        self.state = STALE
        missing = [f"{side} {'hand' if role == 0 else 'wrist'}" for i, side in enumerate(SIDES) for role in (0, 1)
                   if self.session.input_device(side, role) is not None and not frame.have[i, role]]
        stale_s = self.config.safety.stale_timeout_s
        self.session.fault("stale_input", f"no fresh sample for {stale_s * 1e3:.0f} ms from {', '.join(missing)}: "
                                          "holding; re-engage when the device is back")

    def _on_robot_estop(self, frame: Frame) -> None:
        self.state = ESTOP
        self.session.fault("estop", "the robot reports an e-stop (bus or another client)")

    def _on_lost(self, frame: Frame) -> None:
        if self.state != LOST:
            self.end_intervention("robot lost")
            self.state = LOST

    def _on_back(self, frame: Frame) -> None:
        self.state = IDLE

    def _on_ramp_done(self, frame: Frame) -> None:
        self.state = RAMP_DONE[self.state]

    # -- guards and helpers -------------------------------------------------------------------------
    def check_and_engage(self, frame: Frame) -> None:
        """Engage when every input is fresh and the operator's pose is near the robot's."""
        if self.state in (RAMPING, ENGAGED):
            return
        if not frame.inputs_ok:
            self.session.fault("engage_refused", self.inputs_not_ready(frame))
            return
        measured = frame.robot_state.q
        self.recentre(frame)
        q_target = frame.q_target
        self.retarget.tick(time.monotonic_ns() / 1e9, frame.keypoints, frame.wrist_pos, frame.wrist_quat, q_target)
        self.session.hold_unsourced(q_target, measured)
        delta = np.abs(q_target - measured)
        worst = int(np.argmax(delta))
        limit = self.config.safety.max_start_distance_rad
        if delta[worst] > limit:
            name = self.client.spec.joint_names[worst]
            self.session.fault("engage_refused", f"{name} would have to move {delta[worst]:.2f} rad (limit "
                               f"{limit} rad): bring your hand to the robot's pose and engage again")
            for side in SIDES:
                self.retarget.disengage(side)
            return
        self.state = RAMPING

    def recentre(self, frame: Frame) -> None:
        """Re-centre the wrist mapping on where the robot is now (the clutch)."""
        for i, side in enumerate(SIDES):
            if self.session.input_device(side, 1) is not None:
                sl = self.retarget.sides[side].arm_slice
                self.retarget.engage(side, frame.wrist_pos[i], frame.wrist_quat[i], frame.robot_state.q[sl])

    def end_intervention(self, why: str) -> None:
        if not self.intervening:
            return
        self.intervening = False
        if self.interventions:
            self.interventions[-1]["return_s"] = time.monotonic()
        self.session.tap_event("intervention", why)

    def inputs_not_ready(self, frame: Frame) -> str:
        """Why the inputs cannot engage, per input: a hand whose samples arrive without keypoints
        (the driver breaks the hand contract), or an input with no fresh sample."""
        why = []
        for i, side in enumerate(SIDES):
            inp = self.config.inputs.get(side)
            for role, dev in enumerate((inp.hand, inp.wrist) if inp else ()):
                if dev is None or frame.have[i, role]:
                    continue
                what = f"{side} {'hand' if role == 0 else 'wrist'}"
                driver = self.config.devices[dev].driver if dev in self.config.devices else dev
                if role == 0 and frame.no_keypoints[i] is not None:
                    why.append(f"{what}: samples arrive but {hand_sample_problem(frame.no_keypoints[i], driver)}: "
                               "see docs/adding-a-driver.md (a hand driver fills HandSample.keypoints)")
                else:
                    why.append(f"{what}: no fresh sample from device {dev!r} ({driver}): check it with "
                               f"`teleop drivers echo {driver}`")
        return "; ".join(why) or "an input has no fresh sample: check the devices (`teleop drivers echo`)"


def auto_engage_due(machine: StateMachine, frame: Frame, next_try: float) -> float:
    """``controls.engage = ["auto"]``: engage as soon as every input is fresh, retried once a
    second until it takes, once per session. Returns when to try next (inf: never again)."""
    if machine.state in DRIVING_STATES:
        return math.inf
    if (frame.inputs_ok or machine.session.policy is not None) and machine.state == IDLE \
            and time.monotonic() >= next_try:
        machine.session.request("engage")
        return time.monotonic() + 1.0
    return next_try
