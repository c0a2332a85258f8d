"""The HID drivers (hid, spacemouse, foot_pedal) against a fake hidapi.

The seam: drivers/hid/hid.py reaches hidapi only through its module attribute ``hidapi`` (the
installed ``hid`` module). The ``backend`` fixture replaces it with ``fake_hid.FakeHidBackend``,
which implements the same subset (``enumerate``, ``device().open_path/set_nonblocking/read/write/
close``) and is fed the report bytes below, written in the layouts pyspacemouse and robosuite document.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from fake_hid import FakeHidBackend, FakeHidDevice
from support.conformance import check_driver

import drivers.hid.hid as hidmod
from drivers.hid.config_hid import FootPedalConfig, HidConfig, SpaceMouseConfig
from drivers.hid.hid import FootPedalDriver, HidDriver, SpaceMouseDriver, main
from drivers.registry import create_driver, driver_class
from drivers.samples import ButtonEvent, PoseSample
from teleop.errors import ConfigError, DeviceError

# -- report fixtures (hex, report ID first) -----------------------------------------------------------------
REST = "01 00 00 00 00 00 00 00 00 00 00 00 00"
MIXED = "01 af 00 a2 fe 51 ff 64 00 9c ff 90 01"  # x=+175 y=-350 z=-175 rx=+100 ry=-100 rz=+400 (raw)
SPLIT_T_MIXED, SPLIT_R_MIXED = "01 af 00 a2 fe 51 ff", "02 64 00 9c ff 90 01"
SPLIT_T_REST, SPLIT_R_REST = "01 00 00 00 00 00 00", "02 00 00 00 00 00 00"
BUTTONS_BOTH, BUTTONS_LEFT, BUTTONS_NONE = "03 03 00", "03 01 00", "03 00 00"
PEDAL_A, PEDAL_AB, PEDAL_B, PEDAL_NONE = (
    "00 00 04 00 00 00 00 00", "00 00 04 05 00 00 00 00", "00 00 05 00 00 00 00 00", "00 00 00 00 00 00 00 00")


def combined_axis(index: int, raw: int) -> str:
    """A combined report 1 with one raw axis set (0..5 = X, Y, Z, RX, RY, RZ in the device's HID frame)."""
    data = bytearray(13)
    data[0] = 1
    data[1 + 2 * index:3 + 2 * index] = raw.to_bytes(2, "little", signed=True)
    return data.hex(" ")


FAST = dict(reconnect_interval_s=0.05, presence_check_s=0.1)


@pytest.fixture
def backend(monkeypatch) -> FakeHidBackend:
    be = FakeHidBackend()
    monkeypatch.setattr(hidmod, "hidapi", be)
    be.add(vendor_id=0x046D, product_id=0xC52B, path="/dev/hidraw0", product_string="USB Receiver",
           manufacturer_string="Logitech", usage_page=0x01, usage=0x02)
    return be


def add_spacemouse(be: FakeHidBackend, path: str = "/dev/hidraw5", serial: str = "SM1", **kw) -> FakeHidDevice:
    return be.add(vendor_id=0x256F, product_id=0xC62E, path=path, product_string="SpaceMouse Wireless",
                  manufacturer_string="3Dconnexion", serial_number=serial, **kw)


def add_navigator(be: FakeHidBackend, path: str = "/dev/hidraw6") -> FakeHidDevice:
    return be.add(vendor_id=0x046D, product_id=0xC626, path=path, product_string="SpaceNavigator",
                  manufacturer_string="3Dconnexion")


def add_pedal(be: FakeHidBackend) -> FakeHidDevice:
    # the vendor configuration interface 1 is listed first; the driver must take interface 0
    be.add(vendor_id=0x0C45, product_id=0x7403, path="/dev/hidraw7", interface_number=1,
           product_string="FootSwitch", usage_page=0xFF00, usage=0x01)
    return be.add(vendor_id=0x0C45, product_id=0x7403, path="/dev/hidraw8", interface_number=0,
                  product_string="FootSwitch", manufacturer_string="PCsensor", usage_page=0x01, usage=0x06)


@pytest.fixture
def drivers():
    """Drivers made here are disconnected at teardown, whatever happens."""
    made: list = []

    def make(driver):
        made.append(driver)
        return driver

    yield make
    for d in made:
        d.disconnect()


def read_until(drv, pred: Callable[[list], bool], timeout_s: float = 3.0) -> list:
    got: list = []
    deadline = time.monotonic() + timeout_s
    while not pred(got):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met; got {got[-5:]}")
        try:
            got.append(drv.get_sample(0.05))
        except TimeoutError:
            pass
    return got


def wait_for(cond: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def presses(samples) -> list[tuple[str, bool]]:
    return [(s.button, s.pressed) for s in samples if isinstance(s, ButtonEvent)]


def poses(samples) -> list[PoseSample]:
    return [s for s in samples if isinstance(s, PoseSample)]


# -- conformance --------------------------------------------------------------------------------------------
def test_conformance_spacemouse(backend):
    dev = add_spacemouse(backend)
    check_driver(lambda: SpaceMouseDriver(SpaceMouseConfig(rate_hz=200, **FAST)), kinds=("pose",))
    # LED on at each connect, off at each disconnect
    assert dev.writes == [b"\x04\x01", b"\x04\x00"] * 2
    assert not backend.open_handles


def test_conformance_foot_pedal(backend):
    pedal = add_pedal(backend)
    pedal.repeat([PEDAL_A, PEDAL_NONE], interval_s=0.005)
    got = check_driver(lambda: FootPedalDriver(FootPedalConfig(**FAST)), kinds=("buttons",))
    assert {(s.button, s.pressed) for s in got} == {("clutch", True), ("clutch", False)}


def test_conformance_generic_hid_pose_and_buttons(backend):
    nav = add_navigator(backend)
    nav.repeat([SPLIT_T_MIXED, SPLIT_R_MIXED, BUTTONS_LEFT, BUTTONS_NONE], interval_s=0.003)
    got = check_driver(lambda: HidDriver(HidConfig(mapping="spacemouse_split", **FAST)), kinds=("pose", "buttons"))
    p = poses(got)[-1]
    assert p.frame == "hid" and p.position_m.tolist() == [0, 0, 0] and p.quat_wxyz.tolist() == [1, 0, 0, 0]
    assert len(p.channels) == 6
    pedal = add_pedal(backend)
    pedal.repeat([PEDAL_B, PEDAL_NONE], interval_s=0.005)
    check_driver(lambda: HidDriver(HidConfig(mapping="foot_pedal", **FAST)), kinds=("buttons",))


# -- SpaceMouse ---------------------------------------------------------------------------------------------
AXIS_CASES = [  # (raw axis index, raw value, pose component that must grow, name)
    (0, +350, ("pos", 0), "push right -> +x"),
    (1, -350, ("pos", 1), "push forward (raw y toward user is +) -> +y"),
    (2, -350, ("pos", 2), "lift (raw z down is +) -> +z"),
    (3, +350, ("rot", 0), "tilt about +x -> quat x > 0"),
    (4, -350, ("rot", 1), "tilt about +y -> quat y > 0"),
    (5, -350, ("rot", 2), "twist counter-clockwise seen from above -> quat z > 0"),
]


@pytest.mark.parametrize("index,raw,component,what", AXIS_CASES, ids=[c[3] for c in AXIS_CASES])
def test_spacemouse_axis_convention(backend, drivers, index, raw, component, what):
    dev = add_spacemouse(backend)
    drv = drivers(SpaceMouseDriver(SpaceMouseConfig(rate_hz=200, translation_speed_m_s=1.0, rotation_speed_rad_s=1.0,
                                                    deadband=0.0, **FAST)))
    drv.connect()
    dev.feed(combined_axis(index, raw))
    got = read_until(drv, lambda g: sum(1 for p in poses(g) if np.any(p.channels)) >= 10)
    p = poses(got)[-1]
    expected_channels = np.zeros(6)
    expected_channels[index] = 1.0
    np.testing.assert_allclose(p.channels, expected_channels, atol=1e-12)
    kind, axis = component
    vec = p.position_m if kind == "pos" else p.quat_wxyz[1:]
    assert vec[axis] > 0.01, (what, p)
    others = [i for i in range(3) if i != axis]
    assert np.all(vec[others] == 0.0), (what, p)
    if kind == "pos":
        np.testing.assert_array_equal(p.quat_wxyz, [1, 0, 0, 0])
    else:
        np.testing.assert_array_equal(p.position_m, [0, 0, 0])
    # back at rest: the pose stops moving
    dev.feed(REST)
    got = read_until(drv, lambda g: sum(1 for q in poses(g) if not np.any(q.channels)) >= 3)
    still = [q for q in poses(got) if not np.any(q.channels)]
    np.testing.assert_array_equal(still[0].position_m, still[-1].position_m)
    np.testing.assert_array_equal(still[0].quat_wxyz, still[-1].quat_wxyz)


def test_spacemouse_speed_and_deadband(backend, drivers):
    dev = add_spacemouse(backend)
    drv = drivers(SpaceMouseDriver(SpaceMouseConfig(rate_hz=200, translation_speed_m_s=0.5, deadband=0.1, **FAST)))
    drv.connect()
    dev.feed(combined_axis(0, 30))  # 30/350 = 0.086 < deadband
    got = read_until(drv, lambda g: sum(1 for p in poses(g) if p.channels[0] > 0) >= 5)
    assert poses(got)[-1].position_m.tolist() == [0.0, 0.0, 0.0]
    dev.feed(combined_axis(0, 350))
    t0 = time.monotonic()
    time.sleep(0.2)
    p = drv.read_latest()
    elapsed = time.monotonic() - t0
    # full deflection at 0.5 m/s for ~0.2 s (the pose is integrated at 200 Hz)
    assert 0.5 * 0.15 < p.position_m[0] < 0.5 * (elapsed + 0.05), p.position_m


def test_spacemouse_split_and_combined_give_the_same_channels(backend, drivers):
    sm, nav = add_spacemouse(backend), add_navigator(backend)
    a = drivers(SpaceMouseDriver(SpaceMouseConfig(path=sm.path, rate_hz=200, **FAST)))
    b = drivers(SpaceMouseDriver(SpaceMouseConfig(path=nav.path, rate_hz=200, **FAST)))
    a.connect()
    b.connect()
    assert a.sample_spec == b.sample_spec
    sm.feed(MIXED)
    nav.feed(SPLIT_T_MIXED, SPLIT_R_MIXED)
    pa = poses(read_until(a, lambda g: any(p.channels[5] != 0 for p in poses(g))))[-1]
    pb = poses(read_until(b, lambda g: any(p.channels[5] != 0 for p in poses(g))))[-1]
    np.testing.assert_array_equal(pa.channels, pb.channels)
    np.testing.assert_allclose(pa.channels, [175 / 350, 1.0, 0.5, 100 / 350, 100 / 350, -1.0], atol=1e-12)
    assert pa.source == "spacemouse:256f:c62e" and pb.source == "spacemouse:046d:c626"


def test_spacemouse_buttons_and_reset_combo(backend, drivers):
    dev = add_spacemouse(backend)
    start = (0.1, 0.2, 0.3)
    drv = drivers(SpaceMouseDriver(SpaceMouseConfig(rate_hz=200, translation_speed_m_s=1.0, start_position_m=start,
                                                    side="right", **FAST)))
    assert drv.sample_spec.button_names == ("left", "right", "reset_pose")
    drv.connect()
    dev.feed(combined_axis(0, 350))
    read_until(drv, lambda g: any(p.position_m[0] > 0.15 for p in poses(g)))
    dev.feed(BUTTONS_LEFT, BUTTONS_BOTH)
    got = read_until(drv, lambda g: ("reset_pose", True) in presses(g))
    assert presses(got) == [("left", True), ("right", True), ("reset_pose", True)]
    assert all(s.side == "right" for s in got)
    got = read_until(drv, lambda g: len(poses(g)) >= 5)
    assert all(p.position_m.tolist() == list(start) for p in poses(got))  # held at the start pose
    dev.feed(BUTTONS_NONE)
    got = read_until(drv, lambda g: ("reset_pose", False) in presses(g))
    assert presses(got) == [("left", False), ("right", False), ("reset_pose", False)]
    got = read_until(drv, lambda g: len(poses(g)) >= 3)
    assert poses(got)[-1].position_m[0] > start[0]  # still deflected: moving again from the start


def test_spacemouse_pose_persists_over_replug_and_resets_on_connect(backend, drivers):
    dev = add_spacemouse(backend)
    drv = drivers(SpaceMouseDriver(SpaceMouseConfig(rate_hz=200, translation_speed_m_s=1.0, **FAST)))
    drv.connect()
    dev.feed(combined_axis(0, 350))
    read_until(drv, lambda g: any(p.position_m[0] > 0.05 for p in poses(g)))
    dev.unplug()
    wait_for(lambda: drv.health().errors.get("device_lost", 0) >= 1)
    x_lost = drv.read_latest().position_m[0]
    dev.replug(path="/dev/hidraw9")
    wait_for(lambda: drv.health().errors.get("reconnect", 0) >= 1)
    got = read_until(drv, lambda g: len(poses(g)) >= 5)
    # same pose, no longer moving (velocity restarts at zero after a reconnect)
    assert [p.position_m[0] for p in poses(got)[-3:]] == [x_lost] * 3
    drv.disconnect()
    t_connect = time.monotonic_ns()
    drv.connect()
    # (ThreadedDriver keeps samples queued before a disconnect; skip those)
    fresh = poses(read_until(drv, lambda g: any(p.capture_ns > t_connect for p in poses(g))))[-1]
    assert fresh.position_m.tolist() == [0.0, 0.0, 0.0]


def test_spacemouse_led_failure_is_counted_not_fatal(backend, drivers):
    add_spacemouse(backend, accepts_output=False)
    drv = drivers(SpaceMouseDriver(SpaceMouseConfig(rate_hz=200, **FAST)))
    drv.connect()
    assert isinstance(drv.get_sample(1.0), PoseSample)
    assert drv.health().errors == {"output_failed": 1}
    assert "04 01" in drv.health().last_error
    led_off = drivers(SpaceMouseDriver(SpaceMouseConfig(rate_hz=200, led=False, **FAST)))
    led_off.connect()  # no write at all
    assert "output_failed" not in led_off.health().errors


def test_unknown_report_id_and_bad_length_are_counted(backend, drivers):
    dev = add_spacemouse(backend)
    drv = drivers(SpaceMouseDriver(SpaceMouseConfig(rate_hz=200, **FAST)))
    drv.connect()
    dev.feed("09 01 02", "01 00 00 00 00 00 00", "17", MIXED)
    read_until(drv, lambda g: any(p.channels[0] > 0 for p in poses(g)))
    errors = drv.health().errors
    assert errors["unknown_report_id"] == 2 and errors["bad_length"] == 1, errors
    assert drv.is_connected and drv.health().connected


# -- foot pedal ---------------------------------------------------------------------------------------------
def test_pedal_edges_become_button_events(backend, drivers):
    pedal = add_pedal(backend)
    drv = drivers(FootPedalDriver(FootPedalConfig(**FAST)))
    assert drv.sample_spec.kinds == ("buttons",)
    assert drv.sample_spec.button_names == ("clutch", "intervene", "episode")
    drv.connect()
    pedal.feed(PEDAL_A, PEDAL_A, PEDAL_AB, PEDAL_B, PEDAL_NONE, "00 00 06 00 00 00 00 00")
    got = read_until(drv, lambda g: len(g) >= 5)
    assert presses(got) == [("clutch", True), ("intervene", True), ("clutch", False), ("intervene", False),
                            ("episode", True)]
    assert [s.seq for s in got] == sorted(s.seq for s in got)
    assert {s.source for s in got} == {"foot_pedal:0c45:7403"}
    assert drv._info["interface_number"] == 0 and drv._info["path"] == b"/dev/hidraw8"


def test_pedal_keys_option(backend, drivers):
    pedal = add_pedal(backend)
    drv = drivers(create_driver("foot_pedal", {"keys": "b=clutch,left_shift=episode", **FAST}))
    assert drv.sample_spec.button_names == ("clutch", "episode")
    drv.connect()
    pedal.feed(PEDAL_A, PEDAL_B, "02 00 00 00 00 00 00 00")
    got = read_until(drv, lambda g: len(g) >= 3)
    assert presses(got) == [("clutch", True), ("clutch", False), ("episode", True)]


def test_unplug_releases_held_buttons_then_reconnects(backend, drivers):
    pedal = add_pedal(backend)
    drv = drivers(FootPedalDriver(FootPedalConfig(**FAST)))
    drv.connect()
    pedal.feed(PEDAL_A)
    assert presses(read_until(drv, lambda g: len(g) >= 1)) == [("clutch", True)]
    pedal.unplug()
    # the held clutch is released before the loss is reported
    assert presses(read_until(drv, lambda g: len(g) >= 1)) == [("clutch", False)]
    wait_for(lambda: drv.health().errors.get("device_lost", 0) == 1)
    assert drv.is_connected
    pedal.replug(path="/dev/hidraw12")  # replugged devices often get a new node
    wait_for(lambda: drv.health().errors.get("reconnect", 0) == 1)
    pedal.feed(PEDAL_B)
    assert presses(read_until(drv, lambda g: len(g) >= 1)) == [("intervene", True)]
    assert drv.health().connected and len(backend.open_handles) == 1


def test_silent_unplug_is_found_by_presence_check(backend, drivers):
    pedal = add_pedal(backend)
    drv = drivers(FootPedalDriver(FootPedalConfig(**FAST)))
    drv.connect()
    pedal.unplug(silent=True)  # reads just time out, but the OS no longer lists the device
    wait_for(lambda: drv.health().errors.get("device_lost", 0) == 1)
    assert "no longer listed" in drv.health().last_error or "reconnect" in drv.health().last_error
    pedal.replug()
    wait_for(lambda: drv.health().errors.get("reconnect", 0) == 1)
    pedal.feed(PEDAL_A)
    assert presses(read_until(drv, lambda g: len(g) >= 1)) == [("clutch", True)]


def test_no_reconnect_means_the_error_surfaces(backend, drivers):
    pedal = add_pedal(backend)
    drv = drivers(FootPedalDriver(FootPedalConfig(reconnect=False)))
    drv.connect()
    pedal.unplug()
    with pytest.raises(DeviceError, match="read error"):
        read_until(drv, lambda g: False)


# -- finding and opening the device -------------------------------------------------------------------------
def test_not_found_lists_connected_devices_and_udev(backend):
    add_navigator(backend)  # a SpaceMouse, but not one the foot_pedal mapping knows
    drv = FootPedalDriver(FootPedalConfig())
    with pytest.raises(DeviceError) as ei:
        drv.connect()
    msg = str(ei.value)
    assert "no matching HID device" in msg and "0c45:7403,7404 interface 0" in msg
    assert "046d:c52b" in msg and "'USB Receiver'" in msg and "/dev/hidraw0" in msg
    assert "046d:c626" in msg and "'SpaceNavigator'" in msg
    assert "udev" in msg and 'ATTRS{idVendor}=="0c45"' in msg and 'TAG+="uaccess"' in msg
    assert not drv.is_connected and not backend.open_handles


def test_spacemouse_not_found_names_both_layouts(backend):
    with pytest.raises(DeviceError) as ei:
        SpaceMouseDriver().connect()
    msg = str(ei.value)
    assert "spacemouse, spacemouse_split" in msg and "256f:c62e" in msg and "046d:c626" in msg


def test_open_failure_explains_permissions(backend):
    add_spacemouse(backend, deny_open=True)
    with pytest.raises(DeviceError) as ei:
        SpaceMouseDriver().connect()
    msg = str(ei.value)
    assert "cannot open" in msg and "open failed" in msg and "udev" in msg and "3DconnexionHelper" in msg


def test_path_and_serial_select_among_identical_devices(backend, drivers):
    a = add_spacemouse(backend, path="/dev/hidraw5", serial="AAA")
    b = add_spacemouse(backend, path="/dev/hidraw9", serial="BBB")
    by_serial = drivers(SpaceMouseDriver(SpaceMouseConfig(serial="BBB")))
    by_serial.connect()
    assert by_serial._info["path"] == b"/dev/hidraw9" and b.opens == 1 and a.opens == 0
    by_path = drivers(SpaceMouseDriver(SpaceMouseConfig(path="/dev/hidraw5")))
    by_path.connect()
    assert a.opens == 1
    first = drivers(SpaceMouseDriver())
    first.connect()
    assert first._info["path"] == b"/dev/hidraw5"
    with pytest.raises(DeviceError, match=r"serial 'ZZZ' \(matching devices have \['AAA', 'BBB'\]\)"):
        SpaceMouseDriver(SpaceMouseConfig(serial="ZZZ")).connect()
    with pytest.raises(DeviceError, match="no HID device at path '/dev/hidraw77'"):
        SpaceMouseDriver(SpaceMouseConfig(path="/dev/hidraw77")).connect()
    with pytest.raises(DeviceError, match="USB Receiver.*does not describe"):
        SpaceMouseDriver(SpaceMouseConfig(path="/dev/hidraw0")).connect()


def test_missing_or_wrong_hid_module(monkeypatch):
    monkeypatch.setattr(hidmod, "hidapi", None)
    with pytest.raises(DeviceError, match="pip install hidapi"):
        SpaceMouseDriver().connect()

    class CtypesHid:  # the other PyPI package named `hid` has Device, not device
        __file__ = "/x/hid/__init__.py"

        def Device(self):  # noqa: N802
            raise AssertionError

        def enumerate(self):
            return []

    monkeypatch.setattr(hidmod, "hidapi", CtypesHid())
    with pytest.raises(DeviceError, match="pip uninstall hid"):
        SpaceMouseDriver().connect()


# -- configuration ------------------------------------------------------------------------------------------
def test_config_errors():
    with pytest.raises(ConfigError, match="mapping="):
        HidDriver()
    with pytest.raises(ConfigError, match="shipped mappings"):
        HidDriver(HidConfig(mapping="spacemaus"))
    with pytest.raises(ConfigError, match="reset_buttons.*menu"):
        SpaceMouseDriver(SpaceMouseConfig(reset_buttons=("menu",)))
    with pytest.raises(ConfigError, match="exactly the axes"):
        SpaceMouseDriver(SpaceMouseConfig(mapping="foot_pedal"))
    with pytest.raises(ConfigError, match="output = 'buttons'"):
        FootPedalDriver(FootPedalConfig(mapping="spacemouse"))
    with pytest.raises(ConfigError, match="key=button"):
        FootPedalConfig(keys=("a",))
    with pytest.raises(ConfigError, match="unknown key 'q1'"):
        FootPedalDriver(FootPedalConfig(keys=("q1=clutch",)))
    with pytest.raises(ConfigError, match="deadband"):
        SpaceMouseConfig(deadband=1.0)
    with pytest.raises(ConfigError, match="unit quaternion"):
        SpaceMouseConfig(start_quat_wxyz=(1.0, 1.0, 0.0, 0.0))
    with pytest.raises(ConfigError, match="path=.*serial="):
        HidConfig(mapping="spacemouse", path="/dev/hidraw1", serial="x")
    with pytest.raises(ConfigError, match="rotation_frame"):
        SpaceMouseConfig.from_options({"rotation_frame": "tool"})


def test_entry_points_and_options():
    assert driver_class("hid") is HidDriver
    assert driver_class("spacemouse") is SpaceMouseDriver
    assert driver_class("foot_pedal") is FootPedalDriver
    drv = create_driver("spacemouse", {"start-position-m": "0.3,0,0.2", "rate-hz": "50", "side": "left"})
    assert drv.config.start_position_m == (0.3, 0.0, 0.2) and drv.sample_spec.side == "left"
    assert drv.sample_spec.channel_names == ("x", "y", "z", "rx", "ry", "rz") and drv.sample_spec.rate_hz == 50


def test_world_and_body_rotation_frames_differ(backend, drivers):
    # start yawed 90 deg about z; a tilt about +x is about the desk's x (world) or the pose's x (body)
    s = np.sqrt(0.5)
    results = {}
    for frame in ("world", "body"):
        dev = add_spacemouse(backend, path=f"/dev/hidraw-{frame}")
        drv = drivers(SpaceMouseDriver(SpaceMouseConfig(path=dev.path, rate_hz=200, deadband=0.0, rotation_frame=frame,
                                                        start_quat_wxyz=(s, 0.0, 0.0, s), **FAST)))
        drv.connect()
        dev.feed(combined_axis(3, 350))
        results[frame] = poses(read_until(drv, lambda g: sum(1 for p in poses(g) if p.channels[3]) >= 5))[-1].quat_wxyz
    q0_inv = np.array([s, 0.0, 0.0, -s])
    # the rotation done, expressed in the desk frame: q * q0^-1
    w = hidmod._quat_mul(results["world"], q0_inv)
    b = hidmod._quat_mul(results["body"], q0_inv)
    # world: about the desk's +x; body: about the pose's +x, which the 90 deg yaw turned onto the desk's +y
    assert w[1] > 0.01 and abs(w[2]) < 1e-9 and abs(w[3]) < 1e-9, w
    assert b[2] > 0.01 and abs(b[1]) < 1e-9 and abs(b[3]) < 1e-9, b


# -- the helper command line ----------------------------------------------------------------------------------
def test_cli_list_dump_udev(backend, capsys):
    dev = add_spacemouse(backend)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "256f:c62e" in out and "<- mapping spacemouse" in out and "046d:c52b" in out
    dev.feed(MIXED, "03 01 00")
    assert main(["dump", "--id", "256f:c62e", "--count", "2", "--mapping", "spacemouse"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("01 af 00 a2 fe 51 ff 64 00 9c ff 90 01  -> {'x': 0.5, 'y': 1.0, 'z': 0.5, 'rx': 0.2857, "
                           "'ry': 0.2857, 'rz': -1.0} pressed=[]")
    assert out[1].endswith("pressed=['left']")
    assert main(["udev", "foot_pedal"]) == 0
    out = capsys.readouterr().out
    assert 'ATTRS{idVendor}=="0c45", ATTRS{idProduct}=="7403"' in out and "udevadm" in out
