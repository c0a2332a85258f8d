"""Declarative HID mappings: a TOML file -> a decoder of raw report bytes. Pure: no device I/O.

A mapping says which devices it fits (vendor/product IDs, optionally interface, usage page/usage,
product string), how long one input report may be, and, per report ID, where the axes, button
bits and keyboard keycodes sit. ``decode_report`` turns the bytes of one report into named axis
values and the set of buttons held; ``HidState`` merges successive reports (split devices send
translation and rotation in different reports) and yields button edges. The file format is
documented in docs/hid-mappings.md; every key is checked, and a wrong one is a ``ConfigError``
naming it.

Example (one report, ID 1, two axes and a button)::

    [mapping]
    name = "my_stick"
    output = "pose"          # "pose": axes become PoseSample.channels; "buttons": ButtonEvents only
    report_length = 7        # bytes asked for per read (the longest input report, ID byte included)

    [[device]]
    vendor_id = 0x1234
    product_id = [0x0001, 0x0002]

    [[report]]
    id = 1
    length = 7
    axes = [{ name = "x", byte = 1, type = "i16le", scale = 0.001, sign = 1, offset = 0 }]
    buttons = [{ name = "trigger", byte = 5, bit = 0 }]
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from teleop.errors import ConfigError, DecodeError
from teleop.tomlcfg import check_keys, get, load_toml

__all__ = [
    "AxisType",
    "OutputKind",
    "AxisField",
    "ButtonBit",
    "KeyboardField",
    "ReportSpec",
    "DeviceMatch",
    "HidMapping",
    "Decoded",
    "HidState",
    "KEY_USAGES",
    "MODIFIER_BITS",
    "parse_mapping",
    "load_mapping",
    "shipped_mappings",
    "resolve_mapping_path",
    "decode_report",
    "key_usage",
]

AxisType = Literal["u8", "i8", "u16le", "i16le", "u16be", "i16be"]
OutputKind = Literal["pose", "buttons"]

_AXIS_FORMATS: dict[str, str] = {"u8": "<B", "i8": "<b", "u16le": "<H", "i16le": "<h", "u16be": ">H", "i16be": ">h"}
_OUTPUTS = ("pose", "buttons")


def _usage_table() -> dict[str, int]:
    """Key name -> USB HID usage ID on the Keyboard/Keypad page (0x07), HID Usage Tables 1.4 ch. 10."""
    t: dict[str, int] = {}
    for i, c in enumerate("abcdefghijklmnopqrstuvwxyz"):
        t[c] = 0x04 + i
    for i, c in enumerate("123456789"):
        t[c] = 0x1E + i
    t["0"] = 0x27
    for name, code in [
        ("enter", 0x28), ("escape", 0x29), ("backspace", 0x2A), ("tab", 0x2B), ("space", 0x2C),
        ("minus", 0x2D), ("equal", 0x2E), ("left_bracket", 0x2F), ("right_bracket", 0x30),
        ("backslash", 0x31), ("non_us_hash", 0x32), ("semicolon", 0x33), ("apostrophe", 0x34),
        ("grave", 0x35), ("comma", 0x36), ("period", 0x37), ("slash", 0x38), ("caps_lock", 0x39),
        ("print_screen", 0x46), ("scroll_lock", 0x47), ("pause", 0x48), ("insert", 0x49), ("home", 0x4A),
        ("page_up", 0x4B), ("delete", 0x4C), ("end", 0x4D), ("page_down", 0x4E), ("right", 0x4F),
        ("left", 0x50), ("down", 0x51), ("up", 0x52), ("num_lock", 0x53), ("kp_slash", 0x54),
        ("kp_asterisk", 0x55), ("kp_minus", 0x56), ("kp_plus", 0x57), ("kp_enter", 0x58),
        ("kp_0", 0x62), ("kp_period", 0x63), ("application", 0x65),
    ]:
        t[name] = code
    for i in range(1, 10):
        t[f"kp_{i}"] = 0x58 + i
    for i in range(1, 13):
        t[f"f{i}"] = 0x39 + i
    for i in range(13, 25):
        t[f"f{i}"] = 0x68 + (i - 13)
    return t


#: Key name -> usage ID (Keyboard/Keypad page). Modifiers are bits of the modifier byte instead.
KEY_USAGES: dict[str, int] = _usage_table()
#: Modifier name -> bit in the modifier byte (byte 0 of a boot keyboard report).
MODIFIER_BITS: dict[str, int] = {
    "left_ctrl": 0, "left_shift": 1, "left_alt": 2, "left_gui": 3,
    "right_ctrl": 4, "right_shift": 5, "right_alt": 6, "right_gui": 7,
}
# Keycodes 0x01..0x03 fill every slot when the keyboard cannot tell which keys are down.
_ERROR_CODES = frozenset({0x01, 0x02, 0x03})


def key_usage(name: str) -> tuple[Literal["key", "modifier"], int]:
    """``"a"`` -> ("key", 0x04); ``"left_ctrl"`` -> ("modifier", 0); ``"0x2c"`` -> ("key", 0x2C)."""
    low = name.strip().lower()
    if low in MODIFIER_BITS:
        return "modifier", MODIFIER_BITS[low]
    if low in KEY_USAGES:
        return "key", KEY_USAGES[low]
    if low.startswith("0x"):
        try:
            code = int(low, 16)
        except ValueError:
            code = -1
        if 0xE0 <= code <= 0xE7:
            return "modifier", code - 0xE0
        if 0x04 <= code <= 0xDF:
            return "key", code
    raise ConfigError(
        f"unknown key {name!r}; use a key name such as 'a', '1', 'f1', 'space', 'enter', 'page_down', "
        f"'left_ctrl' (full list in docs/hid-mappings.md) or a USB HID usage ID such as '0x04'"
    )


# -- the parsed mapping -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AxisField:
    """``value = sign * scale * (raw - offset)``, then clamped to ``clamp`` if given. ``press_above``
    turns the axis into a button of the same name, held while ``value > press_above``."""

    name: str
    byte: int
    type: AxisType
    scale: float = 1.0
    sign: int = 1
    offset: float = 0.0
    clamp: tuple[float, float] | None = None
    press_above: float | None = None

    @property
    def size(self) -> int:
        return struct.calcsize(_AXIS_FORMATS[self.type])


@dataclass(frozen=True)
class ButtonBit:
    name: str
    byte: int
    bit: int


@dataclass(frozen=True)
class KeyboardField:
    """A keyboard report: a modifier bitmap byte and ``key_count`` keycode slots (boot layout:
    modifiers at byte 0, reserved byte 1, keycodes at bytes 2..7; each one byte later when the
    report starts with a report ID). ``keys`` maps usage ID -> button,
    ``modifiers`` maps modifier bit -> button."""

    keys: dict[int, str]
    modifiers: dict[int, str] = field(default_factory=dict)
    modifier_byte: int = 0
    first_key_byte: int = 2
    key_count: int = 6

    @property
    def button_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.keys.values(), *self.modifiers.values()]))


@dataclass(frozen=True)
class ReportSpec:
    """One input report. ``id`` is its first byte (None: the device sends no report IDs and byte
    offsets count from the report's first data byte). Accepted sizes: exactly ``length``, or at
    least ``min_length``."""

    id: int | None
    length: int | None
    min_length: int | None
    axes: tuple[AxisField, ...] = ()
    buttons: tuple[ButtonBit, ...] = ()
    keyboard: KeyboardField | None = None

    @property
    def button_names(self) -> tuple[str, ...]:
        names = [b.name for b in self.buttons] + [a.name for a in self.axes if a.press_above is not None]
        if self.keyboard is not None:
            names += list(self.keyboard.button_names)
        return tuple(dict.fromkeys(names))

    @property
    def channel_axes(self) -> tuple[AxisField, ...]:
        return self.axes

    def accepts_length(self, n: int) -> bool:
        return n == self.length if self.length is not None else n >= (self.min_length or 0)


@dataclass(frozen=True)
class DeviceMatch:
    vendor_id: int
    product_ids: tuple[int, ...]
    name: str = ""
    interface: int | None = None
    usage_page: int | None = None
    usage: int | None = None
    product: str | None = None  # case-insensitive substring of the product string

    def matches(self, info: dict[str, Any]) -> bool:
        """``info`` is one dict from ``hid.enumerate()``."""
        if info.get("vendor_id") != self.vendor_id or info.get("product_id") not in self.product_ids:
            return False
        if self.interface is not None and info.get("interface_number") != self.interface:
            return False
        if self.usage_page is not None and info.get("usage_page") != self.usage_page:
            return False
        if self.usage is not None and info.get("usage") != self.usage:
            return False
        if self.product is not None and self.product.lower() not in str(info.get("product_string") or "").lower():
            return False
        return True

    def describe(self) -> str:
        pids = ",".join(f"{p:04x}" for p in self.product_ids)
        extra = "".join([
            f" interface {self.interface}" if self.interface is not None else "",
            f" usage {self.usage_page or 0:#06x}:{self.usage or 0:#06x}" if self.usage_page is not None else "",
            f" product~{self.product!r}" if self.product else "",
        ])
        return f"{self.vendor_id:04x}:{pids}{extra}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class HidMapping:
    name: str
    output: OutputKind
    report_length: int
    devices: tuple[DeviceMatch, ...]
    reports: dict[int | None, ReportSpec]
    outputs: dict[str, bytes] = field(default_factory=dict)  # output report name -> bytes (ID first)
    on_connect: tuple[str, ...] = ()
    on_disconnect: tuple[str, ...] = ()
    description: str = ""
    source: str = ""  # file it came from

    @property
    def numbered(self) -> bool:
        """True if reports carry an ID in their first byte."""
        return None not in self.reports

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Axis names in file order (the order of ``HidState.channels`` and PoseSample.channels)."""
        return tuple(a.name for r in self.reports.values() for a in r.axes)

    @property
    def button_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for r in self.reports.values() for n in r.button_names))

    def match(self, info: dict[str, Any]) -> DeviceMatch | None:
        for d in self.devices:
            if d.matches(info):
                return d
        return None

    def with_keys(self, keys: dict[str, str]) -> HidMapping:
        """A copy whose keyboard report(s) use ``keys`` (key name -> button name) instead."""
        table, mods = _parse_key_table(keys, f"mapping {self.name}", "keys.")
        kb_reports = [rid for rid, r in self.reports.items() if r.keyboard is not None]
        if not kb_reports:
            raise ConfigError(f"mapping {self.name!r} has no keyboard report; 'keys' cannot apply to it")
        reports = dict(self.reports)
        for rid in kb_reports:
            kb = reports[rid].keyboard
            assert kb is not None
            reports[rid] = replace(reports[rid], keyboard=replace(kb, keys=table, modifiers=mods))
        return replace(self, reports=reports)


# -- parsing --------------------------------------------------------------------------------------------
_MAPPING_KEYS = {"name", "description", "output", "report_length", "on_connect", "on_disconnect"}
_DEVICE_KEYS = {"name", "vendor_id", "product_id", "interface", "usage_page", "usage", "product"}
_REPORT_KEYS = {"id", "length", "min_length", "axes", "buttons", "keyboard"}
_AXIS_KEYS = {"name", "byte", "type", "scale", "sign", "offset", "clamp", "press_above"}
_BUTTON_KEYS = {"name", "byte", "bit"}
_KEYBOARD_KEYS = {"keys", "modifier_byte", "first_key_byte", "key_count"}
_OUTPUT_KEYS = {"data"}
_TOP_KEYS = {"mapping", "device", "report", "output"}


def _opt_int(table: dict[str, Any], key: str, where: str, prefix: str, low: int, high: int) -> int | None:
    value = get(table, key, int, where, prefix, required=False)
    if value is not None and not low <= value <= high:
        raise ConfigError(f"{where}: key '{prefix}{key}' must be in {low}..{high}, got {value}")
    return value


def _int(table: dict[str, Any], key: str, where: str, prefix: str, low: int, high: int,
         default: int | None = None) -> int:
    """Required unless ``default`` is given."""
    if key not in table and default is not None:
        return default
    if key not in table:
        raise ConfigError(f"{where}: missing key '{prefix}{key}'")
    value = _opt_int(table, key, where, prefix, low, high)
    assert value is not None
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(table: dict[str, Any], key: str, where: str, prefix: str, default: float | None) -> float | None:
    value = get(table, key, (int, float), where, prefix, required=False)
    return default if value is None else float(value)


def _name(table: dict[str, Any], key: str, where: str, prefix: str) -> str:
    value = get(table, key, str, where, prefix)
    if not value or not value.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{where}: key '{prefix}{key}' must be a name of letters, digits, '_' or '-', got {value!r}")
    return value


def _list(table: dict[str, Any], key: str, where: str, prefix: str) -> list[Any]:
    value = table.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{where}: key '{prefix}{key}' must be a list, got {value!r}")
    return value


def _parse_key_table(keys: Any, where: str, prefix: str) -> tuple[dict[int, str], dict[int, str]]:
    if not isinstance(keys, dict) or not keys:
        raise ConfigError(f"{where}: key '{prefix.rstrip('.')}' must be a table of key name = button name, "
                          f"got {keys!r}")
    table: dict[int, str] = {}
    mods: dict[int, str] = {}
    for key_name, button in keys.items():
        if not isinstance(button, str) or not button:
            raise ConfigError(f"{where}: key '{prefix}{key_name}' must be a button name (a string), got {button!r}")
        try:
            kind, code = key_usage(key_name)
        except ConfigError as exc:
            raise ConfigError(f"{where}: key '{prefix}{key_name}': {exc}") from None
        target = mods if kind == "modifier" else table
        if code in target:
            raise ConfigError(f"{where}: key '{prefix}{key_name}' names the same key as another entry")
        target[code] = button
    return table, mods


def _parse_axis(t: Any, where: str, prefix: str) -> AxisField:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.')}' must be a table {{ name, byte, type, ... }}, got {t!r}")
    check_keys(t, _AXIS_KEYS, where, prefix)
    typ = get(t, "type", str, where, prefix)
    if typ not in _AXIS_FORMATS:
        raise ConfigError(f"{where}: key '{prefix}type' = {typ!r}; allowed values: {list(_AXIS_FORMATS)}")
    sign = get(t, "sign", int, where, prefix, required=False)
    if sign not in (None, 1, -1):
        raise ConfigError(f"{where}: key '{prefix}sign' must be 1 or -1, got {sign!r}")
    scale = _num(t, "scale", where, prefix, 1.0) or 0.0
    if scale == 0:
        raise ConfigError(f"{where}: key '{prefix}scale' must not be 0")
    clamp = t.get("clamp")
    if clamp is not None:
        if (not isinstance(clamp, list) or len(clamp) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in clamp)
                or not clamp[0] < clamp[1]):
            raise ConfigError(f"{where}: key '{prefix}clamp' must be [low, high] with low < high, got {clamp!r}")
        clamp = (float(clamp[0]), float(clamp[1]))
    return AxisField(
        name=_name(t, "name", where, prefix),
        byte=_int(t, "byte", where, prefix, 0, 4095),
        type=typ,
        scale=scale,
        sign=1 if sign is None else sign,
        offset=_num(t, "offset", where, prefix, 0.0) or 0.0,
        clamp=clamp,
        press_above=_num(t, "press_above", where, prefix, None),
    )


def _parse_button(t: Any, where: str, prefix: str) -> ButtonBit:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.')}' must be a table {{ name, byte, bit }}, got {t!r}")
    check_keys(t, _BUTTON_KEYS, where, prefix)
    return ButtonBit(
        name=_name(t, "name", where, prefix),
        byte=_int(t, "byte", where, prefix, 0, 4095),
        bit=_int(t, "bit", where, prefix, 0, 7),
    )


def _parse_keyboard(t: Any, where: str, prefix: str, base: int) -> KeyboardField:
    """``base``: first data byte (1 when the report has an ID); the boot-layout defaults count from it."""
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: key '{prefix.rstrip('.')}' must be a table, got {t!r}")
    check_keys(t, _KEYBOARD_KEYS, where, prefix)
    if "keys" not in t:
        raise ConfigError(f"{where}: missing key '{prefix}keys' (e.g. keys = {{ a = \"clutch\" }})")
    keys, mods = _parse_key_table(t["keys"], where, prefix + "keys.")
    return KeyboardField(
        keys=keys,
        modifiers=mods,
        modifier_byte=_int(t, "modifier_byte", where, prefix, 0, 4095, default=base),
        first_key_byte=_int(t, "first_key_byte", where, prefix, 0, 4095, default=base + 2),
        key_count=_int(t, "key_count", where, prefix, 1, 64, default=6),
    )


def _parse_report(t: Any, where: str, prefix: str, report_length: int) -> ReportSpec:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.')}' must be a table ([[report]]), got {t!r}")
    check_keys(t, _REPORT_KEYS, where, prefix)
    rid = _opt_int(t, "id", where, prefix, 0, 255)
    length = _opt_int(t, "length", where, prefix, 1, report_length)
    min_length = _opt_int(t, "min_length", where, prefix, 1, report_length)
    if (length is None) == (min_length is None):
        raise ConfigError(f"{where}: give exactly one of '{prefix}length' (exact size) or '{prefix}min_length'")
    size = length if length is not None else min_length
    assert size is not None
    axes = tuple(_parse_axis(a, where, f"{prefix}axes[{i}].") for i, a in enumerate(_list(t, "axes", where, prefix)))
    buttons = tuple(_parse_button(b, where, f"{prefix}buttons[{i}].")
                    for i, b in enumerate(_list(t, "buttons", where, prefix)))
    first_data = 0 if rid is None else 1
    keyboard = _parse_keyboard(t["keyboard"], where, prefix + "keyboard.", first_data) if "keyboard" in t else None
    for i, a in enumerate(axes):
        if a.byte < first_data or a.byte + a.size > size:
            raise ConfigError(f"{where}: key '{prefix}axes[{i}].byte' = {a.byte}: a {a.type} there does not fit in "
                              f"bytes {first_data}..{size - 1} of this report")
    for i, b in enumerate(buttons):
        if not first_data <= b.byte < size:
            raise ConfigError(f"{where}: key '{prefix}buttons[{i}].byte' = {b.byte} is outside bytes "
                              f"{first_data}..{size - 1}")
    if keyboard is not None:
        if not first_data <= keyboard.modifier_byte < size:
            raise ConfigError(f"{where}: key '{prefix}keyboard.modifier_byte' = {keyboard.modifier_byte} "
                              "is outside the report")
        if keyboard.first_key_byte < first_data or keyboard.first_key_byte + keyboard.key_count > size:
            raise ConfigError(f"{where}: key '{prefix}keyboard.first_key_byte' = {keyboard.first_key_byte} with "
                              f"{keyboard.key_count} keycodes does not fit in a {size}-byte report")
    if not axes and not buttons and keyboard is None:
        raise ConfigError(f"{where}: report '{prefix.rstrip('.')}' declares no axes, buttons or keyboard")
    return ReportSpec(id=rid, length=length, min_length=min_length, axes=axes, buttons=buttons, keyboard=keyboard)


def _parse_device(t: Any, where: str, prefix: str) -> DeviceMatch:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: '{prefix.rstrip('.')}' must be a table ([[device]]), got {t!r}")
    check_keys(t, _DEVICE_KEYS, where, prefix)
    pid = t.get("product_id")
    pids: list[Any] = pid if isinstance(pid, list) else [pid]
    if pid is None or not pids or not all(_is_int(p) and 0 <= p <= 0xFFFF for p in pids):
        raise ConfigError(f"{where}: key '{prefix}product_id' must be an integer 0..0xFFFF or a list of them, "
                          f"got {pid!r}")
    product = get(t, "product", str, where, prefix, required=False)
    return DeviceMatch(
        vendor_id=_int(t, "vendor_id", where, prefix, 0, 0xFFFF),
        product_ids=tuple(pids),
        name=get(t, "name", str, where, prefix, required=False) or "",
        interface=_opt_int(t, "interface", where, prefix, 0, 255),
        usage_page=_opt_int(t, "usage_page", where, prefix, 0, 0xFFFF),
        usage=_opt_int(t, "usage", where, prefix, 0, 0xFFFF),
        product=product,
    )


def parse_mapping(data: dict[str, Any], where: str = "mapping", source: str = "") -> HidMapping:
    """Validate a parsed TOML document. Every problem is a ``ConfigError`` naming the key."""
    check_keys(data, _TOP_KEYS, where)
    m = data.get("mapping")
    if not isinstance(m, dict):
        raise ConfigError(f"{where}: missing table [mapping] (name, output, report_length)")
    check_keys(m, _MAPPING_KEYS, where, "mapping.")
    name = _name(m, "name", where, "mapping.")
    output = get(m, "output", str, where, "mapping.")
    if output not in _OUTPUTS:
        raise ConfigError(f"{where}: key 'mapping.output' = {output!r}; allowed values: {list(_OUTPUTS)}")
    report_length = _int(m, "report_length", where, "mapping.", 1, 4096)
    assert report_length is not None

    dev_tables = data.get("device")
    if not isinstance(dev_tables, list) or not dev_tables:
        raise ConfigError(f"{where}: missing [[device]] tables (vendor_id, product_id) saying which devices this fits")
    devices = tuple(_parse_device(d, where, f"device[{i}].") for i, d in enumerate(dev_tables))

    rep_tables = data.get("report")
    if not isinstance(rep_tables, list) or not rep_tables:
        raise ConfigError(f"{where}: missing [[report]] tables saying where the axes and buttons are")
    reports: dict[int | None, ReportSpec] = {}
    for i, t in enumerate(rep_tables):
        r = _parse_report(t, where, f"report[{i}].", report_length)
        if r.id in reports:
            raise ConfigError(f"{where}: key 'report[{i}].id' = {r.id}: another report has the same id")
        reports[r.id] = r
    if None in reports and len(reports) > 1:
        raise ConfigError(f"{where}: a report without 'id' (device sends no report IDs) must be the only report; "
                          "give every report an id")

    seen_axes: set[str] = set()
    seen_buttons: dict[str, int | None] = {}
    for i, r in enumerate(reports.values()):
        for j, a in enumerate(r.axes):
            if a.name in seen_axes:
                raise ConfigError(f"{where}: key 'report[{i}].axes[{j}].name' = {a.name!r} is used twice")
            seen_axes.add(a.name)
            if output == "buttons" and a.press_above is None:
                raise ConfigError(f"{where}: key 'report[{i}].axes[{j}]' ({a.name!r}) is unused in an "
                                  "output = 'buttons' mapping; add press_above to make it a button, "
                                  "or set mapping.output = 'pose'")
        for n in r.button_names:
            if n in seen_buttons and seen_buttons[n] != r.id:
                raise ConfigError(f"{where}: button {n!r} is declared in two reports (report[{i}]); "
                                  "names must be unique")
            seen_buttons[n] = r.id

    out_tables = data.get("output", {})
    if not isinstance(out_tables, dict):
        raise ConfigError(f"{where}: key 'output' must be tables [output.<name>] with data = [bytes]")
    outputs: dict[str, bytes] = {}
    for oname, t in out_tables.items():
        prefix = f"output.{oname}."
        if not isinstance(t, dict):
            raise ConfigError(f"{where}: key 'output.{oname}' must be a table with data = [bytes], got {t!r}")
        check_keys(t, _OUTPUT_KEYS, where, prefix)
        raw = t.get("data")
        if not isinstance(raw, list) or not raw or not all(_is_int(b) and 0 <= b <= 255 for b in raw):
            raise ConfigError(f"{where}: key '{prefix}data' must be a list of bytes 0..255 (report ID first), "
                              f"got {raw!r}")
        outputs[oname] = bytes(raw)
    hooks: dict[str, tuple[str, ...]] = {}
    for hook in ("on_connect", "on_disconnect"):
        names = m.get(hook, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{where}: key 'mapping.{hook}' must be a list of output report names, got {names!r}")
        for n in names:
            if n not in outputs:
                raise ConfigError(f"{where}: key 'mapping.{hook}' names output {n!r}, which is not declared; "
                                  f"declared: {sorted(outputs)}")
        hooks[hook] = tuple(names)
    return HidMapping(
        name=name, output=output, report_length=report_length, devices=devices, reports=reports,
        outputs=outputs, on_connect=hooks["on_connect"], on_disconnect=hooks["on_disconnect"],
        description=get(m, "description", str, where, "mapping.", required=False) or "", source=source,
    )


def shipped_mappings() -> dict[str, Path]:
    """Name -> file of the mappings shipped in drivers/hid/mappings."""
    root = resources.files("drivers.hid") / "mappings"
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml")}


def resolve_mapping_path(mapping: str) -> Path:
    """A shipped mapping name (``spacemouse``) or a path to a TOML file."""
    shipped = shipped_mappings()
    if mapping in shipped:
        return shipped[mapping]
    if mapping.endswith(".toml") or "/" in mapping or "\\" in mapping:
        return Path(mapping).expanduser()
    raise ConfigError(f"mapping={mapping!r}: no shipped mapping of that name and not a .toml path; "
                      f"shipped mappings: {sorted(shipped)}")


def load_mapping(mapping: str) -> HidMapping:
    path = resolve_mapping_path(mapping)
    return parse_mapping(load_toml(path, "HID mapping"), where=f"HID mapping {path.name}", source=str(path))


# -- decoding -------------------------------------------------------------------------------------------
class Decoded(NamedTuple):
    """What one report says. ``axes``: the axis values this report carries; ``pressed``: buttons
    held among ``covers`` (the buttons this report reports on; others keep their state)."""

    report_id: int | None
    axes: dict[str, float]
    pressed: frozenset[str]
    covers: frozenset[str]


def _axis_value(a: AxisField, data: bytes) -> float:
    raw = struct.unpack_from(_AXIS_FORMATS[a.type], data, a.byte)[0]
    v = a.sign * a.scale * (raw - a.offset)
    if a.clamp is not None:
        v = min(max(v, a.clamp[0]), a.clamp[1])
    return float(v)


def decode_report(mapping: HidMapping, data: bytes | bytearray | list[int]) -> Decoded:
    """Decode one input report. Raises ``DecodeError`` with reason ``empty_report``,
    ``unknown_report_id``, ``bad_length`` or ``keyboard_rollover`` (callers count these)."""
    data = bytes(data)
    if not data:
        raise DecodeError("empty_report", "read returned a 0-byte report")
    rid: int | None = data[0] if mapping.numbered else None
    spec = mapping.reports.get(rid)
    if spec is None:
        raise DecodeError("unknown_report_id", f"report id {rid} ({len(data)} bytes: {data.hex(' ')}); "
                          f"known: {sorted(k for k in mapping.reports if k is not None)}")
    if not spec.accepts_length(len(data)):
        want = f"{spec.length}" if spec.length is not None else f">= {spec.min_length}"
        raise DecodeError("bad_length", f"report id {rid}: {len(data)} bytes, expected {want} ({data.hex(' ')})")
    axes = {a.name: _axis_value(a, data) for a in spec.axes}
    pressed = {b.name for b in spec.buttons if data[b.byte] >> b.bit & 1}
    pressed.update(a.name for a in spec.axes if a.press_above is not None and axes[a.name] > a.press_above)
    kb = spec.keyboard
    if kb is not None:
        slots = data[kb.first_key_byte:kb.first_key_byte + kb.key_count]
        if any(c in _ERROR_CODES for c in slots):
            raise DecodeError("keyboard_rollover", f"keyboard reports an error state ({data.hex(' ')}); keys unchanged")
        pressed.update(kb.keys[c] for c in slots if c in kb.keys)
        mods = data[kb.modifier_byte]
        pressed.update(n for bit, n in kb.modifiers.items() if mods >> bit & 1)
    return Decoded(rid, axes, frozenset(pressed), frozenset(spec.button_names))


class HidState:
    """Merges decoded reports: the latest value of every axis (``channels``, in
    ``mapping.channel_names`` order) and the set of buttons held. Not thread-safe; one per reader."""

    def __init__(self, mapping: HidMapping) -> None:
        self.mapping = mapping
        self._index = {n: i for i, n in enumerate(mapping.channel_names)}
        self.channels: npt.NDArray[np.float64] = np.zeros(len(self._index))
        self.pressed: frozenset[str] = frozenset()

    def reset(self) -> None:
        self.channels[:] = 0.0
        self.pressed = frozenset()

    def apply(self, decoded: Decoded) -> list[tuple[str, bool]]:
        """Update from one report; returns button edges ``(name, pressed)`` in declaration order."""
        for name, v in decoded.axes.items():
            self.channels[self._index[name]] = v
        if not decoded.covers:
            return []
        new = (self.pressed - decoded.covers) | decoded.pressed
        edges = [(n, n in new) for n in self.mapping.button_names if (n in new) != (n in self.pressed)]
        self.pressed = frozenset(new)
        return edges
