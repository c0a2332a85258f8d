"""Robot state: the newest state of our robot server instance (every few ticks, ~200 Hz), its
freshness (``RobotWatch``: silent or replaced -> ``lost``, nothing sent), the e-stop it reports,
the echo of our commands (completing their traces), and the children the session started."""

from __future__ import annotations

import numpy as np

from teleop.errors import TeleopError
from teleop.session.frame import Frame
from teleop.session.machine import LOST
from teleop.session.trace import CommandTrace
from teleop.session.watch import RobotWatch

__all__ = ["RobotStage", "held_pose"]


def held_pose(state, spec) -> np.ndarray:
    """Where the robot holds now: its applied target once it has taken commands (active, hold),
    else its measured pose; within the limits."""
    return np.clip(state.target if state.mode in ("active", "hold") else state.q, spec.lower, spec.upper)


class RobotStage:
    name = "robot"

    def __init__(self, session, machine, watch: RobotWatch, trace: CommandTrace) -> None:
        self.session, self.machine, self.watch, self.trace = session, machine, watch, trace
        self.client = watch.client
        rate = session.config.rate_hz
        self.state_every = max(1, round(rate / 200))
        self.child_every = max(1, round(rate / 10))
        self.last_seq = -1

    def step(self, f: Frame) -> None:
        st = None
        if f.tick % self.state_every == 0:
            st = self._read(f)
        if f.tick % self.child_every == 0:
            self._watch_children(f)
        f.fresh_state = st
        if st is None:
            return
        f.robot_state = self.session.robot_state = st
        if st.mode == "estop":
            self.machine.handle("robot_estop", f)
        if st.cmd_seq != self.last_seq and st.cmd_applied_ns:
            self.last_seq = st.cmd_seq
            off = self.client.offset.offset_ns
            self.trace.complete(st.cmd_seq, st.cmd_recv_ns - off, st.cmd_applied_ns - off)

    def _read(self, f: Frame):
        """Back from ``lost`` only to ``idle``, commanding where the robot now is: a fresh engage
        and its start-pose check come before any motion."""
        reading = self.watch.read(not f.loop_was_away)
        if reading.fault:
            self.machine.handle("robot_lost", f)
            self.session.fault(reading.fault, reading.message)
            if reading.fault == "robot_changed" and self.session.config.robot.kind == "bridge":
                return self._adopt_new_instance(f)
            return None
        st = reading.state
        if st is not None and self.machine.state == LOST:
            self.watch.lost = False
            f.q_cmd[:] = held_pose(st, self.client.spec)
            self.machine.handle("robot_back", f)
            self.session.fault("robot_back",
                               f"states from {self.client.instance} again after a silence: engage to drive")
        return st

    def _adopt_new_instance(self, f: Frame):
        """A bridge restarted: bind to the new instance (a fresh spec, same joints) but stay held
        until the operator engages again."""
        client, session = self.client, self.session
        try:
            old = client.instance
            spec = client.rebind()
        except TeleopError as exc:
            session.fault("robot_changed", f"could not reconnect to the new robot server instance: {exc}")
            return None
        if tuple(spec.joint_names) != session.description.joint_names:
            session.fault("robot_changed", f"the new robot server ({spec.name}) has other joints: not driving it; "
                          "restart the session")
            session.stop()
            return None
        try:
            st = client.get_state(0.5)
        except TeleopError:  # WrongRobotError included
            return None
        self.watch.lost = False
        f.q_cmd[:] = np.clip(st.q, spec.lower, spec.upper)
        self.machine.handle("robot_back", f)
        session.fault("robot_changed", f"now bound to robot server instance {client.instance} (was {old}): held; "
                      "engage to drive it (start-pose check first)")
        return st

    def _watch_children(self, f: Frame) -> None:
        session = self.session
        for ex in session.children.exited():
            if ex.name == "robot server":
                self.machine.handle("robot_lost", f)
                session.stop()
                session.stop_reason = f"{ex.message}; the session stopped (a new server would be another robot)"
                session.fault("robot_exited", session.stop_reason)
            else:
                ep = session.rec_status_path or "the open episode"
                session.fault("recorder_exited", f"{ex.message}. Nothing is being recorded; {ep} is recovered (kept, "
                              "marked 'recovered') when a recorder next starts on the dataset, or now with "
                              "`teleop episodes verify DATASET`")
