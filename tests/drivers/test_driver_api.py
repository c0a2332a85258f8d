"""The driver API: configs from options, the entry-point registry (with an external package),
the threaded base's error handling, and the built-in synthetic, replay and network drivers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from support.conformance import check_driver

from drivers.base import ThreadedDriver
from drivers.config import DriverConfig
from drivers.network import NetworkConfig, NetworkDriver
from drivers.network.conventions import AXES, KEYPOINT_LAYOUTS
from drivers.registry import available_drivers, create_driver, driver_class
from drivers.replay import ReplayConfig, ReplayDriver
from drivers.samples import HandSample, PoseSample, SampleSpec, sample_to_json
from drivers.synthetic import SyntheticConfig, SyntheticDriver
from teleop.bus import Bus, HandKeypoints, WristMatrix, WristPose
from teleop.errors import ConfigError, DeviceError, DeviceTimeoutError


@dataclass(frozen=True, kw_only=True)
class _Cfg(DriverConfig):
    port: str
    baud: int = 115200
    gain: float = 1.0
    mode: Literal["a", "b"] = "a"
    enabled: bool = True
    path: Path | None = None
    scale: tuple[float, ...] = (1.0, 1.0)


def test_config_from_option_strings():
    cfg = _Cfg.from_options({"port": "/dev/x", "baud": "9600", "gain": "0.5", "mode": "b", "enabled": "no",
                             "path": "/tmp/p", "scale": "1,2.5", "side": "left"})
    assert cfg == _Cfg(port="/dev/x", baud=9600, gain=0.5, mode="b", enabled=False, path=Path("/tmp/p"),
                       scale=(1.0, 2.5), side="left")
    for options, message in [
        ({"port": "x", "mode": "c"}, r"option 'mode' = 'c'; allowed values: \['a', 'b'\]"),
        ({"port": "x", "baud": "fast"}, "option 'baud' = 'fast'; expected int"),
        ({"port": "x", "baud": 9600.5}, "option 'baud' = 9600.5; expected int, a whole number"),
        ({"port": "x", "gain": "nan"}, "option 'gain' = 'nan'; expected a finite number"),
        ({"port": "x", "gain": float("inf")}, "option 'gain' = inf; expected a finite number"),
        ({"port": "x", "enabled": "maybe"}, "write true or false"),
        ({"port": "x", "colour": "red"}, "unknown option 'colour'; options:"),
        ({"baud": "1"}, "port"),
        ({"port": "x", "side": "middle"}, "allowed values"),
    ]:
        with pytest.raises(ConfigError, match=message):
            _Cfg.from_options(options)


def test_registry_lists_builtins_and_suggests():
    names = set(available_drivers())
    assert {"synthetic", "replay", "network", "opengloves", "hid", "spacemouse", "foot_pedal", "gelsight_mini"} <= names
    assert driver_class("synthetic") is SyntheticDriver
    with pytest.raises(ConfigError, match=r"did you mean \['synthetic'\]"):
        driver_class("synthetc")


def test_external_package_is_discovered_by_entry_point(tmp_path):
    pkg = tmp_path / "ext_glove"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(
        """
        import time
        from dataclasses import dataclass
        import numpy as np
        from drivers.base import ThreadedDriver
        from drivers.config import DriverConfig
        from drivers.samples import HandSample, SampleSpec

        @dataclass(frozen=True, kw_only=True)
        class ExtConfig(DriverConfig):
            side: str = "left"
            level: float = 0.5

        class ExtGloveDriver(ThreadedDriver):
            name = "ext_glove"
            config_class = ExtConfig
            description = "an external test glove"
            @property
            def sample_spec(self):
                return SampleSpec(kinds=("hand",), side=self.config.side, channel_names=("level",))
            def _open(self): pass
            def _close(self): pass
            def _read(self):
                time.sleep(0.01)
                return HandSample(side=self.config.side, capture_ns=time.monotonic_ns(), seq=self.next_seq(),
                                  channels=np.array([self.config.level]), source=self.name)
        """))
    dist = tmp_path / "ext_glove-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ext-glove\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[teleop.drivers]\next_glove = ext_glove:ExtGloveDriver\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    listed = subprocess.run([sys.executable, "-m", "teleop.cli", "drivers", "list"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert "ext_glove" in listed.stdout and "an external test glove" in listed.stdout
    echo = subprocess.run([sys.executable, "-m", "teleop.cli", "drivers", "echo", "ext_glove", "--level", "0.75",
                           "--seconds", "0.3", "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert echo.returncode == 0, echo.stderr
    lines = [json.loads(line) for line in echo.stdout.splitlines()]
    assert len(lines) >= 5 and lines[0]["channels"] == {"level": 0.75}
    # it fills only channels: echo says a session cannot drive a hand with that, once
    assert echo.stderr.count("teleop: warning: hand samples carry no keypoints (driver ext_glove fills only "
                             "channels): a session cannot drive a hand with them") == 1, echo.stderr


class _Flaky(ThreadedDriver):
    name = "flaky"

    def __init__(self, config=None, fail_after=3):
        super().__init__(config)
        self.fail_after = fail_after
        self.opens = 0
        self.reads = 0

    @property
    def sample_spec(self):
        return SampleSpec(kinds=("hand",))

    def _open(self):
        self.opens += 1
        if self.opens == 3:
            raise OSError("still unplugged")

    def _close(self):
        pass

    def _read(self):
        time.sleep(0.005)
        self.reads += 1
        if self.reads % (self.fail_after + 1) == 0:
            raise OSError("device unplugged")
        return HandSample(side="left", capture_ns=time.monotonic_ns(), seq=self.next_seq())


def test_threaded_driver_reconnects_or_reports():
    drv = _Flaky(DriverConfig(reconnect=True, reconnect_interval_s=0.01))
    with drv:
        got = [drv.get_sample(2.0) for _ in range(12)]
        assert [s.seq for s in got] == sorted(s.seq for s in got)
        h = drv.health()
        assert h.errors["device_lost"] >= 2 and h.errors["reconnect"] >= 2 and h.connected
    drv = _Flaky(DriverConfig(reconnect=False))
    drv.connect()
    try:
        with pytest.raises(DeviceError, match="the device stopped: OSError: device unplugged"):
            for _ in range(20):
                drv.get_sample(2.0)
    finally:
        drv.disconnect()


def test_synthetic_conformance_and_determinism():
    samples = check_driver(lambda: SyntheticDriver(SyntheticConfig(side="left", rate_hz=200)), kinds=("hand", "pose"))
    assert any(isinstance(s, HandSample) for s in samples) and any(isinstance(s, PoseSample) for s in samples)
    a = SyntheticDriver(SyntheticConfig(side="right", rate_hz=100))
    b = SyntheticDriver(SyntheticConfig(side="right", rate_hz=100))
    a._open(), b._open()
    for k in (0, 57, 400, 1900):
        for sa, sb in zip(a.sample_at(k), b.sample_at(k), strict=True):
            np.testing.assert_array_equal(getattr(sa, "keypoints", None) if isinstance(sa, HandSample) else sa.position_m,
                                          getattr(sb, "keypoints", None) if isinstance(sb, HandSample) else sb.position_m)
    # the scripted hand-over moves the wrists toward the middle and closes/opens the hands
    script = a._script
    _, p0, _ = script.at(0.0, "right")
    _, p1, _ = script.at(6.5, "right")
    assert p1[1] - p0[1] > 0.1  # the right wrist moved left, toward the other hand
    with pytest.raises(ConfigError, match="emit_hand and emit_pose are both false"):
        SyntheticConfig(emit_hand=False, emit_pose=False)


def test_echo_json_replays_identically(tmp_path):
    rec = tmp_path / "rec.jsonl"
    res = subprocess.run([sys.executable, "-m", "teleop.cli", "drivers", "echo", "synthetic", "--side", "left",
                          "--rate-hz", "200", "--seconds", "0.5", "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rec.write_text(res.stdout + "this is not json\n")
    recorded = [json.loads(line) for line in res.stdout.splitlines()]
    drv = ReplayDriver(ReplayConfig(path=rec, speed=4.0))
    with drv:
        replayed = [drv.get_sample(2.0) for _ in range(len(recorded))]
        assert drv.health().errors == {"bad_line": 1}
    for obj, s in zip(recorded, replayed, strict=True):
        assert sample_to_json(s)["kind"] == obj["kind"]
        if obj["kind"] == "hand":
            np.testing.assert_allclose(s.keypoints, obj["keypoints"])
    check_driver(lambda: ReplayDriver(ReplayConfig(path=rec, loop=True)), kinds=("hand", "pose"))
    with pytest.raises(DeviceError, match="does not exist"):
        ReplayDriver(ReplayConfig(path=tmp_path / "missing.jsonl")).connect()


def _publisher(endpoint: str, stop: threading.Event, messages) -> None:
    with Bus("test-publisher") as bus:
        pub = bus.publisher(endpoint, bind=False)
        while not stop.is_set():
            for topic, msg in messages:
                pub.publish(msg, topic)
            pub.send_raw([b"input/left/hand\0garbage"])
            time.sleep(0.005)


def test_network_driver_converts_yup_column_major_sources(port_base):
    endpoint = f"tcp://127.0.0.1:{port_base}"
    # a Y-up source: the wrist 1.2 m up (y), 0.3 m ahead (-z), rotated 90 deg about its up axis
    R_src = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R_src, [0.1, 1.2, -0.3]
    kp26 = np.random.default_rng(0).normal(size=(26, 3))
    messages = [("input/left/wrist", WristMatrix(side="left", matrix=T.T.ravel().copy())),  # column-major
                ("input/left/hand", HandKeypoints(side="left", keypoints=kp26))]
    cfg = NetworkConfig(endpoint=endpoint, side="left", axes="yup", matrix_layout="column_major",
                        keypoint_layout="openxr26", keypoint_frame="wrist")
    stop = threading.Event()
    t = threading.Thread(target=_publisher, args=(endpoint, stop, messages), daemon=True)
    drv = NetworkDriver(cfg)
    drv.connect()
    t.start()
    try:
        pose = None
        deadline = time.monotonic() + 5
        while pose is None and time.monotonic() < deadline:
            try:
                pose = drv.read_latest(1.0, "pose")
            except DeviceTimeoutError:
                time.sleep(0.01)
        hand = drv.read_latest(1.0, "hand")
        while drv.health().errors.get("rejected", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert drv.health().errors.get("rejected", 0) >= 1  # the garbage was counted, the stream goes on
    finally:
        stop.set()
        t.join(5)
        drv.disconnect()
    M = AXES["yup"]
    np.testing.assert_allclose(pose.position_m, [0.3, -0.1, 1.2], atol=1e-12)  # forward 0.3, right 0.1, up 1.2
    from retarget.kernels.poses import quat_to_mat

    R = np.zeros((3, 3))
    quat_to_mat(pose.quat_wxyz, R)
    np.testing.assert_allclose(R, M @ R_src @ M.T, atol=1e-9)
    assert abs(np.linalg.det(R) - 1) < 1e-9
    np.testing.assert_allclose(hand.keypoints, kp26[list(KEYPOINT_LAYOUTS["openxr26"])] @ M.T, atol=1e-12)


def test_network_conformance_and_unity_axes(port_base):
    from drivers.network.conventions import convert_pose

    # Unity (left-handed: x right, y up, z forward): a point 1 m forward, 0.5 m right is ours (1, -0.5, 0)
    p, r = convert_pose(np.array([0.5, 0.0, 1.0]), np.eye(3), "unity", "m")
    np.testing.assert_allclose(p, [1.0, -0.5, 0.0])
    assert abs(np.linalg.det(r) - 1) < 1e-12
    p, _ = convert_pose(np.array([100.0, 0.0, 0.0]), np.eye(3), "zup", "cm")
    np.testing.assert_allclose(p, [1.0, 0.0, 0.0])
    endpoint = f"tcp://127.0.0.1:{port_base + 1}"
    stop = threading.Event()
    msgs = [("input/right/wrist", WristPose(side="right", position=np.array([0.1, 0.2, 0.3]),
                                           quat_wxyz=np.array([1.0, 0.0, 0.0, 0.0])))]
    t = threading.Thread(target=_publisher, args=(endpoint, stop, msgs), daemon=True)
    t.start()
    try:
        check_driver(lambda: NetworkDriver(NetworkConfig(endpoint=endpoint, side="right")), kinds=("pose",))
    finally:
        stop.set()
        t.join(5)


def test_driver_factory_from_options():
    drv = create_driver("synthetic", {"side": "left", "rate-hz": "50"})
    assert isinstance(drv, SyntheticDriver) and drv.config.rate_hz == 50.0 and not drv.is_connected
