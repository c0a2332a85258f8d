"""drivers/hid/mapping.py: strict parsing (errors name the key) and exact decoding of report bytes.

The report fixtures are written in the wire layouts pyspacemouse and robosuite document:
SpaceMouse combined report 1 (13 bytes), split reports 1 and 2 (7 bytes), button report 3, and
8-byte boot keyboard reports from a foot pedal.
"""

from __future__ import annotations

import copy
import struct
import tomllib

import numpy as np
import pytest

from drivers.hid.mapping import (
    HidState,
    decode_report,
    key_usage,
    load_mapping,
    parse_mapping,
    shipped_mappings,
)
from teleop.errors import ConfigError, DecodeError

S = 1 / 350  # SpaceMouse scale

# -- recorded report fixtures (hex, report ID first) ---------------------------------------------------------
# raw HID axes: x=+175, y=-350, z=-175, rx=+100, ry=-100, rz=+400 (device frame: y toward user, z down)
COMBINED_MIXED = "01 af 00 a2 fe 51 ff 64 00 9c ff 90 01"
SPLIT_T_MIXED = "01 af 00 a2 fe 51 ff"
SPLIT_R_MIXED = "02 64 00 9c ff 90 01"
COMBINED_REST = "01 00 00 00 00 00 00 00 00 00 00 00 00"
BUTTONS_LEFT = "03 01 00"
BUTTONS_RIGHT = "03 02 00"
BUTTONS_BOTH = "03 03 00"
BUTTONS_NONE = "03 00 00"
BUTTONS_PADDED = "03 02 00 00 00 00 00 00 00 00 00 00 00"  # Windows pads to the longest input report
# boot keyboard reports: modifiers, reserved, 6 keycodes (a=0x04, b=0x05, c=0x06)
PEDAL_A = "00 00 04 00 00 00 00 00"
PEDAL_AB = "00 00 04 05 00 00 00 00"
PEDAL_B = "00 00 05 00 00 00 00 00"
PEDAL_NONE = "00 00 00 00 00 00 00 00"
PEDAL_C_CTRL = "01 00 06 00 00 00 00 00"  # left ctrl held + c
PEDAL_ROLLOVER = "00 00 01 01 01 01 01 01"

# expected channels (our convention: x right, y forward, z up; y, z, ry, rz flip the raw sign)
MIXED = {"x": 175 * S, "y": 1.0, "z": 0.5, "rx": 100 * S, "ry": 100 * S, "rz": -1.0}


def b(hexstr: str) -> bytes:
    return bytes.fromhex(hexstr)


@pytest.fixture(scope="module")
def combined():
    return load_mapping("spacemouse")


@pytest.fixture(scope="module")
def split():
    return load_mapping("spacemouse_split")


@pytest.fixture(scope="module")
def pedal():
    return load_mapping("foot_pedal")


# -- shipped mappings ---------------------------------------------------------------------------------------
def test_shipped_mappings_parse_and_agree(combined, split, pedal):
    assert set(shipped_mappings()) >= {"spacemouse", "spacemouse_split", "foot_pedal"}
    assert combined.channel_names == split.channel_names == ("x", "y", "z", "rx", "ry", "rz")
    assert combined.button_names == split.button_names == ("left", "right")
    assert combined.outputs["led_on"] == b"\x04\x01" and combined.on_connect == ("led_on",)
    assert pedal.output == "buttons" and not pedal.numbered
    assert pedal.button_names == ("clutch", "intervene", "episode")
    ids = {(d.vendor_id, p) for d in combined.devices for p in d.product_ids}
    assert (0x256F, 0xC62E) in ids and (0x256F, 0xC652) in ids
    ids_split = {(d.vendor_id, p) for d in split.devices for p in d.product_ids}
    assert (0x046D, 0xC626) in ids_split and (0x256F, 0xC635) in ids_split and not ids & ids_split
    assert all(d.interface == 0 for d in pedal.devices)


# -- decoding -----------------------------------------------------------------------------------------------
def test_combined_report_decodes_exactly(combined):
    d = decode_report(combined, b(COMBINED_MIXED))
    assert d.report_id == 1 and d.pressed == frozenset() and d.covers == frozenset()
    assert d.axes == pytest.approx(MIXED, abs=1e-12)
    assert decode_report(combined, b(COMBINED_REST)).axes == {n: 0.0 for n in MIXED}


def test_split_reports_decode_exactly(split):
    t = decode_report(split, b(SPLIT_T_MIXED))
    r = decode_report(split, b(SPLIT_R_MIXED))
    assert t.axes == pytest.approx({k: MIXED[k] for k in ("x", "y", "z")}, abs=1e-12)
    assert r.axes == pytest.approx({k: MIXED[k] for k in ("rx", "ry", "rz")}, abs=1e-12)


def test_split_and_combined_give_the_same_channels(combined, split):
    a, s = HidState(combined), HidState(split)
    a.apply(decode_report(combined, b(COMBINED_MIXED)))
    s.apply(decode_report(split, b(SPLIT_T_MIXED)))
    assert s.channels[3:].tolist() == [0.0, 0.0, 0.0]  # rotation not seen yet
    s.apply(decode_report(split, b(SPLIT_R_MIXED)))
    np.testing.assert_array_equal(a.channels, s.channels)
    np.testing.assert_allclose(a.channels, [MIXED[n] for n in combined.channel_names], atol=1e-12)


@pytest.mark.parametrize("name", ["spacemouse", "spacemouse_split"])
def test_button_report_and_edges(name):
    m = load_mapping(name)
    st = HidState(m)
    assert decode_report(m, b(BUTTONS_LEFT)).pressed == {"left"}
    assert decode_report(m, b(BUTTONS_BOTH)).pressed == {"left", "right"}
    assert decode_report(m, b(BUTTONS_PADDED)).pressed == {"right"}
    steps = [(BUTTONS_LEFT, [("left", True)]), (BUTTONS_BOTH, [("right", True)]), (BUTTONS_BOTH, []),
             (BUTTONS_RIGHT, [("left", False)]), (BUTTONS_NONE, [("right", False)])]
    for rep, edges in steps:
        assert st.apply(decode_report(m, b(rep))) == edges, rep
    # an axis report does not touch the buttons
    st.apply(decode_report(m, b(BUTTONS_LEFT)))
    axis_report = COMBINED_REST if name == "spacemouse" else SPLIT_T_MIXED
    assert st.apply(decode_report(m, b(axis_report))) == [] and st.pressed == {"left"}


def test_pedal_keyboard_reports(pedal):
    assert decode_report(pedal, b(PEDAL_A)).pressed == {"clutch"}
    assert decode_report(pedal, b(PEDAL_AB)).pressed == {"clutch", "intervene"}
    assert decode_report(pedal, b(PEDAL_NONE)).pressed == frozenset()
    st = HidState(pedal)
    got = [st.apply(decode_report(pedal, b(r))) for r in (PEDAL_A, PEDAL_AB, PEDAL_B, PEDAL_NONE)]
    assert got == [[("clutch", True)], [("intervene", True)], [("clutch", False)], [("intervene", False)]]
    with pytest.raises(DecodeError) as ei:
        decode_report(pedal, b(PEDAL_ROLLOVER))
    assert ei.value.reason == "keyboard_rollover"


def test_pedal_modifier_keys_and_key_override(pedal):
    m = pedal.with_keys({"c": "episode", "left_ctrl": "clutch", "0x05": "intervene"})
    assert decode_report(m, b(PEDAL_C_CTRL)).pressed == {"episode", "clutch"}
    assert decode_report(m, b(PEDAL_B)).pressed == {"intervene"}
    assert decode_report(m, b(PEDAL_A)).pressed == frozenset()  # 'a' no longer mapped
    with pytest.raises(ConfigError, match="keys.shift_lock"):
        pedal.with_keys({"shift_lock": "x"})


@pytest.mark.parametrize("data,reason", [
    ("09 00 00", "unknown_report_id"),
    ("01 00 00 00 00 00 00", "bad_length"),  # a 7-byte report 1 on a combined device
    ("03", "bad_length"),
    ("", "empty_report"),
])
def test_unknown_id_and_wrong_length_are_decode_errors(combined, data, reason):
    with pytest.raises(DecodeError) as ei:
        decode_report(combined, b(data))
    assert ei.value.reason == reason


def test_pedal_wrong_length(pedal):
    with pytest.raises(DecodeError, match="bad_length"):
        decode_report(pedal, b(PEDAL_A)[:6])


# -- every axis type, scale/sign/offset/clamp, press_above ------------------------------------------------------
def _one_report_mapping(axes: list[dict], output: str = "pose", length: int = 9) -> dict:
    return {
        "mapping": {"name": "t", "output": output, "report_length": 16},
        "device": [{"vendor_id": 0x1234, "product_id": [1, 2]}],
        "report": [{"id": 7, "length": length, "axes": axes}],
    }


def test_axis_types_and_transform():
    axes = [
        {"name": "u8", "byte": 1, "type": "u8", "offset": 128, "scale": 0.5},
        {"name": "i8", "byte": 2, "type": "i8", "sign": -1},
        {"name": "u16le", "byte": 3, "type": "u16le"},
        {"name": "i16be", "byte": 5, "type": "i16be", "scale": 2, "clamp": [-100, 100]},
        {"name": "u16be", "byte": 7, "type": "u16be", "offset": 1.5},
    ]
    m = parse_mapping(_one_report_mapping(axes))
    data = bytes([7, 200, 0xFE]) + struct.pack("<H", 40000) + struct.pack(">h", -1000) + struct.pack(">H", 513)
    d = decode_report(m, data)
    assert d.axes == {"u8": 36.0, "i8": 2.0, "u16le": 40000.0, "i16be": -100.0, "u16be": 511.5}
    m2 = parse_mapping(_one_report_mapping([{"name": "v", "byte": 1, "type": "i16le"}], length=3))
    assert decode_report(m2, bytes([7]) + struct.pack("<h", -32768)).axes == {"v": -32768.0}


def test_press_above_turns_an_axis_into_a_button():
    m = parse_mapping(_one_report_mapping([{"name": "pedal", "byte": 1, "type": "u8", "scale": 0.00392156862745098,
                                            "press_above": 0.5}], output="buttons", length=2))
    assert m.button_names == ("pedal",)
    assert decode_report(m, bytes([7, 200])).pressed == {"pedal"}
    assert decode_report(m, bytes([7, 100])).pressed == frozenset()


def test_key_usage_table():
    assert key_usage("a") == ("key", 0x04) and key_usage("z") == ("key", 0x1D)
    assert key_usage("1") == ("key", 0x1E) and key_usage("0") == ("key", 0x27)
    assert key_usage("enter") == ("key", 0x28) and key_usage("space") == ("key", 0x2C)
    assert key_usage("f1") == ("key", 0x3A) and key_usage("f12") == ("key", 0x45) and key_usage("f13") == ("key", 0x68)
    assert key_usage("page_down") == ("key", 0x4E) and key_usage("kp_1") == ("key", 0x59)
    assert key_usage("left_ctrl") == ("modifier", 0) and key_usage("right_gui") == ("modifier", 7)
    assert key_usage("0x2C") == ("key", 0x2C) and key_usage("0xE1") == ("modifier", 1)
    with pytest.raises(ConfigError, match="usage ID"):
        key_usage("0x01")


# -- strict parsing: every error names the key ----------------------------------------------------------------
@pytest.fixture(scope="module")
def base_doc() -> dict:
    return tomllib.loads(shipped_mappings()["spacemouse"].read_text())


def _set(doc: dict, path: str, value) -> dict:
    """Set ``a.b[0].c`` in a deep copy; value ``DELETE`` removes the key."""
    doc = copy.deepcopy(doc)
    parts = path.replace("]", "").replace("[", ".").split(".")
    cur = doc
    for p in parts[:-1]:
        cur = cur[int(p)] if p.isdigit() else cur[p]
    last = parts[-1]
    if value is DELETE:
        del cur[last]
    else:
        cur[int(last) if last.isdigit() else last] = value
    return doc


DELETE = object()


@pytest.mark.parametrize("path,value,key", [
    ("extra", 1, "'extra'"),
    ("mapping.outptu", "pose", "'mapping.outptu'"),
    ("mapping.output", "joystick", "'mapping.output'"),
    ("mapping.report_length", "13", "'mapping.report_length'"),
    ("mapping.name", "has space", "'mapping.name'"),
    ("mapping.on_connect", ["blink"], "'mapping.on_connect'"),
    ("device[0].vendor", 1, "'device[0].vendor'"),
    ("device[0].vendor_id", 0x10000, "'device[0].vendor_id'"),
    ("device[1].product_id", "c63a", "'device[1].product_id'"),
    ("device[0].interface", True, "'device[0].interface'"),
    ("report[0].lenght", 13, "'report[0].lenght'"),
    ("report[0].id", 256, "'report[0].id'"),
    ("report[0].length", 14, "'report[0].length'"),
    ("report[0].min_length", 7, "'report[0].length'"),
    ("report[1].id", 1, "'report[1].id'"),
    ("report[0].axes[0].scal", 1.0, "'report[0].axes[0].scal'"),
    ("report[0].axes[1].type", "i32le", "'report[0].axes[1].type'"),
    ("report[0].axes[2].byte", 12, "'report[0].axes[2].byte'"),
    ("report[0].axes[2].byte", 0, "'report[0].axes[2].byte'"),
    ("report[0].axes[3].sign", 2, "'report[0].axes[3].sign'"),
    ("report[0].axes[3].scale", "fast", "'report[0].axes[3].scale'"),
    ("report[0].axes[3].scale", 0, "'report[0].axes[3].scale'"),
    ("report[0].axes[4].clamp", [1, -1], "'report[0].axes[4].clamp'"),
    ("report[0].axes[5].name", "x", "'report[0].axes[5].name'"),
    ("report[0].axes[0]", "x", "'report[0].axes[0]'"),
    ("report[1].buttons[0].bit", 8, "'report[1].buttons[0].bit'"),
    ("report[1].buttons[1].byte", 2, "'report[1].buttons[1].byte'"),
    ("report[1].buttons[1].colour", "red", "'report[1].buttons[1].colour'"),
    ("report[1].keyboard", {"keys": {"foo": "x"}}, "'report[1].keyboard.keys.foo'"),
    ("report[1].keyboard", {"keys": {"a": 3}}, "'report[1].keyboard.keys.a'"),
    ("report[1].keyboard", {"keys": {"a": "x"}, "first_key_byte": 1}, "'report[1].keyboard.first_key_byte'"),
    ("report[1].keyboard", {"keys": {"a": "x"}, "key_count": "6"}, "'report[1].keyboard.key_count'"),
    ("report[1].keyboard", {"kees": {}}, "'report[1].keyboard.kees'"),
    ("output.led_on.data", [4, 256], "'output.led_on.data'"),
    ("output.led_on.bytes", [4], "'output.led_on.bytes'"),
])
def test_parse_errors_name_the_key(base_doc, path, value, key):
    with pytest.raises(ConfigError) as ei:
        parse_mapping(_set(base_doc, path, value), where="HID mapping t.toml")
    msg = str(ei.value)
    assert key in msg and "t.toml" in msg, msg


@pytest.mark.parametrize("path,words", [
    ("mapping", "[mapping]"),
    ("device", "[[device]]"),
    ("report", "[[report]]"),
    ("mapping.output", "'mapping.output'"),
    ("device[0].product_id", "'device[0].product_id'"),
    ("report[1].min_length", "'report[1].length'"),
])
def test_missing_keys_are_named(base_doc, path, words):
    with pytest.raises(ConfigError, match=None) as ei:
        parse_mapping(_set(base_doc, path, DELETE))
    assert words in str(ei.value), str(ei.value)


def test_buttons_mapping_rejects_plain_axes(base_doc):
    with pytest.raises(ConfigError, match=r"'report\[0\].axes\[0\]'.*press_above"):
        parse_mapping(_set(base_doc, "mapping.output", "buttons"))


def test_unnumbered_report_must_be_alone(base_doc):
    with pytest.raises(ConfigError, match="only report"):
        parse_mapping(_set(base_doc, "report[1].id", DELETE))


def test_load_mapping_by_path_and_bad_names(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text(shipped_mappings()["foot_pedal"].read_text().replace('name = "foot_pedal"', 'name = "mine"'))
    assert load_mapping(str(p)).name == "mine"
    with pytest.raises(ConfigError, match="shipped mappings: .*foot_pedal"):
        load_mapping("spacemaus")
    with pytest.raises(ConfigError, match="does not exist"):
        load_mapping(str(tmp_path / "nope.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[mapping\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_mapping(str(bad))
