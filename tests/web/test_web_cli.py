"""`teleop web`: the URL with the token, the QR code, the fingerprint; numbers checked."""

from __future__ import annotations

import re

from teleop.cli import main


def test_teleop_web_prints_how_to_open_it(tmp_path, capsys):
    assert main(["web", "--host", "127.0.0.1", "--port", "0", "--config-dir", str(tmp_path), "--seconds", "1.2"]) == 0
    out = capsys.readouterr().out
    token = (tmp_path / "token").read_text().strip()
    assert re.search(rf"https://127\.0\.0\.1:\d+/xr\.html\?token={re.escape(token)}", out)
    assert "█" in out  # the QR code
    assert re.search(r"certificate SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2} \(new", out)
    assert "frames/s" in out


def test_teleop_web_checks_its_numbers(tmp_path, capsys):
    assert main(["web", "--port", "70000", "--config-dir", str(tmp_path)]) == 2
    assert "port" in capsys.readouterr().err
    assert main(["web", "--cert", str(tmp_path / "c.pem"), "--config-dir", str(tmp_path)]) == 2
    assert "together" in capsys.readouterr().err


def test_teleop_run_with_web_prints_the_console_and_the_xr_page(tmp_path, port_base):
    """Through the real process boundary: `teleop run` of a session with [web] and a webxr device
    (no headset: it stays idle) prints both pages' URLs with the token, then runs and ends."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    config = tmp_path / "xr.toml"
    config.write_text(f"""
[session]
rate_hz = 100
[robot]
port_base = {port_base}
sim_args = ["--cameras", "none", "--fast"]
[device.xr]
driver = "webxr"
[input.right]
hand = "xr"
[web]
enabled = true
host = "127.0.0.1"
port = 0
config_dir = "web"
""")
    out = subprocess.run([sys.executable, "-m", "teleop.cli", "run", str(config), "--seconds", "1", "--no-keys"],
                         cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    token = (tmp_path / "web" / "token").read_text().strip()  # config_dir is relative to the session file
    for page in ("console", "xr"):
        assert re.search(rf"https://127\.0\.0\.1:\d+/{page}\.html\?token={re.escape(token)}", out.stderr), page
    assert "final state idle" in out.stdout
