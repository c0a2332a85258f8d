"""The arbiter with real parts: a policy server on loopback drives the sim robot through the
session; a synthetic operator takes over and returns; a late policy makes the robot hold; the
recorded episode exports with per-frame intervention flags."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from support.ports import free_port_base

from teleop.bench.intervention import SwayPolicy
from teleop.bench.intervention import run as bench_intervention
from teleop.policy.server import PolicyServer
from teleop.session.config import load_session
from teleop.session.session import Session


def test_takeover_and_return_never_step_above_the_bound():
    got = bench_intervention(cycles=2, port_base=free_port_base(21), hold_s=1.0)
    steps = got["max_joint_step_rad"]
    assert got["switches"] == 4, got
    assert steps["takeover"] <= steps["bound"] + 1e-9 and steps["return"] <= steps["return_bound"] + 1e-9, got
    # without the ramp and the blend the switches would have jumped by far more
    assert got["reference_unramped_jump_rad"]["takeover"] > 10 * steps["bound"]
    assert got["policy"]["answers"] > 50 and got["policy"]["errors"] == 0


class _StallingPolicy(SwayPolicy):
    """Answers for a while, then stops answering for ``stall_s`` (a policy server that hangs)."""

    def __init__(self, after_s: float, stall_s: float) -> None:
        super().__init__()
        self.after_s, self.stall_s, self.stalled = after_s, stall_s, False

    def act(self, obs):
        if obs.episode_time_s > self.after_s and not self.stalled:
            self.stalled = True
            time.sleep(self.stall_s)
        return super().act(obs)


def _policy_session(port_base: int, endpoint: str, **recorder):
    cfg = load_session("sim_synthetic")
    return dataclasses.replace(
        cfg,
        robot=dataclasses.replace(cfg.robot, port_base=port_base),
        policy=dataclasses.replace(cfg.policy, enabled=True, endpoint=endpoint, timeout_s=0.1, max_hold_s=0.1),
        controls=dataclasses.replace(cfg.controls, engage=("auto",)),
        safety=dataclasses.replace(cfg.safety, max_start_distance_rad=3.5),
        recorder=dataclasses.replace(cfg.recorder, **recorder) if recorder else cfg.recorder,
    )


def _serve(policy, endpoint):
    server = PolicyServer(policy, endpoint)
    server.open()
    stop = threading.Event()
    t = threading.Thread(target=server.serve, kwargs={"stop_event": stop}, daemon=True)
    t.start()

    def close():
        stop.set()
        t.join(5)
        server.close()

    return close


def test_a_late_policy_makes_the_robot_hold_and_is_counted():
    endpoint = "tcp://127.0.0.1:18045"
    policy = _StallingPolicy(after_s=3.0, stall_s=1.0)
    close = _serve(policy, endpoint)
    held, moving = [], []
    last = {}

    def hook(s, tick):
        if s.state not in ("policy", "returning"):
            return
        q = s.command.copy()
        if "q" in last:
            (held if s.faults.get("policy_no_action", 0) > last["late"] else moving).append(np.abs(q - last["q"]).max())
        last["q"], last["late"] = q, s.faults.get("policy_no_action", 0)

    try:
        sess = Session(_policy_session(18030, endpoint), status="quiet", keys=False)
        sess.on_tick = hook
        summary = sess.run(seconds=7.0)
    finally:
        close()
    stats = summary.extra["policy"]
    assert stats["late"] >= 1 and summary.faults["policy_no_action"] > 100  # ~0.9 s of ticks without an action
    assert max(held) == 0.0  # while the policy was late, the command did not move at all
    assert max(moving) > 0  # ... and it moved before and after (the policy recovered)
    assert summary.final_state == "policy"
    # what the policy saw: the robot, its objects, the operator's hands and the fingertip forces
    obs = policy.last_obs
    assert obs.q.shape == (46,) and obs.object_poses.shape == (3, 7)
    assert obs.keypoints.shape == (2, 21, 3) and np.abs(obs.keypoints).max() > 0.05
    assert obs.tactile_force.shape == (10, 3)


@pytest.mark.slow
def test_intervention_frames_are_flagged_in_the_export(tmp_path):
    endpoint = "tcp://127.0.0.1:18075"
    close = _serve(SwayPolicy(), endpoint)
    dataset = tmp_path / "ds"
    plan = {"takeover": 3.0, "return": 5.0}
    done = set()

    def hook(s, tick):
        t = tick / 500
        for what, at in plan.items():
            if t >= at and what not in done:
                s.request(what)
                done.add(what)

    try:
        sess = Session(_policy_session(18060, endpoint, enabled=True, dataset=str(dataset)), status="quiet", keys=False)
        sess.on_tick = hook
        summary = sess.run(seconds=7.0)
    finally:
        close()
    assert len(summary.extra["interventions"]) == 1
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "export", str(dataset), "--format", "lerobot", "--out",
                          str(tmp_path / "lr"), "--fps", "50", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import pyarrow.parquet as pq

    t = pq.read_table(tmp_path / "lr/data/chunk-000/file-000.parquet").to_pydict()
    flags = np.array([bool(np.asarray(v).ravel()[0]) for v in t["intervention"]])
    mode = np.array([int(np.asarray(v).ravel()[0]) for v in t["complementary_info.action_mode"]])
    n_int = int(flags.sum())
    assert 50 * 1.5 <= n_int <= 50 * 2.5, n_int  # about the 2 s between takeover and return
    assert np.all(mode[flags] == 1) and np.all(mode[~flags] != 1)
    # during the intervention the policy's proposal was kept next to the executed action
    pa = np.array([np.asarray(v, dtype=float) for v in t["complementary_info.policy_action"]])
    act = np.array([np.asarray(v, dtype=float) for v in t["action"]])
    assert np.abs(pa[flags]).sum() > 0 and not np.allclose(pa[flags], act[flags])
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    assert "intervention" in info["features"] and "complementary_info.policy_action" in info["features"]


def test_a_pinch_gesture_takes_over_from_the_policy():
    """controls.intervene = ["gesture:right_pinch"]: the synthetic operator's hands go through
    the named poses; the right thumb-index pinch (held 0.3 s) takes over, the next one hands back."""
    endpoint = "tcp://127.0.0.1:18095"
    close = _serve(SwayPolicy(), endpoint)
    cfg = _policy_session(18080, endpoint)
    devices = {name: dataclasses.replace(d, options={**d.options, "script": "hand_poses"})
               for name, d in cfg.devices.items()}
    cfg = dataclasses.replace(cfg, devices=devices,
                              controls=dataclasses.replace(cfg.controls, intervene=("gesture:right_pinch",)))
    try:
        summary = Session(cfg, status="quiet", keys=False).run(seconds=9.0)
    finally:
        close()
    takeovers = summary.extra["interventions"]
    assert len(takeovers) >= 1 and "takeover_s" in takeovers[0], summary.extra
