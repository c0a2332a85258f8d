"""Whole sessions against the MuJoCo robot server (a subprocess, free-running): devices ->
retargeting -> safety -> robot, with the faults an operator meets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.ports import free_port_base

from retarget.human_hand import HumanHand
from retarget.kinematics import compile_tree
from retarget.motions import pose
from robots.client import RobotClient
from robots.description import bundled_description_path, load_description
from teleop.session.config import parse_session
from teleop.session.session import ENGAGED, ESTOP, IDLE, RAMPING, STALE, Session

sys.path.insert(0, str(Path(__file__).parents[1] / "drivers"))
from fake_lucidglove import FakeLucidGlove  # noqa: E402

DESC = load_description(bundled_description_path())
SPEC_RATE = 200.0


def _session(devices: dict, inputs: dict, **sections) -> Session:
    raw = {
        "session": {"rate_hz": SPEC_RATE},
        "robot": {"kind": "sim", "port_base": free_port_base(4), "sim_args": ["--fast", "--cameras", "none"]},
        "device": devices,
        "input": inputs,
        "controls": {"engage": ["auto"], "estop": ["key:e"], "release": ["key:r"]},
        "haptics": {"enabled": False},
    }
    raw.update(sections)
    return Session(parse_session(raw), status="quiet", keys=False)


class Recorder:
    """on_tick hook: every command and state, plus checks that hold on every tick."""

    def __init__(self, session: Session, start_when: str | None = None) -> None:
        self.start_when = start_when  # e.g. "engaged": the timeline starts there (a slow start-up
        # on a loaded machine must not shift the scenario against the session)
        self.commands: list[np.ndarray] = []
        self.states: list[str] = []
        self.times: list[float] = []
        self.actions: list = []
        self.session = session
        session.on_tick = self

    def at(self, t_s: float, fn) -> None:
        self.actions.append((t_s, fn))

    def __call__(self, session: Session, tick: int) -> None:
        now = time.monotonic()
        if not self.times:
            if self.start_when is not None and session.state != self.start_when:
                return
            self.t0 = now
        self.commands.append(session.command.copy())
        self.states.append(session.state)
        self.times.append(now - self.t0)
        for item in list(self.actions):
            if now - self.t0 >= item[0]:
                self.actions.remove(item)
                item[1](session)


def _check_limits(rec: Recorder, session: Session, max_step: np.ndarray) -> None:
    """Every command within the joint limits, and no faster than the velocity limits, except the
    restart after an e-stop release (from the pose the robot holds, which the server applied)."""
    spec = session.client.spec
    q = np.array(rec.commands)
    assert np.all(q >= spec.lower - 1e-12) and np.all(q <= spec.upper + 1e-12), "a command left the joint limits"
    steps = np.abs(np.diff(q, axis=0))
    states = np.array(rec.states)
    restart = (states[:-1] == ESTOP) & (states[1:] != ESTOP)
    assert np.all(steps[~restart] <= max_step + 1e-9), f"a command moved faster than allowed: {steps[~restart].max()}"


def _right_hand_tree():
    frames = [f"right_{f}_tip" for f in ("thumb", "index", "middle", "ring", "pinky")]
    return compile_tree(DESC.model_path, "right_wrist", frames, DESC.sides["right"].hand_joints)


def test_pinch_from_a_replayed_glove_makes_the_sim_hand_pinch(tmp_path):
    kp_open = HumanHand("right").keypoints(pose("open"))
    kp_pinch = HumanHand("right").keypoints(pose("pinch_index"))
    rec_file = tmp_path / "pinch.jsonl"
    with rec_file.open("w") as f:
        # 8 s at 200 Hz: open, then a pinch held (long enough that the session's end, whatever its
        # start-up took, falls in the pinch, not in the next loop's open hand)
        for k in range(1600):
            kp = kp_open if k < 40 else kp_pinch
            f.write(json.dumps({"kind": "hand", "t_ns": k * 5_000_000, "seq": k, "side": "right",
                                "keypoints": kp.round(6).tolist()}) + "\n")
    session = _session({"glove": {"driver": "replay", "options": {"path": str(rec_file), "loop": True, "side": "right"}}},
                       {"right": {"hand": "glove"}})
    rec = Recorder(session)
    summary = session.run(seconds=4.0)
    assert summary.final_state == ENGAGED, summary.fault_log
    tree = _right_hand_tree()
    state = summary.extra["final_robot_state"]
    hand = session.client.spec.group_slice("right_hand")
    pos = tree.fk(state.q[hand]).pos
    gap = float(np.linalg.norm(pos[0] - pos[1]))
    assert gap < 0.02, f"thumb and index fingertips are {gap * 1e3:.1f} mm apart"
    max_step = session.client.spec.velocity / SPEC_RATE
    _check_limits(rec, session, max_step)


def test_glove_on_a_pty_drives_the_hand_and_dropout_holds_without_jump_on_reengage(tmp_path):
    with FakeLucidGlove(tmp_path / "glove") as fake:
        fake.set_state(curl=(0.05,) * 5)
        session = _session(
            {"glove": {"driver": "opengloves", "options": {"port": fake.path, "side": "right", "analog_max": 4095,
                                                            "reconnect_interval_s": 0.05}}},
            {"right": {"hand": "glove"}},
            safety={"engage_max_step_rad": 0.01, "stale_timeout_s": 0.1, "max_start_distance_rad": 3.0},
        )
        rec = Recorder(session, start_when="engaged")
        marks: dict[str, float] = {}

        def fist(s: Session) -> None:
            fake.set_state(curl=(0.95,) * 5)

        def unplug(s: Session) -> None:
            marks["unplug"] = time.monotonic() - rec.t0
            marks["held_command"] = 0
            fake.unplug()

        def replug(s: Session) -> None:
            fake.set_state(curl=(0.05,) * 5)  # the operator opened the hand meanwhile: a big move
            fake.replug()

        def engage(s: Session) -> None:
            # an operator presses again when a press was refused (on a loaded machine the glove's
            # first samples after the replug can come late)
            if s.state == STALE:
                marks.setdefault("engage", time.monotonic() - rec.t0)
                s.request("engage")

        rec.at(1.0, fist)
        rec.at(2.5, unplug)
        rec.at(3.3, replug)
        for k in range(6):
            rec.at(4.0 + 0.3 * k, engage)
        rec.at(6.5, lambda s: s.stop())
        summary = session.run(seconds=20.0)
    states, times = np.array(rec.states), np.array(rec.times)
    q = np.array(rec.commands)
    hand = session.client.spec.group_slice("right_hand")
    names = session.client.spec.joint_names
    flex = [names.index(f"right_{f}_mcp_flex") - hand.start for f in ("index", "middle", "ring", "pinky")]
    # the fist reached the robot's command
    before_unplug = q[(times > 2.0) & (times < 2.5)][:, hand]
    assert before_unplug[:, flex].mean() > 0.8, before_unplug[:, flex].mean()
    # stale within 100 ms (+ one tick), then the command does not move
    stale_at = times[np.argmax((states == STALE) & (times > marks["unplug"]))]
    assert 0 < stale_at - marks["unplug"] <= 0.1 + 2 / SPEC_RATE + 0.02
    first_stale = np.flatnonzero(states == STALE)[0]
    span = first_stale + np.argmax(np.append(states[first_stale:] != STALE, True))  # the first hold's end
    held = q[first_stale:span]
    assert np.abs(held - held[0]).max() == 0.0
    # back after replug but still holding until engage; then a bounded ramp, no jump
    assert all(s == STALE for s, t in zip(states, times, strict=True) if 3.4 < t < marks["engage"])
    after = np.abs(np.diff(q[times > marks["engage"] - 0.01], axis=0))
    assert after.max() <= 0.01 + 1e-9
    assert {RAMPING, ENGAGED} <= set(states[times > marks["engage"]])
    assert summary.faults.get("stale_input", 0) >= 1
    _check_limits(rec, session, session.client.spec.velocity / SPEC_RATE)


def test_estop_from_the_bus_holds_until_release(tmp_path):
    session = _session({"left": {"driver": "synthetic", "options": {"side": "left", "rate_hz": 200}},
                        "right": {"driver": "synthetic", "options": {"side": "right", "rate_hz": 200}}},
                       {"left": {"hand": "left", "wrist": "left"}, "right": {"hand": "right", "wrist": "right"}},
                       safety={"max_start_distance_rad": 3.0})
    rec = Recorder(session)
    marks: dict[str, float] = {}

    def estop_from_elsewhere(s: Session) -> None:
        marks["estop"] = time.monotonic() - rec.t0
        other = RobotClient(s.config.rpc_endpoint(), source="another-client")
        other.connect()
        other.estop()
        other.disconnect()

    def release(s: Session) -> None:
        marks["release"] = time.monotonic() - rec.t0
        s.request("release")

    def engage(s: Session) -> None:
        s.request("engage")

    rec.at(1.5, estop_from_elsewhere)
    rec.at(2.5, release)
    rec.at(2.7, engage)
    summary = session.run(seconds=3.5)
    states, times = np.array(rec.states), np.array(rec.times)
    first_estop = times[np.argmax(states == ESTOP)]
    assert 0 <= first_estop - marks["estop"] < 0.15
    assert all(s == ESTOP for s, t in zip(states, times, strict=True) if first_estop <= t < marks["release"])
    assert states[(times > marks["release"]) & (times < 2.65)].tolist() and set(states[(times > marks["release"]) & (times < 2.65)]) == {IDLE}
    assert summary.final_state in (RAMPING, ENGAGED), summary.fault_log
    assert summary.faults.get("estop", 0) >= 1
    _check_limits(rec, session, session.client.spec.velocity / SPEC_RATE)


def test_config_errors_name_the_key():
    from teleop.errors import ConfigError

    base = {"device": {"g": {"driver": "synthetic"}}, "input": {"right": {"hand": "g"}}}
    for mutate, message in [
        (lambda r: r["input"]["right"].update(hand="nope"), "names no \\[device.nope\\]"),
        (lambda r: r.update(robot={"kind": "real"}), "allowed: 'sim'"),
        (lambda r: r.update(robot={"kind": "bridge"}), "needs key 'robot.rpc'"),
        (lambda r: r.update(controls={"engage": ["pedal:clutch"]}), "names no device 'pedal'"),
        (lambda r: r.update(safety={"stale_timeout": 1}), "unknown key 'safety.stale_timeout'"),
        (lambda r: r.update(session={"rate_hz": 5000}), "must be <= 1000"),
        (lambda r: r.update(input={}), "no inputs"),
    ]:
        raw = json.loads(json.dumps(base))
        mutate(raw)
        with pytest.raises(ConfigError, match=message):
            parse_session(raw)
