"""A plugin driver the way a new user writes one from docs/adding-a-driver.md: the example package
(docs/examples/teleop-driver-example) pip-installed, found by `teleop drivers list`, echoed, passing
its own tests, and engaging a session; the hand contract (check_driver fails a hand driver without
keypoints and says what to fill, the session's refusal names the cause); driver options (a missing
required one, `teleop drivers list -v`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from support.ports import free_port_base

from drivers.base import ThreadedDriver
from drivers.config import option_help
from drivers.hands import GloveHand
from drivers.network.config_network import NetworkConfig
from drivers.opengloves import OpenGlovesConfig, channels_to_angles
from drivers.registry import create_driver
from drivers.samples import HandSample, SampleSpec
from drivers.testing import FakeSerialDevice, check_driver
from retarget.human_hand import HumanHand
from retarget.motions import pose
from teleop.cli import main
from teleop.errors import ConfigError, DeviceError
from teleop.session.config import parse_session
from teleop.session.session import ENGAGED, Session

REPO = Path(__file__).parents[2]
EXAMPLE = REPO / "docs" / "examples" / "teleop-driver-example"
TELEOP = Path(sys.executable).parent / "teleop"  # the console script, as a user runs it


def _open_hand_line(k: int) -> bytes:
    return b"0.05,0.05,0.05,0.05,0.05\n"


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> tuple[Path, Path]:
    """(a copy of the example's source, the folder pip installed it into). Not into the venv: the
    other tests must not see an extra driver. The copy keeps build files out of the repository."""
    root = tmp_path_factory.mktemp("plugin")
    src, site = root / "teleop-driver-example", root / "site"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr + (
        "\n(the venv lacks wheel: `pip install -e '.[test]'` brings it)" if "bdist_wheel" in res.stderr else "")
    assert (site / "teleop_driver_example" / "my_glove.py").is_file()
    return src, site


def test_the_doc_shows_the_example_files_as_they_are():
    doc = (REPO / "docs" / "adding-a-driver.md").read_text()
    blocks = re.findall(r"<!-- example: (\S+) -->\n```\w*\n(.*?)```", doc, re.S)
    assert {name for name, _ in blocks} == {"src/teleop_driver_example/my_glove.py", "pyproject.toml",
                                            "tests/test_my_glove.py"}
    for name, code in blocks:
        assert code == (EXAMPLE / name).read_text(), f"docs/adding-a-driver.md's copy of {name} differs from the file"


def test_the_installed_example_is_listed_echoed_and_passes_its_own_tests(example):
    src, site = example
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    with FakeSerialDevice(_open_hand_line, rate_hz=200) as glove:
        run = {
            "list": [str(TELEOP), "drivers", "list", "-v"],
            "echo": [str(TELEOP), "drivers", "echo", "my_glove", "--port", glove.path, "--side", "left",
                     "--seconds", "0.5", "--json"],
            "tests": [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        }
        procs = {k: subprocess.Popen(cmd, cwd=src, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for k, cmd in run.items()}  # together: each is mostly interpreter start-up
        out = {k: p.communicate(timeout=120) + (p.returncode,) for k, p in procs.items()}
    listed, err, rc = out["list"]
    assert rc == 0, err
    assert "my_glove       My glove over USB serial: five finger curls" in listed
    assert "teleop_driver_example.my_glove:MyGloveDriver" in listed
    assert re.search(r"--port +str +required  serial device, e\.g\. /dev/ttyUSB0", listed), listed
    assert re.search(r"--side +left\|right +default right", listed), listed
    echoed, err, rc = out["echo"]
    assert rc == 0, err
    lines = [json.loads(line) for line in echoed.splitlines()]
    assert len(lines) >= 5 and all(s["kind"] == "hand" and s["side"] == "left" for s in lines), echoed[:500]
    assert np.asarray(lines[-1]["keypoints"]).shape == (21, 3)
    assert lines[-1]["channels"] == {f"{f}_curl": 0.05 for f in ("thumb", "index", "middle", "ring", "pinky")}
    tests, err, rc = out["tests"]
    assert rc == 0 and "2 passed" in tests, tests + err


def test_a_session_engages_with_the_example_and_names_a_hand_without_keypoints(example, tmp_path, monkeypatch):
    """Left hand: the installed example on a fake glove. Right hand: a replayed glove whose first
    1.5 s carry only channels (what the old docs' example drove), then keypoints. Engage is pressed
    until it takes: the refusals name the right hand's real cause; once it has keypoints, the
    session engages."""
    monkeypatch.syspath_prepend(str(example[1]))  # entry points are found on sys.path, as after pip install
    kp = HumanHand("right").keypoints(pose("open")).round(6).tolist()
    replay = tmp_path / "right.jsonl"
    with replay.open("w") as f:
        for k in range(1600):  # 8 s at 200 Hz
            obj = {"kind": "hand", "t_ns": k * 5_000_000, "seq": k, "side": "right", "channels": [0.1] * 5}
            f.write(json.dumps({**obj, "keypoints": kp} if k >= 300 else obj) + "\n")
    with FakeSerialDevice(_open_hand_line, rate_hz=200) as glove:
        raw = {
            "session": {"rate_hz": 200.0},
            "robot": {"kind": "sim", "port_base": free_port_base(4), "sim_args": ["--fast", "--cameras", "none"]},
            "device": {"left_glove": {"driver": "my_glove", "options": {"port": glove.path, "side": "left"}},
                       "right_glove": {"driver": "replay", "options": {"path": str(replay), "side": "right"}}},
            "input": {"left": {"hand": "left_glove"}, "right": {"hand": "right_glove"}},
            "controls": {"engage": ["key:space"], "estop": ["key:e"], "release": ["key:r"]},
            "haptics": {"enabled": False},
        }
        session = Session(parse_session(raw), status="quiet", keys=False)
        # the operator presses engage every 0.2 s until it takes
        session.on_tick = lambda s, tick: s.request("engage") if tick % 40 == 20 and s.state != ENGAGED else None
        summary = session.run(seconds=3.0)
    refusals = [line for line in summary.fault_log if "engage_refused" in line]
    assert any("right hand: samples arrive but carry no keypoints (driver replay fills only channels): see "
               "docs/adding-a-driver.md" in line for line in refusals), summary.fault_log
    assert not any("left hand: samples arrive but" in line for line in refusals), refusals  # the example has keypoints
    assert summary.final_state == ENGAGED, summary.fault_log


class _HandDriver(ThreadedDriver):
    """A hand driver whose samples come from ``make(k)``: the contract's bad cases."""

    name = "bad_glove"
    make = staticmethod(lambda k: None)

    @property
    def sample_spec(self) -> SampleSpec:
        return SampleSpec(kinds=("hand",), side="right")

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _read(self) -> HandSample:
        time.sleep(0.002)
        seq = self.next_seq()
        return HandSample(side="right", capture_ns=time.monotonic_ns(), seq=seq, source=self.name, **self.make(seq))


def test_check_driver_fails_a_hand_driver_that_breaks_the_contract_and_says_what_to_fill():
    kp = GloveHand("right").keypoints(np.zeros(20))
    cases = [
        ({"channels": np.array([0.1, 0.2])},
         r"bad_glove: hand samples carry no keypoints \(driver bad_glove fills only channels\): a hand driver must "
         r"fill HandSample.keypoints, \(21, 3\) metres in the wrist frame.*GloveHand\(side\).from_curls\(curls\)"),
        ({"angles": np.zeros(20)}, r"fills only angles\).*GloveHand\(side\).keypoints\(angles\)"),
        ({"keypoints": kp * 1000}, r"reach 185 from the wrist, not a hand's 0.03..0.35 m: keypoints are in metres"),
        ({"keypoints": kp + [0.3, 0.0, 1.0]}, r"wrist \(keypoint 0\) is 1.04 from the origin"),
        ({"keypoints": kp[:20]}, r"keypoints of shape \(20, 3\), not \(21, 3\)"),
        ({"keypoints": np.full((21, 3), np.nan)}, r"not finite"),
    ]
    for fields, message in cases:
        cls = type("Bad", (_HandDriver,), {"make": staticmethod(lambda k, f=fields: f)})
        with pytest.raises(AssertionError, match=message):
            check_driver(cls, kinds=("hand",))
    good = type("Good", (_HandDriver,), {"make": staticmethod(lambda k: {"keypoints": kp, "angles": np.zeros(20)})})
    assert len(check_driver(good, kinds=("hand",))) == 10


def test_glove_hand_turns_curls_into_keypoints_like_the_opengloves_driver():
    right, left = GloveHand("right", 0.2), GloveHand("left", 0.2)
    curls = np.array([0.2, 0.9, 0.5, 0.1, 1.0])
    kp, angles = right.from_curls(curls)
    np.testing.assert_array_equal(angles, channels_to_angles(curls, np.full((5, 4), np.nan), np.full(5, np.nan)))
    np.testing.assert_array_equal(kp, HumanHand("right", 0.2).keypoints(angles))
    np.testing.assert_allclose(left.from_curls(curls)[0], kp * [1, -1, 1], atol=1e-12)  # a mirrored hand
    open_kp, _ = right.from_curls(np.zeros(5))
    fist_kp, _ = right.from_curls(np.ones(5))
    assert fist_kp[12, 0] < open_kp[12, 0] - 0.08 and fist_kp[12, 2] > 0.02  # the middle tip curls into the palm
    np.testing.assert_array_equal(right.from_curls(curls + 5)[1], right.from_curls(np.ones(5))[1])  # clipped
    for bad in ([0.1] * 4, [0.1, 0.1, np.nan, 0.1, 0.1]):
        with pytest.raises(DeviceError, match="expected 5 finite numbers each, thumb to pinky"):
            right.from_curls(bad)


def test_a_missing_required_option_says_which_and_how_to_pass_it(capsys):
    with pytest.raises(ConfigError) as err:
        create_driver("opengloves", {"side": "left"})
    assert str(err.value).startswith("opengloves: missing required option port (serial device, e.g. /dev/ttyUSB0")
    assert "`teleop drivers echo opengloves --port VALUE`" in str(err.value)
    assert '`options = { port = "..." }` in the device\'s [device.NAME] table' in str(err.value)
    assert main(["drivers", "echo", "opengloves"]) == 2
    shown = capsys.readouterr().err
    assert "teleop: error: opengloves: missing required option port" in shown
    assert "TypeError" not in shown and "__init__" not in shown


def test_drivers_list_shows_allowed_values_and_defaults(capsys):
    rows = {r[0]: r[1:] for r in option_help(OpenGlovesConfig)}
    assert rows["side"] == ("left|right", "right", "")
    assert rows["port"] == ("str", "required", OpenGlovesConfig.HELP["port"])
    assert rows["encoding"][:2] == ("alpha|legacy", "alpha")
    assert rows["calibration"][:2] == ("str or unset", "unset")
    assert rows["invert-ffb"][:2] == ("true|false", "false")
    rows = {r[0]: r[1:] for r in option_help(NetworkConfig)}
    assert rows["side"][:2] == ("left|right or unset", "unset")
    assert rows["wrist-rotation-rpy-deg"][:2] == ("float,... (comma-separated)", "0.0,0.0,0.0")
    assert rows["keys"][:2] == ("path or unset", "unset")
    assert main(["drivers", "list", "-v"]) == 0
    shown = capsys.readouterr().out
    assert "Literal" not in shown and "Optional" not in shown and "typing" not in shown
    assert re.search(r"--keypoint-layout +mediapipe21\|openxr26\|webxr25\|avp25 +default mediapipe21", shown)


def test_fake_serial_device_streams_lines_takes_writes_and_unplugs():
    import serial

    with FakeSerialDevice(lambda k: f"line {k}\n".encode(), rate_hz=500) as device:
        port = serial.Serial(device.path, 115200, timeout=1.0)
        try:
            first = int(port.readline().split()[1])
            assert port.readline() == f"line {first + 1}\n".encode()  # in order, none lost while read
            port.write(b"feedback\n")
            deadline = time.monotonic() + 2
            while b"feedback\n" not in device.received() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert device.received() == b"feedback\n"
            device.unplug()
            with pytest.raises(serial.SerialException):
                for _ in range(1000):  # what was buffered comes out first, then the hang-up
                    port.read(4096)
        finally:
            port.close()
