"""OpenGlovesDriver through a real pty with the fake firmware (fake_lucidglove.py), plus the pure
channel -> angle mapping and the calibration module."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from fake_lucidglove import FakeGloveState, FakeLucidGlove
from support.conformance import check_driver

from drivers.config import DriverConfig
from drivers.opengloves import CHANNEL_NAMES, OpenGlovesConfig, OpenGlovesDriver, channels_to_angles
from drivers.opengloves.calibration import (
    ChannelCalibration,
    calibration_from_recording,
    load_calibration,
    save_calibration,
)
from drivers.opengloves.protocol_opengloves import decode_alpha, normalise
from drivers.registry import create_driver, driver_class
from drivers.samples import ButtonEvent, HandSample, HapticFeedback
from retarget.human_hand import ANGLE_LIMITS_RAD, ANGLE_NAMES, TIP_INDEX
from teleop.errors import ConfigError, DeviceError, DeviceNotConnectedError

pytestmark = pytest.mark.timeout(30)

TIPS = list(TIP_INDEX.values())
NO_JOINTS = np.full((5, 4), np.nan)


@pytest.fixture
def fake(tmp_path):
    with FakeLucidGlove(tmp_path / "glove") as f:
        yield f


@pytest.fixture
def make_driver(fake):
    made: list[OpenGlovesDriver] = []

    def make(**options) -> OpenGlovesDriver:
        options.setdefault("port", fake.path)
        options.setdefault("reconnect_interval_s", 0.05)
        drv = OpenGlovesDriver(OpenGlovesConfig(**options))
        made.append(drv)
        return drv

    yield make
    for drv in made:
        drv.disconnect()


def next_hand(drv, pred=lambda s: True, timeout_s=3.0, events=None) -> HandSample:
    """The next HandSample satisfying ``pred``; ButtonEvents met on the way go to ``events``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        s = drv.get_sample(timeout_s)
        if isinstance(s, ButtonEvent):
            if events is not None:
                events.append(s)
        elif pred(s):
            return s
    raise AssertionError(f"no matching sample within {timeout_s} s; health: {drv.health()}")


def curls(s: HandSample) -> np.ndarray:
    return s.channels[:5]


def tip_to_palm_m(s: HandSample) -> np.ndarray:
    palm = s.keypoints[[0, 5, 9, 13, 17]].mean(axis=0)
    return np.linalg.norm(s.keypoints[TIPS] - palm, axis=1)


# -- registry, config ------------------------------------------------------------------------------
def test_registry_and_from_options_coerce():
    cls = driver_class("opengloves")
    assert cls is OpenGlovesDriver and cls.name == "opengloves"
    cfg = cls.config_class.from_options({"port": "/dev/ttyUSB7", "baud": "115200", "encoding": "legacy",
                                         "invert-ffb": "true", "calibration": "none", "analog_max": "1023"})
    assert isinstance(cfg, OpenGlovesConfig) and isinstance(cfg, DriverConfig)
    assert cfg.baud == 115200 and cfg.encoding == "legacy" and cfg.invert_ffb is True
    assert cfg.calibration is None and cfg.analog_max == 1023
    drv = create_driver("opengloves", {"port": "/dev/ttyUSB7"})  # no I/O
    assert not drv.is_connected and drv.sample_spec.channel_names == CHANNEL_NAMES


def test_bad_encoding_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"allowed values.*'alpha', 'legacy'"):
        OpenGlovesConfig.from_options({"port": "/dev/x", "encoding": "beta"})
    with pytest.raises(ConfigError, match=r"'alpha', 'legacy'"):
        OpenGlovesConfig(port="/dev/x", encoding="beta")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "port"),
        ({"port": ""}, "port"),
        ({"port": "/dev/x", "baud": "0"}, "baud"),
        ({"port": "/dev/x", "baud": "fast"}, "baud"),
        ({"port": "/dev/x", "analog_max": "0"}, "analog_max"),
        ({"port": "/dev/x", "ffb_max": "-1"}, "ffb_max"),
        ({"port": "/dev/x", "hand_length_m": "2"}, "hand_length_m"),
        ({"port": "/dev/x", "timeout_s": "1"}, "timeout_s"),
        ({"port": "/dev/x", "max_line_bytes": "4"}, "max_line_bytes"),
        ({"port": "/dev/x", "side": "middle"}, "side"),
    ],
)
def test_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        OpenGlovesConfig.from_options(options)


def test_missing_port_is_a_clear_device_error(tmp_path):
    drv = OpenGlovesDriver(OpenGlovesConfig(port=str(tmp_path / "ttyNOPE")))
    with pytest.raises(DeviceError) as exc:
        drv.connect()
    msg = str(exc.value)
    assert "does not exist" in msg and "Available ports" in msg and "dialout" in msg
    assert not drv.is_connected
    with pytest.raises(DeviceNotConnectedError):
        drv.send_feedback(HapticFeedback())


# -- the pure mapping --------------------------------------------------------------------------------
def test_channels_to_angles_mapping():
    zero = channels_to_angles(np.zeros(5), NO_JOINTS, np.full(5, np.nan))
    assert not zero.any()
    fist = channels_to_angles(np.ones(5), NO_JOINTS, np.zeros(5))
    lo, hi = ANGLE_LIMITS_RAD.T
    assert np.all(fist >= lo) and np.all(fist <= hi)
    idx = {n: i for i, n in enumerate(ANGLE_NAMES)}
    assert fist[idx["index_pip_flex"]] > fist[idx["index_mcp_flex"]] > fist[idx["index_dip_flex"]] > 1.0
    assert fist[idx["thumb_cmc_abd"]] > 0
    # a per-joint key overrides its joint only
    joints = NO_JOINTS.copy()
    joints[1, 2] = 0.0  # index PIP straight
    q = channels_to_angles(np.ones(5), joints, np.zeros(5))
    assert q[idx["index_pip_flex"]] == 0 and q[idx["index_mcp_flex"]] == fist[idx["index_mcp_flex"]]
    joints[0, 3] = 1.0  # thumb joint 3 is unused
    assert np.array_equal(channels_to_angles(np.ones(5), joints, np.zeros(5)), q)
    # splay -> abduction, + spreads
    spread = channels_to_angles(np.zeros(5), NO_JOINTS, np.ones(5))
    assert spread[idx["index_mcp_abd"]] > 0 and spread[idx["pinky_mcp_abd"]] > 0 and spread[idx["thumb_cmc_abd"]] > 0


# -- calibration module ------------------------------------------------------------------------------
def reading(curl, splay=None, joints=None):
    line = "".join(f"{k}{round(v * 4095)}" for k, v in zip("ABCDE", curl, strict=True))
    if splay is not None:
        line += "".join(f"({k}B){round(v * 4095)}" for k, v in zip("ABCDE", splay, strict=True))
    for (f, j), v in (joints or {}).items():
        line += f"({'ABCDE'[f]}A{'ABCD'[j]}){round(v * 4095)}"
    return normalise(decode_alpha(line), 4095)


def test_calibration_from_recording_apply_and_json(tmp_path):
    open_rows = [reading([0.2, 0.1, 0.1, 0.1, 0.1], [0.3] * 5, {(1, 2): 0.9}) for _ in range(5)]
    fist_rows = [reading([0.2, 0.9, 0.8, 0.7, 0.6], [0.7] * 5, {(1, 2): 0.2}) for _ in range(5)]
    cal, still = calibration_from_recording(open_rows, fist_rows, side="left")
    assert still == ["thumb_curl"]  # did not move: stays identity
    assert cal.ranges["index_curl"] == pytest.approx((0.1, 0.9), abs=1e-3)
    assert cal.ranges["index_j2"] == pytest.approx((0.9, 0.2), abs=1e-3)  # inverted sensor
    curl, joints, splay = cal.apply(reading([0.2, 0.5, 0.45, 1.0, 0.0], [0.5] * 5, {(1, 2): 0.9}))
    np.testing.assert_allclose(curl, [0.2, 0.5, 0.5, 1.0, 0.0], atol=2e-3)
    assert joints[1, 2] == pytest.approx(0.0, abs=2e-3) and np.isnan(joints[2, 2])
    np.testing.assert_allclose(splay, 0.0, atol=0.03)
    path = tmp_path / "cal" / "glove.json"
    save_calibration(path, cal)
    assert load_calibration(path) == cal
    assert json.loads(path.read_text())["side"] == "left"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"ranges": {"index_curl": [0.5, 0.51]}}, "apart"),
        ({"ranges": {"elbow": [0, 1]}}, "unknown channel"),
        ({"ranges": {"index_curl": "x"}}, "two numbers"),
        ({"ranges": []}, "ranges"),
        ({"version": 9}, "version"),
        ({"extra": 1}, "unknown key"),
        ([1, 2], "JSON object"),
    ],
)
def test_calibration_errors(data, match):
    with pytest.raises(ConfigError, match=match):
        ChannelCalibration.from_dict(data)


def test_calibration_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_calibration(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="unreadable"):
        load_calibration(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="both poses"):
        calibration_from_recording([], [reading([0] * 5)])


# -- through the pty --------------------------------------------------------------------------------
def test_conformance(fake):
    check_driver(lambda: OpenGlovesDriver(OpenGlovesConfig(port=fake.path, reconnect_interval_s=0.05)),
                 kinds=("hand", "buttons"))


def test_lock_step_every_line_is_answered_promptly(fake, make_driver):
    drv = make_driver()
    drv.connect()
    next_hand(drv)
    fake.reset_stats()
    n0, t0 = drv.health().samples, time.monotonic()
    time.sleep(0.5)
    dt = time.monotonic() - t0
    sent, replies, timeouts = fake.lines_sent, fake.replies, fake.reply_timeouts
    rate = (drv.health().samples - n0) / dt
    assert timeouts == 0, "a line went unanswered for the firmware's 1 s timeout"
    assert abs(sent - replies) <= 1 and fake.short_lines >= replies - 1  # bare "\n" replies
    assert rate > 100, f"{rate:.0f} samples/s: replies are not prompt (a silent host gives ~1/s)"
    assert drv.health().rate_hz > 100


def test_open_vs_fist_keypoints_channels_and_gestures(fake, make_driver):
    drv = make_driver(side="left", hand_length_m=0.19)
    spec = drv.sample_spec
    assert spec.kinds == ("hand", "buttons") and spec.feedback and spec.side == "left"
    assert len(spec.channel_names) == 13 and spec.channel_names[-3:] == ("joystick_x", "joystick_y", "trigger")
    fake.set_state(curl=(0, 0, 0, 0, 0), splay=(0.5,) * 5)
    drv.connect()
    open_s = next_hand(drv, lambda s: curls(s).max() < 0.01)
    assert open_s.side == "left" and open_s.keypoints.shape == (21, 3) and open_s.angles.shape == (20,)
    assert open_s.channels.shape == (13,) and not open_s.buttons
    np.testing.assert_allclose(open_s.channels[5:12], 0.0, atol=1e-3)  # neutral splay, centred joystick
    assert np.linalg.norm(open_s.keypoints[12]) == pytest.approx(0.19, abs=1e-3)  # flat hand length
    fake.set_state(curl=(1, 1, 1, 1, 1))
    fist = next_hand(drv, lambda s: curls(s).min() > 0.99)
    assert np.all(tip_to_palm_m(fist) < tip_to_palm_m(open_s) - 0.03), "fingertips must move toward the palm"
    assert np.all(fist.keypoints[TIPS[1:], 2] > 0.01)  # fingers curl to the palmar side (+z)
    assert fist.channels[12] == 1.0  # P = 4096 clipped
    assert fist.buttons == {"trigger", "grab", "pinch"}  # firmware gestures
    fake.set_state(splay=(1,) * 5, curl=(0,) * 5)
    spread = next_hand(drv, lambda s: s.channels[6] > 0.99)
    assert spread.angles[ANGLE_NAMES.index("index_mcp_abd")] > 0.2


def test_per_joint_keys_override_curl(fake, make_driver):
    drv = make_driver()
    fake.set_state(curl=(1,) * 5, joints={(1, 1): 0.0, (1, 2): 0.0, (1, 3): 0.0})
    drv.connect()
    s = next_hand(drv, lambda s: curls(s).min() > 0.99)
    index = [ANGLE_NAMES.index(f"index_{j}_flex") for j in ("mcp", "pip", "dip")]
    middle = [ANGLE_NAMES.index(f"middle_{j}_flex") for j in ("mcp", "pip", "dip")]
    assert np.all(s.angles[index] == 0) and np.all(s.angles[middle] > 1.0)


def test_buttons_and_button_events(fake, make_driver):
    drv = make_driver()
    drv.connect()
    next_hand(drv)
    events: list[ButtonEvent] = []
    fake.set_state(buttons={"a", "menu", "joystick_click"}, joystick=(1.0, -1.0))
    s = next_hand(drv, lambda s: s.buttons, events=events)
    assert s.buttons == {"a", "menu", "joystick_click"}
    np.testing.assert_allclose(s.channels[10:12], [1.0, -1.0], atol=1e-3)
    fake.set_state(buttons=set())
    next_hand(drv, lambda s: not s.buttons, events=events)
    assert [(e.button, e.pressed) for e in events] == [
        ("a", True), ("menu", True), ("joystick_click", True),
        ("a", False), ("menu", False), ("joystick_click", False),
    ]  # fmt: skip
    assert all(e.side == "right" and e.source.startswith("opengloves:") for e in events)
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs)


def test_feedback_reaches_the_glove(fake, make_driver):
    drv = make_driver()
    drv.connect()
    next_hand(drv)
    drv.send_feedback(HapticFeedback(force=np.array([0, 0.25, 0.5, 0.75, 1.0])))
    assert fake.wait_until(lambda: len(fake.ffb) >= 1)
    assert fake.ffb[-1] == (0, 250, 500, 750, 1000)
    buzz = HapticFeedback(force=np.full(5, 0.5), vibration_hz=160, vibration_amplitude=0.8, vibration_s=0.25)
    drv.send_feedback(buzz)
    assert fake.wait_until(lambda: len(fake.haptics) >= 1)
    assert fake.haptics[-1] == (160.0, 0.25, 0.8)
    assert fake.ffb[-1] == (500,) * 5  # same line: the servos are not released by the vibration
    assert fake.host_lines[-1] == b"A500B500C500D500E500F160.00G0.25H0.80"
    time.sleep(0.05)
    assert len(fake.ffb) == 2 and drv.feedback_sent == 2  # sent once each, then bare "\n" replies


def test_feedback_senseshift_scale_inverted(fake, make_driver):
    drv = make_driver(ffb_max=4095, invert_ffb=True)
    drv.connect()
    next_hand(drv)
    drv.send_feedback(HapticFeedback(force=np.array([0, 1, 0.5, 0, 1])))
    assert fake.wait_until(lambda: len(fake.ffb) >= 1)
    assert fake.ffb[-1] == (4095, 0, 2047, 4095, 0)


def test_garbage_overlong_and_unknown_keys_are_counted_without_stopping(fake, make_driver):
    drv = make_driver()
    drv.connect()
    next_hand(drv)
    fake.reset_stats()
    seen: list = []
    drv.add_tap(seen.append)
    fake.inject(b"\x00\xff\xfe")  # noise before a line: the line is not printable
    fake.inject(b"#$%^&*!\n")  # no known key
    fake.inject(b"\n")  # empty line
    fake.inject(b"A" * 5000 + b"\n")  # over-long
    fake.inject(b"A100B100C100D100E100F2047G2047P0Q7(XY)3\n")  # unknown keys: the whole line is rejected
    assert fake.wait_until(lambda: drv.health().errors.get("bad_line:unknown_key", 0) >= 1)
    seq = drv.health().samples
    next_hand(drv, lambda s: s.seq > seq + 5)  # the stream goes on
    errors = drv.health().errors
    assert errors.get("bad_line", 0) == 3 and errors.get("line_too_long", 0) == 1
    assert errors["bad_line:not_printable"] == errors["bad_line:empty"] == errors["bad_line:unknown_key"] == 1
    assert not [s for s in seen if isinstance(s, HandSample) and s.channels[0] > 0]  # the A100 line made none
    assert drv.health().connected
    assert fake.reply_timeouts == 0  # bad lines are answered too
    assert "device_lost" not in errors


def test_unplug_then_replug_reconnects_and_resumes(fake, make_driver):
    drv = make_driver()
    drv.connect()
    s0 = next_hand(drv)
    fake.unplug()
    assert fake.wait_until(lambda: drv.health().errors.get("device_lost", 0) >= 1)
    time.sleep(0.15)  # a few failed reopen attempts against the missing path
    assert "does not exist" in (drv.health().last_error or "")
    assert drv.is_connected  # still trying
    fake.replug()
    assert fake.wait_until(lambda: drv.health().errors.get("reconnect", 0) >= 1)
    s1 = next_hand(drv, lambda s: s.seq > s0.seq)
    assert s1.capture_ns > s0.capture_ns
    fake.reset_stats()
    time.sleep(0.2)
    assert fake.reply_timeouts == 0 and fake.replies > 20  # lock-step again on the new pty


def test_legacy_encoding(tmp_path):
    with FakeLucidGlove(tmp_path / "legacy", encoding="legacy", analog_max=1023) as fake:
        drv = OpenGlovesDriver(OpenGlovesConfig(port=fake.path, encoding="legacy", analog_max=1023))
        try:
            fake.set_state(curl=(0, 1, 0.5, 0, 0), buttons={"a"})
            drv.connect()
            s = next_hand(drv, lambda s: curls(s)[1] > 0.99)
            np.testing.assert_allclose(curls(s), [0, 1, 0.5, 0, 0], atol=1e-3)
            assert s.buttons == {"a", "trigger"} and s.channels[12] == 1.0
            drv.send_feedback(HapticFeedback(force=np.array([1, 0, 0, 0, 0.5]), vibration_s=1, vibration_amplitude=1))
            assert fake.wait_until(lambda: len(fake.ffb) >= 1)
            assert fake.ffb[-1] == (1000, 0, 0, 0, 500)
            assert fake.host_lines[-1] == b"1000&0&0&0&500"
            assert drv.health().errors.get("vibration_unsupported") == 1
        finally:
            drv.disconnect()


def test_analog_max_1023(tmp_path):
    with FakeLucidGlove(tmp_path / "nano", analog_max=1023) as fake:
        drv = OpenGlovesDriver(OpenGlovesConfig(port=fake.path, analog_max=1023))
        try:
            fake.set_state(curl=(0.5,) * 5, joystick=(0.0, 0.0))
            drv.connect()
            s = next_hand(drv, lambda s: curls(s).min() > 0.4)
            np.testing.assert_allclose(curls(s), 0.5, atol=1e-3)
            np.testing.assert_allclose(s.channels[10:12], 0.0, atol=2e-3)
        finally:
            drv.disconnect()


def test_info_packet_is_recorded_not_emitted(fake, make_driver):
    drv = make_driver(side="right")
    drv.connect()
    next_hand(drv)
    fake.inject(b"Z(ZV)4(ZG)0(ZH)0\n")
    assert fake.wait_until(lambda: drv.info.get("firmware_version") == 4)
    assert drv.info == {"firmware_version": 4, "device_type": 0, "hand": 0}
    assert drv.health().errors.get("side_mismatch") == 1  # hand 0 = left, configured right
    assert "bad_line" not in drv.health().errors


def test_calibrate_through_the_pty(fake, make_driver, tmp_path):
    path = tmp_path / "profiles" / "right_glove.json"
    drv = make_driver(calibration=str(path))
    drv.connect()  # the file does not exist yet: runs uncalibrated
    next_hand(drv)

    def operator(msg: str) -> None:  # the prompts drive the fake hand
        if msg.startswith("Open"):
            fake.set_state(curl=(0.1, 0.2, 0.2, 0.2, 0.2), splay=(0.3,) * 5)
        elif msg.startswith("Now"):
            fake.set_state(curl=(0.6, 0.8, 0.8, 0.8, 0.8), splay=(0.7,) * 5)

    got = drv.calibrate(open_s=0.25, fist_s=0.25, prompt=operator)
    assert got["ranges"]["index_curl"] == pytest.approx([0.2, 0.8], abs=0.01)
    assert got["ranges"]["thumb_splay"] == pytest.approx([0.3, 0.7], abs=0.01)
    assert json.loads(path.read_text()) == got
    fake.set_state(curl=(0.35, 0.5, 0.5, 0.5, 0.5), splay=(0.5,) * 5)
    s = next_hand(drv, lambda s: abs(curls(s)[1] - 0.5) < 0.02)
    np.testing.assert_allclose(curls(s), 0.5, atol=0.02)
    np.testing.assert_allclose(s.channels[5:10], 0.0, atol=0.05)
    drv.disconnect()
    # a new driver loads the file at connect
    drv2 = make_driver(calibration=str(path))
    drv2.connect()
    assert drv2.calibration == drv.calibration
    fake.set_state(curl=(0.6, 0.8, 0.8, 0.8, 0.8))
    s = next_hand(drv2, lambda s: curls(s).min() > 0.98)
    drv2.set_calibration(None)
    s = next_hand(drv2, lambda s: curls(s)[1] < 0.9)
    assert curls(s)[1] == pytest.approx(0.8, abs=1e-3)


def test_bad_calibration_file_fails_connect_cleanly(fake, make_driver, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"ranges": {"index_curl": [0.5, 0.5]}}))
    drv = make_driver(calibration=str(path))
    with pytest.raises(ConfigError, match="bad.json"):
        drv.connect()
    assert not drv.is_connected


def test_state_dataclass_default_is_open_hand():
    assert FakeGloveState().curl == (0.0,) * 5
