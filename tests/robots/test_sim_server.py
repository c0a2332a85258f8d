"""The MuJoCo robot server and its client, over real sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import mujoco
import numpy as np
import pytest
from support.sim import FIXTURES, running_server

from robots.check import run_checks
from robots.client import RobotClient
from robots.mujoco_sim.server import SimConfig, SimServer
from robots.scripted import actuator_indices, grasp_and_lift_plan
from teleop.bus import CameraFrame, RobotEndpoints, generate_keys
from teleop.cli import main as cli_main
from teleop.errors import ConfigError, DeviceNotConnectedError, LinkTimeoutError, RobotError


@pytest.mark.parametrize("robot", ["bundled", "config-only URDF"])
def test_conformance_kit_passes_against_sim(port_base, robot):
    extra = {} if robot == "bundled" else {"description": FIXTURES / "tiny_bimanual.toml"}
    with running_server(port_base, **extra):
        report = run_checks(RobotEndpoints.on(port_base=port_base).rpc)
    assert report.ok, report.format()
    names = [r.name for r in report.results]
    assert names == ["connect", "spec", "ping", "state_stream", "command_response", "limits", "watchdog", "estop", "malformed_input"]


def test_conformance_kit_reports_failures(port_base, capsys):
    rpc = RobotEndpoints.on(port_base=port_base).rpc
    assert cli_main(["robot", "check", rpc]) == 1  # nothing running
    assert "FAIL" in capsys.readouterr().out
    with running_server(port_base, description=FIXTURES / "tiny_bimanual.toml", watchdog_s=2.0):
        report = run_checks(rpc)
    assert not report.ok
    failed = [r for r in report.results if not r.ok]
    assert failed[0].name == "spec" and "watchdog" in failed[0].detail


def test_client_errors_are_clear(port_base):
    client = RobotClient(RobotEndpoints.on(port_base=port_base).rpc, timeout_s=0.3)
    with pytest.raises(DeviceNotConnectedError, match="connect"):
        client.get_state()
    with pytest.raises(LinkTimeoutError, match="teleop sim"):
        client.connect()
    with running_server(port_base, description=FIXTURES / "tiny_bimanual.toml") as server:
        spec = client.connect()
        with pytest.raises(ValueError, match=r"takes \(16,\)"):
            client.send_command(np.zeros(3))
        with pytest.raises(ValueError, match="NaN"):
            client.send_command(np.full(spec.n_joints, np.nan))
        sent = client.send_command(np.full(spec.n_joints, 5.0))
        assert np.all(sent == spec.upper)  # what was actually sent
        with pytest.raises(RobotError, match="unknown op 'fly'; ops:"):
            client.request("fly")
        assert client.request("reset").ok and server.mode == "idle"
        off = client.clock_offset(3)
        assert abs(off.offset_ns) < 50e6  # same host, same monotonic clock
    time.sleep(0.15)
    with pytest.raises(LinkTimeoutError, match="no robot state"):
        client.get_state(timeout_s=0.3, max_age_s=0.1)  # the last queued state is stale
    client.disconnect()


_CLIENT = textwrap.dedent(
    """
    import sys, time, numpy as np
    from robots.client import RobotClient
    c = RobotClient(sys.argv[1]); spec = c.connect(); q = c.get_state(2).target.copy()
    print("ready", flush=True)
    t0 = time.monotonic()
    while True:
        q2 = q.copy(); q2[spec.group_slice("left_hand")] += 0.3 * np.sin(time.monotonic() - t0)
        c.send_command(q2); time.sleep(0.004)
    """
)


def test_killed_client_leaves_the_robot_holding(port_base):
    rpc = RobotEndpoints.on(port_base=port_base).rpc
    with running_server(port_base) as server:
        proc = subprocess.Popen([sys.executable, "-c", _CLIENT, rpc], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 5
            while server.mode != "active" and time.monotonic() < deadline:
                time.sleep(0.01)
            assert server.mode == "active"
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            while server.mode != "hold" and time.monotonic() - killed < 1.0:
                time.sleep(0.002)
            held_after = time.monotonic() - killed
        finally:
            proc.kill()
            proc.wait()
        assert server.mode == "hold" and held_after < 0.2
        frozen = server.target.copy()
        time.sleep(0.2)
        assert np.array_equal(server.target, frozen)
        assert server.counters["watchdog_trips"] == 1


def test_curve_keys_end_to_end(tmp_path, port_base):
    generate_keys(tmp_path / "keys")
    generate_keys(tmp_path / "other")
    rpc = RobotEndpoints.on(port_base=port_base).rpc
    with running_server(port_base, description=FIXTURES / "tiny_bimanual.toml", keys=tmp_path / "keys"):
        with RobotClient(rpc, keys=tmp_path / "keys") as client:
            assert client.get_state(2.0).q.shape == (16,)
        (tmp_path / "other" / "server.key").write_bytes((tmp_path / "keys" / "server.key").read_bytes())
        stranger = RobotClient(rpc, keys=tmp_path / "other", timeout_s=0.5)
        with pytest.raises(LinkTimeoutError):
            stranger.connect()
        with pytest.raises(LinkTimeoutError):
            RobotClient(rpc, timeout_s=0.5).connect()  # no keys at all


def test_camera_frames(port_base):
    try:
        ctx = running_server(port_base, cameras=("head_cam",), camera_hz=20.0, camera_width=160, camera_height=120)
        server = ctx.__enter__()
    except ConfigError as exc:
        pytest.skip(f"no offscreen render backend here: {exc}")
    try:
        with RobotClient(RobotEndpoints.on(port_base=port_base).rpc) as client:
            assert client.spec.camera_names == ("head_cam",)
            assert client.spec.camera_shapes.tolist() == [[120, 160]]
            sub = client.camera_subscriber(mode="lossless")
            frames = [sub.recv(10.0).msg for _ in range(3)]
    finally:
        ctx.__exit__(None, None, None)
    assert all(isinstance(f, CameraFrame) and f.image.shape == (120, 160, 3) for f in frames)
    assert [f.frame_index for f in frames] == sorted(f.frame_index for f in frames)
    assert frames[-1].time_s > frames[0].time_s
    assert frames[0].image.std() > 5  # a scene, not a blank buffer
    assert server.camera is None  # closed


def test_state_reports_objects_and_fingertip_contact(port_base):
    """Drive the grasp open-loop inside the server's own model, then read its state message."""
    server = SimServer(SimConfig(endpoints=RobotEndpoints.on(port_base=port_base), cameras=()))
    try:
        m, d, sim = server.model, server.data, server.sim
        plan = grasp_and_lift_plan(m, sim.description)
        act = actuator_indices(m, sim.joint_names)
        t = 0.0
        while t < plan.duration_s:
            d.ctrl[act] = plan.command_at(t)
            mujoco.mj_step(m, d)
            t += m.opt.timestep
        state = server.state()
    finally:
        server.close()
    bottle = sim.body_names.index("bottle")
    assert state.body_pose.shape == (3, 7) and state.body_pose[bottle, 2] > 0.8
    tips = np.linalg.norm(state.fingertip_force, axis=1)
    right = [i for i, n in enumerate(sim.fingertip_names) if n.startswith("right")]
    assert tips[right].max() > 0.1  # the right hand's fingertips press on the bottle
    assert np.allclose(tips[[i for i in range(len(tips)) if i not in right]], 0.0)


def test_sim_command_line(port_base, tmp_path):
    cmd = [sys.executable, "-m", "teleop.cli", "sim", "--fast", "--duration", "0.5", "--cameras", "none", "--port-base", str(port_base)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "robot server stopped" in res.stderr and '"ticks": 250' in res.stderr
    res = subprocess.run(cmd[:-4] + ["--host", "0.0.0.0", "--cameras", "none"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "teleop keys generate" in res.stderr
    res = subprocess.run([sys.executable, "-m", "teleop.cli", "sim", "--config", str(tmp_path / "x.toml")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_endpoints_overridable_from_the_command_line(tmp_path):
    rpc = f"ipc://{tmp_path}/rpc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "teleop.cli", "sim", "--cameras", "none", "--config", str(FIXTURES / "tiny_bimanual.toml"),
         "--endpoint", f"rpc={rpc}", "--endpoint", f"state=ipc://{tmp_path}/state",
         "--endpoint", f"command=ipc://{tmp_path}/cmd"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        client = RobotClient(rpc, timeout_s=1.0)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.connect()
                break
            except LinkTimeoutError:
                assert proc.poll() is None and time.monotonic() < deadline
        assert client.endpoints.state == f"ipc://{tmp_path}/state"
        assert client.get_state(2.0).q.shape == (16,)
        client.disconnect()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(20)
    assert proc.returncode == 0
    bad = subprocess.run([sys.executable, "-m", "teleop.cli", "sim", "--endpoint", "video=tcp://127.0.0.1:1"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "NAME=URL with NAME in" in bad.stderr
