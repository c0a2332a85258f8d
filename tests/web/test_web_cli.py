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
