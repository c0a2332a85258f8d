"""`teleop calibrate opengloves`: the operator is prompted, opens and closes the (fake) glove,
and the channel ranges land in a file the driver loads next time."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from fake_lucidglove import FakeLucidGlove


def test_calibrate_command_records_ranges(tmp_path):
    cal = tmp_path / "right_glove.json"
    with FakeLucidGlove(tmp_path / "glove") as fake:
        fake.set_state(curl=(0.1,) * 5)
        proc = subprocess.Popen(
            [sys.executable, "-m", "teleop.cli", "calibrate", "opengloves", "--port", fake.path, "--side", "right",
             "--analog-max", "4095", "--calibration", str(cal), "--out", str(tmp_path / "copy.json")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        lines: list[str] = []

        def operator():  # answers the prompts like a person would
            for line in proc.stdout:
                lines.append(line)
                if "fist" in line.lower():
                    time.sleep(0.2)
                    fake.set_state(curl=(0.85,) * 5)

        t = threading.Thread(target=operator, daemon=True)
        t.start()
        assert proc.wait(60) == 0, "".join(lines)
        t.join(5)
    text = "".join(lines)
    assert "Open your hand" in text and "fist" in text and "Saved to" in text
    stored = json.loads(cal.read_text())
    assert stored == json.loads((tmp_path / "copy.json").read_text())
    assert json.dumps(stored)  # a plain JSON profile
