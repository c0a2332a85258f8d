"""`teleop lerobot-check` where LeRobot is not installed (as in `make test`'s venv): a clear error
that says how to get it. The check itself runs in `make lerobot-check` (LeRobot is several GB)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

TELEOP = Path(sys.executable).parent / "teleop"


@pytest.mark.skipif(importlib.util.find_spec("lerobot") is not None, reason="LeRobot is installed here")
def test_without_lerobot_it_says_how_to_install_it(tmp_path):
    res = subprocess.run([str(TELEOP), "lerobot-check", "--export", str(tmp_path)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2, res.stderr
    assert "LeRobot is not installed here" in res.stderr and "make lerobot-check" in res.stderr
    assert "dexteleop[lerobot]" in res.stderr and "3.12" in res.stderr
