"""The command line: help, doctor, and benchmark smoke runs (speed is not asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys

from teleop.cli import main


def _teleop(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "teleop.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_commands_and_endpoints(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for word in ("sim", "robot", "keys", "doctor", "bench", "demo", "tcp://127.0.0.1:7610", "tcp://127.0.0.1:7613"):
        assert word in out


def test_doctor_reports_json():
    res = _teleop("doctor", "--json")
    report = json.loads(res.stdout)
    names = {c["check"] for c in report["checks"]}
    assert {"python", "package mujoco", "render backend", "ports"} <= names
    assert res.returncode == (0 if report["ok"] else 1)
    assert all(c["status"] in ("ok", "info", "warn", "fail") for c in report["checks"])


def test_keys_generate_refuses_to_overwrite(tmp_path):
    assert _teleop("keys", "generate", "--dir", str(tmp_path / "k")).returncode == 0
    assert (tmp_path / "k" / "authorized" / "client.key").is_file()
    res = _teleop("keys", "generate", "--dir", str(tmp_path / "k"))
    assert res.returncode == 2 and "--force" in res.stderr


def test_bench_bus_smoke():
    from support.ports import free_port_base

    res = _teleop("bench", "bus", "--json", "--count", "300", "--port-base", str(free_port_base(2)))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["messages"]["ours"] == out["messages"]["raw"] == 300
    assert set(out["latency_us"]) >= {"p50", "p99"} and set(out["raw_zmq_us"]) >= {"p50", "p99"}


def test_bench_sim_smoke():
    from support.ports import free_port_base

    res = _teleop("bench", "sim", "--json", "--seconds", "0.5", "--port-base", str(free_port_base(30)))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["realtime_factor"] > 0 and out["reference"]["mj_step_only"] > 0
    assert "realtime_factor_camera" in out
