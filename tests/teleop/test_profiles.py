"""Operator profiles: strict JSON round trip, applying a profile to a session's device options by
config-class fields, and the calibration walkthrough against real drivers (synthetic, and
OpenGloves on the fake firmware pty), plus the CLI wiring."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from drivers.config import DriverConfig
from drivers.registry import create_driver
from drivers.synthetic.script import BimanualScript
from retarget.human_hand import HandCalibration
from teleop.errors import ConfigError
from teleop.profiles import (
    NeutralWrist,
    OperatorProfile,
    SideProfile,
    apply_profile,
    average_quaternions,
    calibrate_operator,
    glove_path,
    list_profiles,
    load_profile,
    profile_path,
    profiles_dir,
    save_profile,
)
from teleop.session.config import parse_session

_DRIVER_TESTS = str(Path(__file__).resolve().parents[1] / "drivers")
if _DRIVER_TESTS not in sys.path:
    sys.path.append(_DRIVER_TESTS)
from fake_lucidglove import FakeLucidGlove  # noqa: E402  (lives in tests/drivers)

pytestmark = pytest.mark.timeout(60)

GLOVE = {"format": "opengloves-calibration", "version": 1, "side": "left",
         "ranges": {"index_curl": [0.1, 0.85], "thumb_curl": [0.12, 0.8]}}


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TELEOP_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def make_profile(name: str = "alice") -> OperatorProfile:
    cal = HandCalibration(bone_scale=(1.0,) * 19 + (1.1,)).to_dict()
    return OperatorProfile(
        name=name,
        sides={
            "left": SideProfile(hand_length_m=0.176, glove=GLOVE, glove_driver="opengloves",
                                neutral_wrist=NeutralWrist((0.3, 0.25, 1.0), (1.0, 0.0, 0.0, 0.0), "tracker",
                                                           "network"),
                                hand_calibration=cal, checks={"pinch_distance_m": 0.012}),
            "right": SideProfile(hand_length_m=0.18),
        },
        created="2025-01-31T09:12:00+00:00",
        updated="2025-02-01T10:00:00+00:00",
    )


def session(devices: dict, inputs: dict):
    return parse_session({"device": devices, "input": inputs})


def synthetic(side: str, **options) -> dict:
    return {"driver": "synthetic", "options": {"side": side, "script": "hand_poses", "rate_hz": 100, **options}}


# -- storage --------------------------------------------------------------------------------------------
def test_round_trip_and_layout(config_dir):
    profile = make_profile()
    path = save_profile(profile)
    assert path == config_dir / "operators" / "alice.json" == profile_path("alice")
    assert load_profile("alice") == profile
    assert [p.name for p in path.parent.iterdir()] == ["alice.json"]  # no temporary file left behind
    data = json.loads(path.read_text())
    assert data["format"] == "teleop-operator-profile" and data["version"] == 1
    assert data["sides"]["left"]["glove"] == GLOVE
    assert data["sides"]["left"]["hand_calibration"]["bone_scale"][-1] == 1.1
    glove_path("alice", "left").write_text("{}")  # glove files next to it are not profiles
    save_profile(make_profile("bob"))
    assert list_profiles() == ["alice", "bob"]


def _corrupt(data: dict, how: str) -> None:
    left = data["sides"]["left"]
    if how == "top_key":
        data["colour"] = "blue"
    elif how == "side_key":
        left["hand_size"] = 18
    elif how == "side_name":
        data["sides"]["middle"] = {}
    elif how == "wrist_key":
        left["neutral_wrist"]["euler"] = [0, 0, 0]
    elif how == "position_shape":
        left["neutral_wrist"]["position_m"] = [0.3, 0.25]
    elif how == "position_type":
        left["neutral_wrist"]["position_m"] = "0.3 0.25 1.0"
    elif how == "quat_norm":
        left["neutral_wrist"]["quat_wxyz"] = [1.0, 1.0, 0.0, 0.0]
    elif how == "hand_length_cm":
        left["hand_length_m"] = 17.6
    elif how == "hand_calibration":
        left["hand_calibration"] = {"bone_scale": [1.0] * 3}
    elif how == "checks":
        left["checks"] = {"grip_m": 0.1}
    elif how == "glove_type":
        left["glove"] = [0.1, 0.85]
    elif how == "version":
        data["version"] = 2
    elif how == "name":
        data["name"] = "bob"
    elif how == "missing":
        del data["updated"]
    elif how == "date":
        data["created"] = "yesterday"


@pytest.mark.parametrize("how, words", [
    ("top_key", ["'colour'", "allowed keys"]),
    ("side_key", ["sides.left", "'hand_size'"]),
    ("side_name", ["'middle'"]),
    ("wrist_key", ["neutral_wrist", "'euler'"]),
    ("position_shape", ["position_m", "3 numbers"]),
    ("position_type", ["position_m", "3 numbers"]),
    ("quat_norm", ["unit quaternion"]),
    ("hand_length_cm", ["hand_length_m", "0.1..0.3"]),
    ("hand_calibration", ["bone_scale", "20"]),
    ("checks", ["'grip_m'"]),
    ("glove_type", ["glove", "JSON object"]),
    ("version", ["not supported"]),
    ("name", ["'bob'", "alice"]),
    ("missing", ["missing key 'updated'"]),
    ("date", ["ISO 8601"]),
])
def test_strict_loading(how, words):
    path = save_profile(make_profile())
    data = json.loads(path.read_text())
    _corrupt(data, how)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as exc:
        load_profile("alice")
    msg = str(exc.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg


def test_unknown_operator_and_bad_names():
    save_profile(make_profile("alice"))
    with pytest.raises(ConfigError, match=r"no operator profile 'zoe'.*\['alice'\].*teleop calibrate --operator zoe"):
        load_profile("zoe")
    profile_path("alice").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_profile("alice")
    for bad in ("../etc", "a.b", "", "with space"):
        with pytest.raises(ConfigError, match="operator name"):
            profile_path(bad)


def test_average_quaternions_aligns_hemispheres():
    rng = np.random.default_rng(0)
    q0 = np.array([0.5, 0.5, -0.5, 0.5])
    qs = q0 + rng.normal(0, 0.01, (200, 4))
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    qs[::2] *= -1  # the same rotations, half of them written the other way round
    mean = average_quaternions(qs)
    assert abs(mean @ q0) > 0.9999
    assert np.linalg.norm(qs.mean(axis=0)) < 0.1  # the naive mean would be meaningless


# -- apply_profile ----------------------------------------------------------------------------------
def test_apply_profile_by_config_fields():
    cfg = session(
        {"glove_left": {"driver": "opengloves", "options": {"port": "/dev/ttyFAKE0", "side": "left",
                                                            "calibration": "~/.config/teleop/gloves/left.json"}},
         "right": synthetic("right"),
         "mocap": {"driver": "network", "options": {}}},
        {"left": {"hand": "glove_left", "wrist": "mocap"}, "right": {"hand": "right", "wrist": "right"}},
    )
    profile = make_profile()
    out = apply_profile(cfg, profile)
    assert out.operator == "alice" and cfg.operator is None
    left = out.devices["glove_left"].options
    assert left["hand_length_m"] == 0.176
    assert left["calibration"] == str(glove_path("alice", "left"))
    assert json.loads(Path(left["calibration"]).read_text()) == GLOVE
    assert out.devices["right"].options["hand_length_m"] == 0.18
    assert "calibration" not in out.devices["right"].options  # the synthetic config has no such field
    assert out.devices["mocap"] == cfg.devices["mocap"]  # a wrist device is untouched
    assert cfg.devices["glove_left"].options["calibration"].startswith("~")  # the input is not modified
    for name in ("glove_left", "right"):  # the options still build the driver configs
        dc = out.devices[name]
        assert create_driver(dc.driver, dc.options).config.hand_length_m == dc.options["hand_length_m"]

    # a hand device without hand_length_m / calibration fields keeps its options
    cfg2 = session({"mocap": {"driver": "network", "options": {}}}, {"left": {"hand": "mocap", "wrist": "mocap"}})
    assert apply_profile(cfg2, profile).devices == cfg2.devices

    # a glove dict from another glove driver is not applied to this one
    other = dataclasses.replace(profile, sides={"left": dataclasses.replace(profile.sides["left"],
                                                                            glove_driver="otherglove")})
    opts = apply_profile(cfg, other).devices["glove_left"].options
    assert opts["calibration"] == cfg.devices["glove_left"].options["calibration"] and opts["hand_length_m"] == 0.176


def test_apply_profile_decides_by_fields_not_names(monkeypatch):
    """A driver nobody here knows, whose config has the three fields, gets all three."""
    import drivers.registry as registry

    @dataclass(frozen=True, kw_only=True)
    class MysteryConfig(DriverConfig):
        hand_length_m: float = 0.185
        calibration: str | None = None
        hand_calibration: dict | None = None

    class Mystery:
        config_class = MysteryConfig

    real = registry.driver_class
    monkeypatch.setattr(registry, "driver_class", lambda name: Mystery if name == "mystery" else real(name))
    cfg = session({"g": {"driver": "mystery", "options": {}}, "w": synthetic("left")},
                  {"left": {"hand": "g", "wrist": "w"}})
    profile = make_profile()
    profile = dataclasses.replace(profile, sides={"left": dataclasses.replace(profile.sides["left"],
                                                                              glove_driver="mystery")})
    opts = apply_profile(cfg, profile).devices["g"].options
    assert opts["hand_length_m"] == 0.176
    assert opts["calibration"] == str(glove_path("alice", "left"))
    assert opts["hand_calibration"] == profile.sides["left"].hand_calibration


# -- the walkthrough ----------------------------------------------------------------------------------
class Operator:
    """Scripted prompt/ask: answers by what is asked, records everything said."""

    def __init__(self, lengths=("17.5",), on_prompt=None):
        self.lengths = list(lengths)
        self.said: list[str] = []
        self.on_prompt = on_prompt

    def prompt(self, text: str) -> None:
        self.said.append(text)
        if self.on_prompt:
            self.on_prompt(text)

    def ask(self, text: str) -> str:
        self.said.append(text)
        if "hand length in cm" in text:
            return self.lengths.pop(0) if len(self.lengths) > 1 else self.lengths[0]
        return ""  # Enter

    @property
    def text(self) -> str:
        return "\n".join(self.said)


def test_walkthrough_synthetic_hands_and_wrists(config_dir):
    cfg = session({"l": synthetic("left"), "r": synthetic("right")},
                  {"left": {"hand": "l", "wrist": "l"}, "right": {"hand": "r", "wrist": "r"}})
    op = Operator(lengths=("abc", "180", "17,5", "19"))
    profile = calibrate_operator(cfg, "alice", prompt=op.prompt, ask=op.ask, seconds=0.3, wrist_s=0.3)
    assert load_profile("alice") == profile
    assert profile.sides["left"].hand_length_m == 0.175  # "abc" and "180" (mm?) rejected, "17,5" accepted
    assert profile.sides["right"].hand_length_m == 0.19
    assert op.text.count("not a hand length") == 2
    script = BimanualScript("hand_poses")
    for side in ("left", "right"):
        sp = profile.sides[side]
        _, pos, quat = script.at(0.0, side)
        assert np.allclose(sp.neutral_wrist.position_m, pos, atol=1e-6)
        assert abs(np.dot(sp.neutral_wrist.quat_wxyz, quat)) > 1 - 1e-9
        assert sp.neutral_wrist.driver == "synthetic" and sp.neutral_wrist.frame == "tracker"
        assert sp.glove is None  # the synthetic driver needs no glove calibration
        assert set(sp.checks) == {"pinch_distance_m", "splay_span_m"}
    for words in ("LEFT hand length in cm, from the wrist crease to the tip of the middle finger",
                  "no calibration routine", "no separate pinch calibration step", "only measured as a check",
                  "Neutral wrist pose (RIGHT", "Saved operator profile 'alice'", "--operator alice"):
        assert words in op.text

    # again, right hand only: the left hand and the creation date are kept, the default is the stored length
    op2 = Operator(lengths=("",))
    again = calibrate_operator(cfg, "alice", prompt=op2.prompt, ask=op2.ask, seconds=0.2, wrist_s=0.2, sides=("right",))
    assert again.created == profile.created and again.sides["left"] == profile.sides["left"]
    assert again.sides["right"].hand_length_m == 0.19 and "[19.0]" in op2.text


def test_walkthrough_closes_devices_and_saves_nothing_on_abort(monkeypatch):
    import drivers.registry as registry

    made = []
    real = registry.create_driver

    def create(name, options=None):
        made.append(real(name, options))
        return made[-1]

    monkeypatch.setattr(registry, "create_driver", create)
    cfg = session({"l": synthetic("left")}, {"left": {"hand": "l", "wrist": "l"}})

    def ask(text):
        if "Neutral wrist" in text:
            raise KeyboardInterrupt
        return ""

    with pytest.raises(KeyboardInterrupt):
        calibrate_operator(cfg, "alice", prompt=lambda t: None, ask=ask, seconds=0.1)
    assert len(made) == 1 and not made[0].is_connected
    assert list_profiles() == []


def test_walkthrough_opengloves_on_fake_firmware(tmp_path):
    session_cal = tmp_path / "session_glove.json"
    with FakeLucidGlove(tmp_path / "glove") as fake:
        fake.set_state(curl=(0.1,) * 5)

        def operator_hand(text: str) -> None:  # the operator does what the prompts say
            low = text.lower()
            if "fist" in low:
                fake.set_state(curl=(0.85,) * 5)
            elif "pinch:" in low:
                fake.set_state(curl=(0.5, 0.5, 0.0, 0.0, 0.0))

        cfg = session(
            {"glove": {"driver": "opengloves", "options": {"port": fake.path, "side": "right",
                                                           "calibration": str(session_cal)}},
             "wrist": synthetic("right", emit_hand=False)},
            {"right": {"hand": "glove", "wrist": "wrist"}},
        )
        op = Operator(lengths=("17.8",), on_prompt=operator_hand)
        profile = calibrate_operator(cfg, "carol", prompt=op.prompt, ask=op.ask, seconds=0.4, wrist_s=0.3)
        sp = profile.sides["right"]
        assert sp.glove_driver == "opengloves" and sp.hand_length_m == 0.178
        ranges = sp.glove["ranges"]
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            assert np.allclose(ranges[f"{finger}_curl"], [0.1, 0.85], atol=0.01), ranges
        assert "Open your hand" in op.text and "tight fist" in op.text
        assert "glove has no separate splay calibration step" in op.text
        assert 0.0 < sp.checks["pinch_distance_m"] < sp.checks["splay_span_m"] + 0.1
        assert not session_cal.exists()  # the session's own calibration file is left alone
        assert np.allclose(sp.neutral_wrist.position_m, BimanualScript("hand_poses").at(0.0, "right")[1])

        # the applied session hands the driver the operator's ranges and size
        dc = apply_profile(cfg, profile).devices["glove"]
        drv = create_driver(dc.driver, dc.options)
        drv.connect()
        try:
            assert drv.config.hand_length_m == 0.178
            assert dict(drv.calibration.ranges) == {k: tuple(v) for k, v in ranges.items()}
        finally:
            drv.disconnect()


# -- CLI --------------------------------------------------------------------------------------------
def test_cli_operator_calibrate_list_and_run(tmp_path, monkeypatch, capsys):
    from teleop.cli import main

    toml = tmp_path / "one_hand.toml"
    toml.write_text('[device.r]\ndriver = "synthetic"\noptions = { side = "right", script = "hand_poses", '
                    'rate_hz = 100 }\n[input.right]\nhand = "r"\nwrist = "r"\n')
    monkeypatch.setattr(sys, "stdin", io.StringIO("18.2\n\n"))
    assert main(["calibrate", "--operator", "dave", "--session", str(toml), "--pose-seconds", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "Saved operator profile 'dave'" in out and (profiles_dir() / "dave.json").is_file()
    assert load_profile("dave").sides["right"].hand_length_m == 0.182

    assert main(["operators", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "dave" and rows[0]["sides"] == ["right"]

    assert main(["run", str(toml), "--operator", "erin", "--seconds", "0.1"]) == 2
    err = capsys.readouterr().err
    assert "no operator profile 'erin'" in err and "['dave']" in err

    assert main(["calibrate"]) == 2
    assert "--operator NAME" in capsys.readouterr().err
    assert main(["calibrate", "synthetic", "--operator", "dave"]) == 2
    assert main(["calibrate", "synthetic", "--session", str(toml)]) == 2
