"""Every number from a config, the CLI or a profile is finite and in range; errors name the key.

Session configs, robot descriptions, retargeting configs, driver options, operator profiles and
every numeric option of every ``teleop`` subcommand: NaN, +-inf and values out of range are
refused with a message that names the key (or option), the value and what is allowed. Fast: no
sim, no sockets (one ``teleop run --seconds nan`` process that exits on parsing).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.config import DriverConfig
from robots.description import bundled_description_path, load_description, parse_description
from teleop import cli_types
from teleop.cli import _size, build_parser, main
from teleop.errors import ConfigError
from teleop.profiles import FORMAT, VERSION, profile_from_dict
from teleop.session.config import (
    BUNDLED_SESSIONS_DIR,
    HapticsConfig,
    PolicySettings,
    RecorderSettings,
    RobotConfig,
    SafetyConfig,
    SessionConfig,
    load_session,
    parse_session,
)
from teleop.tomlcfg import NumberRange, get_float, get_int

NAN, INF = math.nan, math.inf
FIXTURES = Path(__file__).parents[1] / "fixtures"
TINY = FIXTURES / "tiny_bimanual.toml"

# -- session configs ------------------------------------------------------------------------------
BASE_SESSION = {"device": {"g": {"driver": "synthetic"}}, "input": {"right": {"hand": "g"}}}
SECTIONS = {"safety": SafetyConfig, "haptics": HapticsConfig, "policy": PolicySettings, "recorder": RecorderSettings}


def _ranges() -> dict[tuple[str, str], NumberRange]:
    """(section, key) -> declared range, for every numeric key of a session config."""
    out = {("session", "rate_hz"): _field_range(SessionConfig, "rate_hz"),
           ("robot", "port_base"): _field_range(RobotConfig, "port_base")}
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
                out[(section, f.name)] = _field_range(cls, f.name)
    return out


def _field_range(cls: type, name: str) -> NumberRange:
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    rng = f.metadata.get("range")
    assert isinstance(rng, NumberRange), f"{cls.__name__}.{name} declares no allowed range"
    return rng


RANGES = _ranges()


def _bad_values(rng: NumberRange) -> list[float]:
    bad = [NAN, INF, -INF]
    if rng.low is not None:
        bad.append(rng.low if rng.low_open else rng.low - 1)
    if rng.high is not None:
        bad.append(rng.high + 1)
    if rng.integer:
        bad.append(rng.low + 0.5)
    return bad


def _session(section: str, key: str, value: object) -> dict:
    raw = copy.deepcopy(BASE_SESSION)
    raw.setdefault(section, {})[key] = value
    return raw


def test_every_numeric_session_key_is_covered():
    keys = {f"{s}.{k}" for s, k in RANGES}
    assert {"safety.stale_timeout_s", "safety.max_start_distance_rad", "safety.engage_max_step_rad",
            "safety.min_hand_distance_m", "haptics.rate_hz", "haptics.full_force_n", "haptics.deadband_n",
            "haptics.exponent", "haptics.max_change_per_s", "policy.rate_hz", "policy.timeout_s",
            "policy.max_hold_s", "policy.blend_max_step_rad", "recorder.crf", "session.rate_hz",
            "robot.port_base"} <= keys
    defaults = parse_session(copy.deepcopy(BASE_SESSION))
    for (section, key), rng in RANGES.items():  # every default is inside its own range
        rng.check(_parsed(defaults, section, key), f"{section}.{key}", "defaults")


def _parsed(cfg: SessionConfig, section: str, key: str) -> object:
    return cfg.rate_hz if section == "session" else getattr(getattr(cfg, section), key)


@pytest.mark.parametrize(("section", "key", "value"),
                         [(s, k, v) for (s, k), rng in RANGES.items() for v in _bad_values(rng)])
def test_session_numbers_out_of_range_name_the_key(section, key, value):
    with pytest.raises(ConfigError) as exc:
        parse_session(_session(section, key, value))
    msg = str(exc.value)
    assert f"'{section}.{key}'" in msg and f"got {value!r}" in msg, msg
    assert "must be" in msg


@pytest.mark.parametrize(("section", "key"), list(RANGES))
def test_session_numbers_at_the_range_edges_pass(section, key):
    rng = RANGES[(section, key)]
    edges = [e for e, open_ in ((rng.low, rng.low_open), (rng.high, False)) if e is not None and not open_]
    if (section, key) == ("haptics", "deadband_n"):
        edges.remove(rng.high)  # full_force_n (at most the same) must be above it: the cross check
    for edge in edges:
        assert _parsed(parse_session(_session(section, key, edge)), section, key) == edge


def test_session_nan_from_real_toml_text_and_port_base_rules():
    text = '[device.g]\ndriver = "synthetic"\n[input.right]\nhand = "g"\n'
    for extra, key in [("[safety]\nstale_timeout_s = nan", "safety.stale_timeout_s"),
                       ("[safety]\nmax_start_distance_rad = nan", "safety.max_start_distance_rad"),
                       ("[safety]\nengage_max_step_rad = inf", "safety.engage_max_step_rad"),
                       ("[robot]\nport_base = nan", "robot.port_base"),
                       ("[robot]\nport_base = 18900.7", "robot.port_base"),
                       ("[robot]\nport_base = 65531", "robot.port_base"),
                       ("[session]\nrate_hz = -inf", "session.rate_hz")]:
        with pytest.raises(ConfigError, match=f"'{key}'"):
            parse_session(tomllib.loads(text + extra))
    with pytest.raises(ConfigError, match=r"whole number in 1024\.\.65530, got 18900\.7"):
        parse_session(tomllib.loads(text + "[robot]\nport_base = 18900.7"))
    cfg = parse_session(tomllib.loads(text + "[robot]\nport_base = 18900.0\n[recorder]\ncrf = 30.0"))
    assert cfg.robot.port_base == 18900 and isinstance(cfg.robot.port_base, int)
    assert cfg.recorder.crf == 30 and isinstance(cfg.recorder.crf, int)
    with pytest.raises(ConfigError, match="'recorder.crf' must be a whole number"):
        parse_session(_session("recorder", "crf", 23.5))
    with pytest.raises(ConfigError, match="'safety.stale_timeout_s' must be int or float"):
        parse_session(_session("safety", "stale_timeout_s", True))


def test_bundled_sessions_stay_valid():
    names = sorted(p.stem for p in BUNDLED_SESSIONS_DIR.glob("*.toml"))
    assert names
    for name in names:
        load_session(name)


def test_dagger_session_template_stays_valid(tmp_path):
    from teleop.dagger import SESSION_TEMPLATE

    text = SESSION_TEMPLATE.format(rpc="tcp://127.0.0.1:7713", dx=0.0, dy=0.0, dataset=str(tmp_path), policy="false",
                                   policy_endpoint="tcp://127.0.0.1:7720")
    cfg = parse_session(tomllib.loads(text))
    assert cfg.safety.max_start_distance_rad == 3.5


# -- toml helpers ---------------------------------------------------------------------------------
def test_get_float_and_get_int_refuse_nan_and_truncation():
    for value in (NAN, INF, -INF):
        with pytest.raises(ConfigError, match="'x.k' must be a finite number"):
            get_float({"k": value}, "k", 1.0, "f.toml", "x.")
    with pytest.raises(ConfigError, match=r"'x.k' must be <= 2 \(allowed: a finite number with 0 < value <= 2\)"):
        get_float({"k": 3}, "k", 1.0, "f.toml", "x.", low=0, high=2, low_open=True)
    assert get_int({"k": 8.0}, "k", 1, "f.toml", low=1, high=10) == 8
    with pytest.raises(ConfigError, match=r"'k' must be a whole number in 1\.\.10, got 8\.5"):
        get_int({"k": 8.5}, "k", 1, "f.toml", low=1, high=10)


# -- robot descriptions ---------------------------------------------------------------------------
ELBOW = "limits.position_overrides.left_elbow"


def _desc_raw() -> dict:
    return tomllib.loads(TINY.read_text())


@pytest.mark.parametrize(("mutate", "key"), [
    (lambda r: r["limits"].update(velocity_rad_s=NAN), "limits.velocity_rad_s"),
    (lambda r: r["limits"].update(velocity_rad_s=INF), "limits.velocity_rad_s"),
    (lambda r: r["limits"].update(velocity_rad_s=500.0), "limits.velocity_rad_s"),
    (lambda r: r["limits"]["velocity_overrides"].update({"*_grip": INF}), "limits.velocity_overrides.*_grip"),
    (lambda r: r["limits"]["velocity_overrides"].update({"*_grip": NAN}), "limits.velocity_overrides.*_grip"),
    (lambda r: r["limits"]["velocity_overrides"].update({"*_grip": 0}), "limits.velocity_overrides.*_grip"),
    (lambda r: r["limits"]["velocity_overrides"].update({"*_grip": True}), "limits.velocity_overrides.*_grip"),
    (lambda r: r["limits"]["position_overrides"].update(left_elbow=[-INF, INF]), f"{ELBOW}[0]"),
    (lambda r: r["limits"]["position_overrides"].update(left_elbow=[-1.0, INF]), f"{ELBOW}[1]"),
    (lambda r: r["limits"]["position_overrides"].update(left_elbow=[NAN, 1.0]), f"{ELBOW}[0]"),
    (lambda r: r["limits"]["position_overrides"].update(left_elbow=[-1.0, 50.0]), f"{ELBOW}[1]"),
    (lambda r: r["actuators"].update(kp=NAN), "actuators.kp"),
    (lambda r: r["actuators"].update(kp=INF), "actuators.kp"),
    (lambda r: r["actuators"].update(kp=0), "actuators.kp"),
    (lambda r: r["actuators"].update(kv=NAN), "actuators.kv"),
    (lambda r: r["actuators"].update(kv=-1.0), "actuators.kv"),
    (lambda r: r["actuators"].update(kv=1e9), "actuators.kv"),
])
def test_description_numbers_name_the_key(mutate, key):
    raw = _desc_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as exc:
        parse_description(raw, source=TINY)
    assert f"'{key}'" in str(exc.value) and "got" in str(exc.value), str(exc.value)


def test_description_numbers_in_range_pass():
    raw = _desc_raw()
    raw["limits"]["position_overrides"]["left_elbow"] = [-10, 10]
    raw["limits"]["velocity_overrides"]["*_grip"] = 50
    desc = parse_description(raw, source=TINY)
    assert desc.position_overrides["left_elbow"] == (-10.0, 10.0) and desc.velocity_limit("left_grip") == 50.0


# -- retargeting configs --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled_desc():
    return load_description(bundled_description_path())


@pytest.mark.parametrize(("old", "new", "key"), [
    ("weights = [1.0, 1.0,", "weights = [nan, 1.0,", "hand.weights[0]"),
    ("weights = [1.0, 1.0,", "weights = [1.0, inf,", "hand.weights[1]"),
    ("weights = [1.0, 1.0,", "weights = [1.0, -1.0,", "hand.weights[1]"),
    ("[4, 8, 12, 16, 20, 3,", "[4.5, 8, 12, 16, 20, 3,", "hand.target_link_human_indices[1][0]"),
    ("[4, 8, 12, 16, 20, 3,", "[21, 8, 12, 16, 20, 3,", "hand.target_link_human_indices[1][0]"),
    ("scaling_factor = 1.15 ", "scaling_factor = nan ", "hand.scaling_factor"),
    ("max_iters = 2 ", "max_iters = 2.5 ", "hand.max_iters"),
    ("cold_iters = 100 ", "cold_iters = inf ", "arm.cold_iters"),
    ("[arm]", "[arm]\nposture = [0.0, 0.0, 0.0, nan, 0.0, 0.0, 0.0]", "arm.posture[3]"),
    ("[arm]", "[arm]\nposture = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e9]", "arm.posture[6]"),
    ("damping = 0.01", "damping = inf", "arm.damping"),
    ("rotation_rpy_deg = [0.0, 0.0, 0.0]", "rotation_rpy_deg = [0.0, nan, 0.0]", "workspace.rotation_rpy_deg[1]"),
    ("offset_m = [0.0, 0.0, 0.0]", "offset_m = [0.0, 0.0, -inf]", "workspace.offset_m[2]"),
    ("offset_m = [0.0, 0.0, 0.0]", "offset_m = [0.0, true, 0.0]", "workspace.offset_m[1]"),
    ("scale = 1.0", "scale = inf", "workspace.scale"),
])
def test_retarget_numbers_name_the_key(tmp_path, bundled_desc, old, new, key):
    from retarget.config import load_retarget_config

    base = bundled_desc.retarget_path.read_text()
    assert old in base, old
    hands = f'urdf_path = "{bundled_desc.model_path.parent}/hands/'
    text = base.replace(old, new, 1).replace('urdf_path = "hands/', hands)
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_retarget_config(bundled_desc, path)
    assert f"'{key}'" in str(exc.value), str(exc.value)


# -- driver options -------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class _Opts(DriverConfig):
    gain: float = 1.0
    count: int = 3
    scale: tuple[float, ...] = (1.0,)
    limit: float | None = None


@pytest.mark.parametrize(("options", "name"), [
    ({"gain": "nan"}, "gain"), ({"gain": "inf"}, "gain"), ({"gain": "-inf"}, "gain"), ({"gain": "1e999"}, "gain"),
    ({"gain": NAN}, "gain"), ({"gain": INF}, "gain"), ({"count": 2.5}, "count"), ({"count": NAN}, "count"),
    ({"count": INF}, "count"), ({"count": "2.5"}, "count"), ({"scale": "1,nan"}, "scale"),
    ({"scale": [1.0, INF]}, "scale"),
    ({"limit": "nan"}, "limit"), ({"reconnect_interval_s": "nan"}, "reconnect_interval_s"),
])
def test_driver_options_refuse_non_finite_and_truncation(options, name):
    with pytest.raises(ConfigError, match=f"option '{name}'"):
        _Opts.from_options(options)


def test_driver_options_whole_floats_pass():
    cfg = _Opts.from_options({"count": 4.0, "gain": 2, "limit": "none"})
    assert cfg.count == 4 and isinstance(cfg.count, int) and cfg.gain == 2.0 and cfg.limit is None


# -- operator profiles ----------------------------------------------------------------------------
def _profile() -> dict:
    return {"format": FORMAT, "version": VERSION, "name": "alice", "created": "2025-01-31T09:12:00+00:00",
            "updated": "2025-01-31T09:12:00+00:00",
            "sides": {"left": {"hand_length_m": 0.18, "glove_driver": "opengloves",
                               "glove": {"format": "x", "ranges": {"index_curl": [0.1, 0.9]}},
                               "neutral_wrist": {"position_m": [0.3, 0.2, 1.0], "quat_wxyz": [1.0, 0.0, 0.0, 0.0],
                                                 "frame": "tracker", "driver": "network"},
                               "hand_calibration": {"bone_scale": [1.0] * 20, "angle_offset_rad": [0.0] * 20},
                               "checks": {"pinch_distance_m": 0.012, "splay_span_m": 0.09}}}}


def _set(path: str, value: object):
    def mutate(d: dict) -> None:
        keys = path.split("/")
        for k in keys[:-1]:
            d = d[int(k)] if isinstance(d, list) else d[k]
        d[int(keys[-1]) if isinstance(d, list) else keys[-1]] = value
    return mutate


@pytest.mark.parametrize(("path", "value", "words"), [
    ("hand_length_m", NAN, ["hand_length_m", "finite"]),
    ("hand_length_m", INF, ["hand_length_m"]),
    ("hand_length_m", 1.5, ["hand_length_m", "0.1..0.3"]),
    ("checks/pinch_distance_m", NAN, ["checks.pinch_distance_m", "finite"]),
    ("checks/pinch_distance_m", -0.01, ["checks.pinch_distance_m", "0 <= value <= 0.5"]),
    ("checks/splay_span_m", 3.0, ["checks.splay_span_m", "<= 0.5"]),
    ("neutral_wrist/position_m/2", INF, ["neutral_wrist.position_m", "finite"]),
    ("neutral_wrist/position_m/2", 1e6, ["neutral_wrist.position_m[2]", "-100 <= value <= 100"]),
    ("neutral_wrist/quat_wxyz/0", NAN, ["neutral_wrist.quat_wxyz", "finite"]),
    ("glove/ranges/index_curl/1", NAN, ["glove.ranges.index_curl[1]", "finite"]),
    ("hand_calibration/bone_scale/4", NAN, ["bone_scale", "finite"]),
    ("hand_calibration/bone_scale/4", 50.0, ["hand_calibration.bone_scale[4]", "<= 3"]),
    ("hand_calibration/angle_offset_rad/7", 4.0, ["hand_calibration.angle_offset_rad[7]"]),
    ("hand_calibration/angle_offset_rad/7", -INF, ["angle_offset_rad", "finite"]),
])
def test_profile_numbers_name_the_key(path, value, words):
    data = _profile()
    _set(path, value)(data["sides"]["left"])
    data = json.loads(json.dumps(data))  # as from a file: JSON keeps NaN and Infinity literals
    with pytest.raises(ConfigError) as exc:
        profile_from_dict(data, where="operator profile alice.json")
    msg = str(exc.value)
    assert "alice.json" in msg and "sides.left" in msg, msg
    for w in words:
        assert w in msg, msg


def test_profile_version_is_a_number_not_a_bool():
    data = _profile()
    assert profile_from_dict(data).sides["left"].hand_length_m == 0.18
    data["version"] = True
    with pytest.raises(ConfigError, match="not supported"):
        profile_from_dict(data)


# -- the command line -----------------------------------------------------------------------------
def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _numeric_actions():
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            numeric_default = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
            if action.type is not None or numeric_default:
                yield " ".join(path), action


def test_every_numeric_option_has_a_checked_type():
    seen = set()
    for cmd, action in _numeric_actions():
        opt = action.option_strings[0] if action.option_strings else action.dest
        assert action.type not in (int, float, None), f"teleop {cmd} {opt}: plain {action.type}"
        seen.add(f"{cmd} {opt}")
    # every subcommand with numbers, including the recorder's and the policy's
    for want in ("sim --port-base", "sim --duration", "run --seconds", "bench --count", "bench --rate",
                 "retarget --fps", "retarget --iters", "drivers echo --seconds", "drivers echo --max-rate",
                 "calibrate --pose-seconds", "record --crf", "record --seconds", "replay --speed",
                 "replay --policy-hz", "export --fps", "episodes start --port-base", "policy train --k",
                 "policy train --chunk", "policy serve --seconds", "policy info --timeout", "dagger --drift",
                 "dagger --seed", "demo --port-base", "doctor --port-base", "robot check --step"):
        assert want in seen, want


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "1e999", "abc", ""])
def test_every_numeric_option_refuses_non_numbers_and_non_finite(text):
    for cmd, action in _numeric_actions():
        if action.type is _size:
            continue
        with pytest.raises(argparse.ArgumentTypeError):
            action.type(text)
            pytest.fail(f"teleop {cmd} {action.option_strings}: accepted {text!r}")


def test_every_numeric_default_is_allowed_by_its_own_type():
    for cmd, action in _numeric_actions():
        if action.default is not None and not isinstance(action.default, tuple):
            assert action.type(str(action.default)) == action.default, (cmd, action.option_strings)


@pytest.mark.parametrize(("argv", "option", "allowed"), [
    (["run", "--seconds", "nan"], "--seconds", "0 < value <= 10000000"),
    (["run", "--seconds", "0"], "--seconds", "0 < value"),
    (["run", "--seconds", "-5"], "--seconds", "0 < value"),
    (["sim", "--duration", "inf"], "--duration", "0 < value"),
    (["sim", "--port-base", "65533"], "--port-base", "1024..65532"),
    (["sim", "--port-base", "18900.7"], "--port-base", "1024..65532"),
    (["sim", "--port-base", "80"], "--port-base", "1024..65532"),
    (["sim", "--state-hz", "nan"], "--state-hz", "1 <= value <= 5000"),
    (["sim", "--camera-hz", "-1"], "--camera-hz", "0 <= value <= 120"),
    (["sim", "--watchdog-ms", "0"], "--watchdog-ms", "10 <= value <= 10000"),
    (["sim", "--camera-size", "0x240"], "--camera-size", "16..4096"),
    (["robot", "check", "--step", "inf"], "--step", "0 < value <= 0.5"),
    (["doctor", "--port-base", "nan"], "--port-base", "1024..65515"),
    (["bench", "bus", "--count", "0"], "--count", "1..10000000"),
    (["bench", "e2e", "--realtime", "100"], "--realtime", "0..99"),
    (["bench", "sim", "--seconds", "nan"], "--seconds", "0 < value"),
    (["bench", "bus", "--port-base", "65500"], "--port-base", "1024..65415"),
    (["bench", "e2e", "--rate", "5000"], "--rate", "10 <= value <= 1000"),
    (["bench", "e2e", "--input-hz", "inf"], "--input-hz", "0 < value <= 2000"),
    (["retarget", "--side", "left", "--keypoints", "k.npy", "--fps", "nan"], "--fps", "0 < value <= 1000"),
    (["retarget", "--side", "left", "--keypoints", "k.npy", "--iters", "2.5"], "--iters", "1..10000"),
    (["retarget", "--side", "left", "--keypoints", "k.npy", "--workers", "0"], "--workers", "1..1024"),
    (["drivers", "echo", "synthetic", "--seconds", "nan"], "--seconds", "0 < value"),
    (["drivers", "echo", "synthetic", "--max-rate", "0"], "--max-rate", "0 < value <= 1000"),
    (["calibrate", "--operator", "x", "--pose-seconds", "nan"], "--pose-seconds", "0 < value <= 60"),
    (["record", "--dataset", "d", "--crf", "64"], "--crf", "0..63"),
    (["record", "--dataset", "d", "--port-base", "65531"], "--port-base", "1024..65530"),
    (["record", "--dataset", "d", "--seconds", "inf"], "--seconds", "0 < value"),
    (["replay", "ep", "--speed", "nan"], "--speed", "0 < value <= 100"),
    (["replay", "ep", "--speed", "0"], "--speed", "0 < value <= 100"),
    (["replay", "ep", "--policy-hz=-inf"], "--policy-hz", "0 < value <= 1000"),
    (["replay", "ep", "--seconds", "nan"], "--seconds", "0 < value"),
    (["replay", "ep", "--port-base", "nan"], "--port-base", "1024..65530"),
    (["episodes", "stop", "--port-base", "70000"], "--port-base", "1024..65530"),
    (["export", "ds", "--format", "hdf5", "--out", "o", "--fps", "nan"], "--fps", "1..1000"),
    (["export", "ds", "--format", "hdf5", "--out", "o", "--fps", "2.5"], "--fps", "1..1000"),
    (["policy", "train", "ds", "--out", "m.npz", "--fps", "inf"], "--fps", "0 < value <= 1000"),
    (["policy", "train", "ds", "--out", "m.npz", "--chunk", "0"], "--chunk", "1..1000"),
    (["policy", "train", "ds", "--out", "m.npz", "--k", "6"], "--k", "1..5"),
    (["policy", "train", "ds", "--out", "m.npz", "--intervention-weight", "nan"], "--intervention-weight",
     "0 <= value"),
    (["policy", "train", "ds", "--out", "m.npz", "--policy-weight", "-1"], "--policy-weight", "0 <= value"),
    (["policy", "train", "ds", "--out", "m.npz", "--time-weight", "inf"], "--time-weight", "0 <= value"),
    (["policy", "train", "ds", "--out", "m.npz", "--epochs", "0"], "--epochs", "1..100000"),
    (["policy", "train", "ds", "--out", "m.npz", "--hidden", "1.5"], "--hidden", "1..65536"),
    (["policy", "train", "ds", "--out", "m.npz", "--seed", "-1"], "--seed", "0..4294967295"),
    (["policy", "serve", "--policy", "replay", "--seconds", "nan"], "--seconds", "0 < value"),
    (["policy", "info", "--timeout", "nan"], "--timeout", "0 < value <= 600"),
    (["dagger", "--rounds", "0"], "--rounds", "1..100"),
    (["dagger", "--demos", "nan"], "--demos", "1..1000"),
    (["dagger", "--episodes", "1.5"], "--episodes", "1..1000"),
    (["dagger", "--evals", "0"], "--evals", "1..1000"),
    (["dagger", "--seed", "2.5"], "--seed", "0..4294967295"),
    (["dagger", "--shift", "1"], "--shift", "0 <= value <= 0.3"),
    (["dagger", "--drift", "nan"], "--drift", "0 < value <= 3.2"),
    (["dagger", "--intervention-weight", "inf"], "--intervention-weight", "0 <= value <= 1000"),
    (["dagger", "--port-base", "65520"], "--port-base", "1024..65515"),
    (["demo", "--port-base", "1023"], "--port-base", "1024..65530"),
])
def test_cli_refuses_bad_numbers_naming_the_option_and_range(capsys, argv, option, allowed):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err and allowed in err, err


def test_cli_accepts_the_edges():
    parser = build_parser()
    assert parser.parse_args(["sim", "--port-base", "65532", "--camera-hz", "0"]).port_base == 65532
    assert parser.parse_args(["record", "--dataset", "d", "--port-base", "65530", "--crf", "0"]).crf == 0
    assert parser.parse_args(["bench", "bus", "--count", "8.0"]).count == 8
    assert parser.parse_args(["run", "--seconds", "0.25"]).seconds == 0.25
    assert parser.parse_args(["export", "d", "--format", "hdf5", "--out", "o", "--fps", "30.0"]).fps == 30
    assert parser.parse_args(["sim", "--camera-size", "16x4096"]).camera_size == (16, 4096)


def test_help_still_exits_zero(capsys):
    assert main(["run", "--help"]) == 0
    assert "--seconds" in capsys.readouterr().out


def test_cli_types_messages_say_the_range():
    with pytest.raises(argparse.ArgumentTypeError, match=r"'nan' is not allowed: give a finite number with "
                                                         r"0 < value <= 5 \[s\]"):
        cli_types.finite_float(0, 5, low_open=True, unit="s")("nan")
    with pytest.raises(argparse.ArgumentTypeError, match=r"whole number in 1024\.\.65530 \(this command uses the "
                                                         r"ports up to port base \+ 5\)"):
        cli_types.port_base(5)("65531")


def test_policy_options_refuse_non_finite_numbers():
    from teleop.policy.cli import parse_options

    assert parse_options(["k=3", "gain=0.5", "name=nan-model"]) == {"k": 3, "gain": 0.5, "name": "nan-model"}
    for item in ("gain=nan", "gain=inf", "gain=-Infinity", "gain=1e999"):
        with pytest.raises(ConfigError, match=f"--option {item}"):
            parse_options([item])


def test_real_process_refuses_seconds_nan_quickly():
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "teleop.cli", "run", "--seconds", "nan"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "--seconds" in res.stderr and "'nan' is not allowed" in res.stderr, res.stderr
    assert time.monotonic() - t0 < 30
