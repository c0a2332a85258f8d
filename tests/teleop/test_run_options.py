"""What a new operator meets first with ``teleop run``: ports (--port-base, busy ports named with
their holder), the robot server's options (--viewer, --headless, --sim-args), every missing
device reported before anything starts, the summary, the keys in --help, and ``teleop doctor``'s
ports and optional packages. Everything but one short real session fails or returns before a
robot server would start."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from support.ports import free_port_base

from teleop.bus.endpoints import DEFAULT_INPUT_ENDPOINT, RobotEndpoints, ports_free, session_endpoints
from teleop.cli import _format_session, build_parser, main
from teleop.doctor import _feature_packages, _ports, busy_ports
from teleop.errors import ConfigError
from teleop.policy import DEFAULT_POLICY_ENDPOINT
from teleop.session.config import (
    ControlsConfig,
    bound_endpoints,
    default_endpoints,
    load_session,
    parse_session,
    with_port_base,
    with_sim_args,
)

SYNTHETIC = """
[robot]
kind = "sim"
port_base = {base}
sim_args = {sim_args}
[device.left]
driver = "synthetic"
options = {{ side = "left" }}
[input.left]
hand = "left"
wrist = "left"
"""


def _toml(tmp_path, base: int, sim_args: str = "[]", text: str = SYNTHETIC):
    path = tmp_path / "s.toml"
    path.write_text(text.format(base=base, sim_args=sim_args))
    return str(path)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# -- ports ---------------------------------------------------------------------------------------
def test_default_endpoints_are_the_endpoint_modules_and_move_together():
    ep = default_endpoints()
    assert set(RobotEndpoints.on().as_dict().values()) | set(session_endpoints()) <= set(ep.values())
    assert ep["network input"] == DEFAULT_INPUT_ENDPOINT and ep["policy server"] == DEFAULT_POLICY_ENDPOINT
    assert sorted(_port(u) for u in default_endpoints(20000).values()) == [*range(20000, 20006), 20010, 20020]


def test_port_base_moves_every_endpoint_of_the_session():
    raw = {"robot": {"kind": "sim"}, "recorder": {"enabled": True}, "policy": {"enabled": True},
           "device": {"net": {"driver": "network", "options": {"side": "right"}},
                      "far": {"driver": "network", "options": {"endpoint": "tcp://10.0.0.5:7620", "bind": False}}},
           "input": {"right": {"hand": "net", "wrist": "net"}}}
    moved = with_port_base(parse_session(raw), 21000)
    bound = bound_endpoints(moved)
    assert [_port(bound[f"robot {n}"]) for n in ("state", "command", "camera", "rpc")] == [21000, 21001, 21002, 21003]
    assert _port(bound["session tap"]) == 21004 and _port(bound["recorder control"]) == 21005
    assert bound["device net (network input)"] == "tcp://127.0.0.1:21010"
    assert moved.policy.endpoint == "tcp://127.0.0.1:21020" and moved.rpc_endpoint() == "tcp://127.0.0.1:21003"
    assert moved.devices["far"].options["endpoint"] == "tcp://10.0.0.5:7620"  # another host's: not ours to move
    assert "device far (network input)" not in bound  # it connects, binds nothing here

    bridge = with_port_base(load_session("bridge_gloves_gelsight"), 21000)
    assert bridge.rpc_endpoint() == "tcp://192.168.1.20:7613"  # the bridge's own endpoint stays
    assert bridge.devices["wrists"].options["endpoint"] == "tcp://127.0.0.1:21010"
    assert not any(name.startswith("robot ") for name in bound_endpoints(bridge))  # the bridge binds those


def test_run_refuses_a_port_base_out_of_range(capsys):
    assert main(["run", "--port-base", "65516"]) == 2
    assert "1024..65515" in capsys.readouterr().err
    assert main(["run", "--port-base", "nan"]) == 2


def test_busy_port_is_named_with_its_holder_and_a_free_port_base(tmp_path, capsys):
    base = free_port_base(8)
    with socket.socket() as held:
        held.bind(("127.0.0.1", base + 4))
        held.listen()
        assert main(["run", _toml(tmp_path, base), "--no-keys", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"session tap: tcp://127.0.0.1:{base + 4} is held by pid {os.getpid()}" in err, err
        suggested = int(re.search(r"--port-base (\d+) \(free now\)", err).group(1))
        assert ports_free(suggested, 6)
        ((name, endpoint, holder),) = busy_ports({"tap": f"tcp://127.0.0.1:{base + 4}",
                                                  "free": f"tcp://127.0.0.1:{base + 5}"})
        assert (name, endpoint) == ("tap", f"tcp://127.0.0.1:{base + 4}")
        assert holder.startswith(f"pid {os.getpid()}: ") and "python" in holder


# -- the robot server's options --------------------------------------------------------------------
def test_viewer_is_opt_in_and_falls_back_headless_without_a_display(caplog):
    profile = load_session("sim_opengloves_spacemouse")
    assert "--viewer" not in profile.robot.sim_args
    asks = parse_session({"robot": {"sim_args": ["--viewer", "--fast"]}, "policy": {"enabled": True}})
    with caplog.at_level(logging.WARNING):
        assert with_sim_args(asks, display=False).robot.sim_args == ("--fast",)
    assert "no display" in caplog.text
    assert with_sim_args(asks, display=True).robot.sim_args == ("--viewer", "--fast")
    assert with_sim_args(asks, viewer=False, display=True).robot.sim_args == ("--fast",)  # --headless
    assert with_sim_args(profile, viewer=True, display=True).robot.sim_args[-1] == "--viewer"
    with pytest.raises(ConfigError, match="--viewer needs a display"):
        with_sim_args(profile, viewer=True, display=False)
    assert with_sim_args(asks, ["--cameras", "none"], display=False).robot.sim_args == ("--cameras", "none")
    with pytest.raises(ConfigError, match="starts no robot server"):
        with_sim_args(load_session("bridge_gloves_gelsight"), ["--fast"])


def test_run_options_parse_and_refuse_together(capsys):
    args = build_parser().parse_args(["run", "--port-base", "23000", "--headless", "--sim-args=--cameras none"])
    assert (args.port_base, args.headless, args.viewer, args.sim_args) == (23000, True, False, "--cameras none")
    assert main(["run", "--viewer", "--headless"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize("sim_args, message", [
    ("--port-base 9000", "--port-base is the session's own: use `teleop run --port-base N`"),
    ("--config=x.toml", "--config is the session's own: set [session] robot_description"),
    ("--cameras none --bogus 3", "unrecognized arguments: --bogus 3"),
    ("--camera-hz nan", "argument --camera-hz: 'nan' is not allowed"),
    ("--cameras 'none", "No closing quotation"),
])
def test_sim_args_are_checked_before_anything_starts(tmp_path, capsys, sim_args, message):
    assert main(["run", _toml(tmp_path, free_port_base(8)), f"--sim-args={sim_args}", "--no-keys"]) == 2
    assert message in capsys.readouterr().err


# -- devices ---------------------------------------------------------------------------------------
GLOVES = """
[robot]
kind = "sim"
port_base = {base}
sim_args = {sim_args}
[device.glove_left]
driver = "opengloves"
options = {{ port = "/nonexistent/ttyTEST0", side = "left" }}
[device.glove_right]
driver = "opengloves"
options = {{ port = "/nonexistent/ttyTEST1", side = "right" }}
[device.ok]
driver = "synthetic"
options = {{ side = "right" }}
[input.left]
hand = "glove_left"
[input.right]
hand = "glove_right"
wrist = "ok"
"""


def test_every_missing_device_is_reported_before_the_robot_server_starts(tmp_path, capsys, monkeypatch, caplog):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    toml = _toml(tmp_path, free_port_base(8), '["--viewer"]', GLOVES)
    with caplog.at_level(logging.WARNING):
        assert main(["run", toml, "--no-keys", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "2 of 3 devices could not be opened" in err, err
    assert "device 'glove_left' (opengloves)" in err and "/nonexistent/ttyTEST0" in err
    assert "device 'glove_right' (opengloves)" in err and "/nonexistent/ttyTEST1" in err
    assert "robot server" not in err  # none was started: the devices came first
    assert "running the robot server headless" in caplog.text  # the session's --viewer, no display


# -- the summary and the help ----------------------------------------------------------------------
def _summary(**changes) -> dict:
    s = {"seconds": 2.0, "rate_hz": 500.0, "loop_hz": 499.1, "held_rate": True, "deadline_misses": 1,
         "jitter_ms": {"p50": 0.1, "p99": 0.4, "max": 0.9}, "latency_ms": {"p50": 1.2, "p99": 2.5, "max": 3.0},
         "commands": 900, "engaged_s": 1.8, "final_state": "engaged", "faults": {}, "fault_log": []}
    return {**s, **changes}


def test_summary_prints_one_fault_a_line_and_limits_apart():
    nan = {"p50": math.nan, "p99": math.nan, "max": math.nan}
    text = _format_session(_summary(latency_ms=nan, faults={"stale_input": 2, "clamped": 7, "rate_limited": 3,
                                                             "engage_refused": 1},
                                    fault_log=["12:00:00 stale_input: no fresh sample for 100 ms from left hand"]))
    assert "latency n/a (no input with capture times)" in text and "nan" not in text
    assert "{" not in text  # no Python dict
    assert re.search(r"^ +stale_input +2  a device stopped delivering fresh samples", text, re.M), text
    assert re.search(r"^ +engage_refused +1  an engage was refused", text, re.M), text
    assert "  faults: 3" in text
    limits = [line for line in text.splitlines() if "limits applied" in line]
    assert len(limits) == 1 and "clamped 7" in limits[0] and "rate_limited 3" in limits[0]
    assert not any(re.match(r"^ +(clamped|rate_limited) +\d", line) for line in text.splitlines())
    assert "faults: none" in _format_session(_summary(faults={"rate_limited": 4}))
    assert "p50 1.2 ms, p99 2.5 ms" in _format_session(_summary())


def test_run_help_lists_the_keys(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    c = ControlsConfig()
    for sources, words in ((c.engage, "engage"), (c.estop, "e-stop"), (c.release, "release"),
                           (c.episode_success, "mark success"), (c.episode_failure, "mark failure"),
                           (c.episode_discard, "discard"), (c.episode_start, "start one"),
                           (c.intervene, "take over from the policy / hand back"), (("key:q",), "quit")):
        key = sources[0].partition(":")[2]
        assert re.search(rf"^  {re.escape(key)} +.*{re.escape(words)}", out, re.M), (key, words, out)
    for option in ("--port-base", "--headless", "--viewer", "--sim-args"):
        assert option in out


# -- doctor ----------------------------------------------------------------------------------------
def test_doctor_checks_every_default_port_and_names_a_holder():
    base = free_port_base(8)
    if not ports_free(base + 10, 1) or not ports_free(base + 20, 1):  # above the block the helper found
        pytest.skip("the network input or policy port above the free block is taken")
    (ok,) = _ports(base)
    assert ok["status"] == "ok", ok
    for port in (*range(base, base + 6), base + 10, base + 20):
        assert f" {port}" in ok["detail"]
    with socket.socket() as held:
        held.bind(("127.0.0.1", base + 20))
        held.listen()
        (busy,) = _ports(base)
    assert busy["status"] == "warn" and f"policy server tcp://127.0.0.1:{base + 20}" in busy["detail"]
    assert f"pid {os.getpid()}" in busy["detail"] and "--port-base" in busy["fix"]


def test_doctor_lists_the_optional_packages_with_versions_and_uses():
    items = {i["check"]: i for i in _feature_packages()}
    for name, dist in (("av", "av"), ("h5py", "h5py"), ("pyarrow", "pyarrow"), ("opencv", "opencv-python-headless"),
                       ("rerun", "rerun-sdk")):
        item = items[f"package {name}"]
        if item["status"] == "ok":
            assert re.match(rf"{re.escape(dist)} \d[\w.]*: \S", item["detail"]), item
        else:
            assert "needed for" in item["detail"] and item["fix"] == f"pip install {dist}"


# -- one real session on other ports --------------------------------------------------------------
def test_run_on_another_port_base_binds_there():
    base = free_port_base(8)
    run = subprocess.Popen([sys.executable, "-m", "teleop.cli", "run", "sim_synthetic", "--port-base", str(base),
                            "--seconds", "1.5", "--no-keys", "--quiet", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wanted = {"robot state", "robot command", "robot rpc", "session tap"}  # sim_synthetic: no cameras
        held: dict = {}
        deadline = time.monotonic() + 60
        while run.poll() is None and time.monotonic() < deadline and set(held) != wanted:
            held.update((name, holder) for name, _, holder in busy_ports(default_endpoints(base)) if name in wanted)
            time.sleep(0.02)
        assert set(held) == wanted, held
        assert all("teleop.cli" in (h or "") for h in held.values()), held  # the session and its robot server
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err
    summary = json.loads(out)
    assert summary["commands"] > 0
