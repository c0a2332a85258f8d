"""HID drivers: ``hid`` (any device described by a TOML mapping), ``spacemouse`` (a 6-DoF wrist for
desk testing) and ``foot_pedal`` (USB pedals read as a keyboard). See docs/hid-mappings.md.

Output of the generic ``hid`` driver, by the mapping's ``output``:

* ``"buttons"``: a ``ButtonEvent`` per press/release edge (axes only as buttons via ``press_above``);
* ``"pose"``: a ``PoseSample`` per input report that carries axes, with ``channels`` = every axis
  in ``mapping.channel_names`` order (latest values, merged over report IDs), ``buttons`` = held
  buttons, and position/orientation left at the origin / identity (the generic driver does not
  know what the axes mean; ``SpaceMouseDriver`` integrates them into a pose) - plus ButtonEvents.

When the device is lost (read raises, or a quiet device is no longer enumerated) while buttons are
held, their release events are emitted first, then the loss goes to ``ThreadedDriver``, which
reconnects (``reconnect``) - a clutch pedal never stays "pressed" across an unplug. Reports with
an unknown ID or a wrong length are counted in ``health().errors``, not fatal.

The hidapi backend is reached through ONE seam, the module attribute ``hidapi`` (the installed
``hid`` module of the ``hidapi`` package, i.e. cython-hidapi). Tests replace it with a fake that
has the same subset: ``enumerate(vendor_id=0, product_id=0)`` and ``device()`` with
``open_path(bytes)``, ``set_nonblocking(int)``, ``read(max_length, timeout_ms)``, ``write(list)``,
``close()``. ``python -m drivers.hid.hid list|dump|udev`` helps writing a new mapping.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from drivers.base import ThreadedDriver
from drivers.hid.config_hid import FootPedalConfig, HidConfig, SpaceMouseConfig, parse_key_options
from drivers.hid.mapping import Decoded, HidMapping, HidState, decode_report, load_mapping
from drivers.samples import ButtonEvent, PoseSample, Sample, SampleKind, SampleSpec
from teleop.errors import ConfigError, DecodeError, DeviceError

try:  # the seam: tests assign a fake here (see the module docstring)
    import hid as hidapi
except ImportError:  # pragma: no cover - hidapi is a declared dependency
    hidapi = None

__all__ = [
    "HidDriver",
    "SpaceMouseDriver",
    "FootPedalDriver",
    "SPACEMOUSE_AXES",
    "enumerate_devices",
    "format_device",
    "udev_rules",
]

logger = logging.getLogger(__name__)

#: Channel names a SpaceMouse mapping must declare (docs/hid-mappings.md, "SpaceMouse axes").
SPACEMOUSE_AXES = ("x", "y", "z", "rx", "ry", "rz")
_MAX_DRAIN = 64  # reports read without waiting after the first one, per _read
_LIST_LIMIT = 40


# -- backend helpers --------------------------------------------------------------------------------------
def _backend() -> Any:
    backend = hidapi
    if backend is None:
        raise DeviceError("the hidapi package is not installed: pip install hidapi (it bundles libhidapi)")
    if not hasattr(backend, "device") or not hasattr(backend, "enumerate"):
        where = getattr(backend, "__file__", "?")
        raise DeviceError(f"the `hid` module at {where} is not cython-hidapi (no hid.device); it is probably the "
                          "ctypes package `hid`. Fix: pip uninstall hid && pip install hidapi")
    return backend


def _path_str(path: Any) -> str:
    return path.decode("utf-8", "replace") if isinstance(path, bytes | bytearray) else str(path)


def enumerate_devices(vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]:
    """``hid.enumerate`` through the seam (all devices by default)."""
    return list(_backend().enumerate(vendor_id, product_id))


def format_device(info: dict[str, Any]) -> str:
    """One line per enumerated device: VID:PID, interface, usage, names, serial, path."""
    return (f"{info.get('vendor_id', 0):04x}:{info.get('product_id', 0):04x} "
            f"interface={info.get('interface_number', -1)} "
            f"usage={info.get('usage_page', 0):#06x}:{info.get('usage', 0):#06x} "
            f"{info.get('product_string') or '?'!r} by {info.get('manufacturer_string') or '?'!r} "
            f"serial={info.get('serial_number') or ''!r} path={_path_str(info.get('path', b''))}")


def udev_rules(mappings: Sequence[HidMapping]) -> list[str]:
    """Linux udev lines giving the logged-in user access to the mappings' /dev/hidraw nodes."""
    lines = []
    for m in mappings:
        for d in m.devices:
            for pid in d.product_ids:
                lines.append(f'KERNEL=="hidraw*", ATTRS{{idVendor}}=="{d.vendor_id:04x}", '
                             f'ATTRS{{idProduct}}=="{pid:04x}", MODE="0660", TAG+="uaccess"')
    return list(dict.fromkeys(lines))


def _udev_hint(mappings: Sequence[HidMapping]) -> str:
    rules = udev_rules(mappings)
    example = rules[0] if rules else 'KERNEL=="hidraw*", ATTRS{idVendor}=="256f", MODE="0660", TAG+="uaccess"'
    names = " ".join(m.name for m in mappings)
    return ("On Linux, reading /dev/hidraw* needs a udev rule, e.g. in /etc/udev/rules.d/70-teleop-hid.rules:\n"
            f"  {example}\n"
            f"(`python -m drivers.hid.hid udev {names}` prints the lines for every device of the mapping), then "
            "`sudo udevadm control --reload-rules && sudo udevadm trigger` and replug the device.")


def _deadband(v: npt.NDArray[np.float64], db: float) -> npt.NDArray[np.float64]:
    """Zero inside ``db``; outside, rescaled so the output is continuous and reaches 1 at 1."""
    if db <= 0:
        return v
    mag = np.maximum(np.abs(v) - db, 0.0) / (1.0 - db)
    return np.sign(v) * mag


def _quat_mul(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ])


def _quat_from_rotvec(w: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    angle = float(np.linalg.norm(w))
    if angle < 1e-12:
        return np.array([1.0, 0.0, 0.0, 0.0])
    axis = w / angle
    return np.concatenate([[math.cos(angle / 2)], axis * math.sin(angle / 2)])


# -- the generic driver -----------------------------------------------------------------------------------
class HidDriver(ThreadedDriver):
    """Any HID device described by a mapping (module docstring: what it emits)."""

    name: ClassVar[str] = "hid"
    config_class: ClassVar[type[HidConfig]] = HidConfig
    description: ClassVar[str] = "any HID device described by a TOML mapping (docs/hid-mappings.md)"
    config: HidConfig

    def __init__(self, config: HidConfig | None = None) -> None:
        if config is None and type(self).config_class is HidConfig:
            raise ConfigError("the hid driver needs mapping=<shipped name or .toml path> (docs/hid-mappings.md)")
        super().__init__(config)
        # Reading the mapping file is not device I/O; doing it here reports a bad mapping at once.
        self._mappings: tuple[HidMapping, ...] = self._load_mappings()
        self._mapping = self._mappings[0]
        self._state = HidState(self._mapping)
        self._dev: Any = None
        self._info: dict[str, Any] = {}
        self._source = self.name
        self._last_report_t = 0.0
        self._last_presence_t = 0.0
        self._pending_loss: BaseException | None = None

    # -- what subclasses adjust ---------------------------------------------------------------------------
    def _load_mappings(self) -> tuple[HidMapping, ...]:
        """Candidate mappings; the first one whose [[device]] matches a connected device is used."""
        return (load_mapping(self.config.mapping),)

    def _kinds(self) -> tuple[SampleKind, ...]:
        m = self._mapping
        if m.output == "pose":
            return ("pose", "buttons") if m.button_names else ("pose",)
        return ("buttons",)

    def _output_reports(self, hook: str) -> tuple[str, ...]:
        return self._mapping.on_connect if hook == "connect" else self._mapping.on_disconnect

    @property
    def sample_spec(self) -> SampleSpec:
        m = self._mapping
        return SampleSpec(kinds=self._kinds(), side=self.config.side, channel_names=m.channel_names,
                          button_names=m.button_names, rate_hz=self.config.rate_hz,
                          frame="hid" if m.output == "pose" else "")

    # -- open / close -------------------------------------------------------------------------------------
    def _not_found(self, infos: list[dict[str, Any]], what: str) -> DeviceError:
        wanted = "; ".join(d.describe() for m in self._mappings for d in m.devices)
        listing = "\n".join("  " + format_device(i) for i in infos[:_LIST_LIMIT]) or "  (none visible)"
        more = f"\n  ... and {len(infos) - _LIST_LIMIT} more" if len(infos) > _LIST_LIMIT else ""
        names = ", ".join(m.name for m in self._mappings)
        return DeviceError(
            f"{self.name}: {what} (mapping {names}: {wanted}).\nConnected HID devices:\n{listing}{more}\n"
            "Check the cable/receiver, or choose the device with the path or serial option. "
            + _udev_hint(self._mappings)
        )

    def _select(self, infos: list[dict[str, Any]]) -> tuple[dict[str, Any], HidMapping]:
        def mapping_for(info: dict[str, Any]) -> HidMapping | None:
            return next((m for m in self._mappings if m.match(info) is not None), None)

        if self.config.path is not None:
            hits = [i for i in infos if _path_str(i.get("path", b"")) == self.config.path]
            if not hits:
                raise self._not_found(infos, f"no HID device at path {self.config.path!r}")
            m = mapping_for(hits[0])
            if m is None:
                raise DeviceError(f"{self.name}: the device at {self.config.path!r} is {format_device(hits[0])}, which "
                                  f"mapping {self._mappings[0].name!r} does not describe "
                                  f"({'; '.join(d.describe() for d in self._mappings[0].devices)})")
            return hits[0], m
        found = [(i, m) for i in infos if (m := mapping_for(i)) is not None]
        if self.config.serial is not None:
            serials = sorted({str(i.get("serial_number")) for i, _ in found})
            found = [(i, m) for i, m in found if i.get("serial_number") == self.config.serial]
            if not found:
                raise self._not_found(infos, f"no matching device has serial {self.config.serial!r} "
                                             f"(matching devices have {serials})")
        if not found:
            raise self._not_found(infos, "no matching HID device is connected")
        if len(found) > 1:
            logger.info("%s: %d devices match; using %s (choose with path=... or serial=...): %s", self.name,
                        len(found), _path_str(found[0][0].get("path")), [format_device(i) for i, _ in found[1:]])
        return found[0]

    def _open(self) -> None:
        backend = _backend()
        infos = list(backend.enumerate(0, 0))
        info, mapping = self._select(infos)
        dev = backend.device()
        path = info["path"] if isinstance(info["path"], bytes) else _path_str(info["path"]).encode()
        try:
            dev.open_path(path)
        except OSError as exc:
            raise DeviceError(
                f"{self.name}: cannot open {format_device(info)}: {exc}. The device is there but could not be opened: "
                "another program may hold it (macOS: quit 3DconnexionHelper; Windows cannot open keyboards such as "
                "foot pedals through hidapi), or you lack permission. " + _udev_hint([mapping])
            ) from exc
        self._dev = dev
        self._info = info
        dev.set_nonblocking(1)  # read(n, 0) polls; waits always pass a timeout
        if mapping is not self._mapping:
            self._mapping = mapping
            self._state = HidState(mapping)
        self._state.reset()
        self._pending_loss = None
        self._source = f"{self.name}:{info.get('vendor_id', 0):04x}:{info.get('product_id', 0):04x}"
        self._last_report_t = self._last_presence_t = time.monotonic()
        self._send_outputs(dev, self._output_reports("connect"), count_failures=True)
        self._on_open()

    def _on_open(self) -> None:
        """Hook run after every (re)open."""

    def _send_outputs(self, dev: Any, names: Sequence[str], count_failures: bool) -> None:
        for n in names:
            data = self._mapping.outputs[n]
            try:
                result = dev.write(list(data))
            except (OSError, ValueError) as exc:
                result, why = -1, str(exc)
            else:
                why = "write returned an error"
            if result is None or result < 0:
                if count_failures:
                    self.count("output_failed", f"output report {n} ({data.hex(' ')}): {why}")
                logger.debug("%s: output report %s failed: %s", self.name, n, why)

    def _close(self) -> None:
        dev, self._dev = self._dev, None
        if dev is None:
            return
        try:
            self._send_outputs(dev, self._output_reports("disconnect"), count_failures=False)
        finally:
            dev.close()

    # -- reading ------------------------------------------------------------------------------------------
    def _read_reports(self, timeout_s: float) -> list[tuple[int, bytes]]:
        """Wait up to ``timeout_s`` (<= 0: just poll) for a report, then take what else is queued.
        Returns (capture_ns, bytes) pairs; raises when the device is gone."""
        dev = self._dev
        if dev is None:
            raise DeviceError(f"{self.name}: device not open")
        n = self._mapping.report_length
        timeout_ms = max(1, math.ceil(timeout_s * 1000)) if timeout_s > 0 else 0
        data = dev.read(n, timeout_ms)  # OSError when unplugged
        if not data:
            self._check_presence()
            return []
        got = [(time.monotonic_ns(), bytes(data))]
        for _ in range(_MAX_DRAIN):
            data = dev.read(n, 0)
            if not data:
                break
            got.append((time.monotonic_ns(), bytes(data)))
        self._last_report_t = time.monotonic()
        return got

    def _fetch(self, timeout_s: float) -> tuple[list[tuple[int, bytes]], list[Sample]]:
        """``_read_reports``, except that when the device is lost while buttons are held, it first
        returns their release events (a clutch must not stay pressed on an unplug) and raises the
        loss on the next call."""
        if self._pending_loss is not None:
            exc, self._pending_loss = self._pending_loss, None
            raise exc
        try:
            return self._read_reports(timeout_s), []
        except Exception as exc:
            if not self._state.pressed:
                raise
            edges = [(n, False) for n in self._mapping.button_names if n in self._state.pressed]
            self._state.reset()  # buttons up, axes at rest
            self._pending_loss = exc
            return [], self._released_on_loss(time.monotonic_ns(), edges)

    def _released_on_loss(self, t_ns: int, edges: list[tuple[str, bool]]) -> list[Sample]:
        return self._button_events(t_ns, edges)

    def _check_presence(self) -> None:
        """On a quiet device, check now and then that the OS still lists it (some platforms report an
        unplug only as silence)."""
        now = time.monotonic()
        every = self.config.presence_check_s
        if now - self._last_report_t < every or now - self._last_presence_t < every:
            return
        self._last_presence_t = now
        vid, pid = self._info.get("vendor_id", 0), self._info.get("product_id", 0)
        path = _path_str(self._info.get("path", b""))
        if not any(_path_str(i.get("path", b"")) == path for i in _backend().enumerate(vid, pid)):
            raise DeviceError(f"{self.name}: {vid:04x}:{pid:04x} at {path} is no longer listed (unplugged?)")

    def _decode(self, data: bytes) -> Decoded | None:
        try:
            return decode_report(self._mapping, data)
        except DecodeError as exc:
            self.count(exc.reason, exc.detail)
            return None

    def _button_events(self, t_ns: int, edges: list[tuple[str, bool]]) -> list[Sample]:
        return [ButtonEvent(capture_ns=t_ns, seq=self.next_seq(), button=n, pressed=p, side=self.config.side,
                            source=self._source) for n, p in edges]

    def _read(self) -> list[Sample] | None:
        reports, out = self._fetch(self.config.read_timeout_s)
        for t_ns, data in reports:
            dec = self._decode(data)
            if dec is None:
                continue
            out += self._button_events(t_ns, self._state.apply(dec))
            if self._mapping.output == "pose" and dec.axes:
                out.append(PoseSample(side=self.config.side, capture_ns=t_ns, seq=self.next_seq(),
                                      position_m=np.zeros(3), quat_wxyz=np.array([1.0, 0.0, 0.0, 0.0]), frame="hid",
                                      channels=self._state.channels.copy(), buttons=self._state.pressed,
                                      source=self._source))
        return out or None


# -- SpaceMouse ---------------------------------------------------------------------------------------------
class SpaceMouseDriver(HidDriver):
    """A 3Dconnexion SpaceMouse as a 6-DoF wrist: its six axes are velocities, integrated into a pose
    emitted at ``rate_hz`` (also while the cap is at rest). Frame "spacemouse": right-handed, Z up,
    x = push right, y = push forward (away from you), z = lift; rx/ry/rz turn about those axes.
    ``PoseSample.channels`` = the six normalised axes (-1..1, before the deadband) in that order.
    ButtonEvents for the buttons (left, right), and ``reset_pose`` pressed/released when all
    ``reset_buttons`` go down/up; while they are held the pose stays at the start pose."""

    name: ClassVar[str] = "spacemouse"
    config_class: ClassVar[type[HidConfig]] = SpaceMouseConfig
    description: ClassVar[str] = "3Dconnexion SpaceMouse as a 6-DoF wrist pose for desk testing"
    config: SpaceMouseConfig

    RESET_BUTTON: ClassVar[str] = "reset_pose"

    def __init__(self, config: SpaceMouseConfig | None = None) -> None:
        super().__init__(config)
        names = self._mapping.channel_names
        self._axis_index = np.array([names.index(a) for a in SPACEMOUSE_AXES])
        missing = [b for b in self.config.reset_buttons if b not in self._mapping.button_names]
        if missing:
            raise ConfigError(f"reset_buttons={list(self.config.reset_buttons)}: {missing} not among the mapping's "
                              f"buttons {list(self._mapping.button_names)}")
        self._start_pos = np.array(self.config.start_position_m, dtype=float)
        q = np.array(self.config.start_quat_wxyz, dtype=float)
        self._start_quat = q / np.linalg.norm(q)
        self._pos = self._start_pos.copy()
        self._quat = self._start_quat.copy()
        self._resetting = False
        self._next_tick = 0.0
        self._last_t = 0.0

    def _load_mappings(self) -> tuple[HidMapping, ...]:
        names = ("spacemouse", "spacemouse_split") if self.config.mapping == "auto" else (self.config.mapping,)
        mappings = tuple(load_mapping(n) for n in names)
        for m in mappings:
            if sorted(m.channel_names) != sorted(SPACEMOUSE_AXES):
                raise ConfigError(f"mapping={m.name!r}: a SpaceMouse mapping declares exactly the axes "
                                  f"{list(SPACEMOUSE_AXES)}, this one has {list(m.channel_names)}")
        return mappings

    def _kinds(self) -> tuple[SampleKind, ...]:
        return ("pose", "buttons")

    def _output_reports(self, hook: str) -> tuple[str, ...]:
        return super()._output_reports(hook) if self.config.led else ()

    @property
    def sample_spec(self) -> SampleSpec:
        buttons = self._mapping.button_names + ((self.RESET_BUTTON,) if self.config.reset_buttons else ())
        return SampleSpec(kinds=self._kinds(), side=self.config.side, channel_names=SPACEMOUSE_AXES,
                          button_names=buttons, rate_hz=self.config.rate_hz, frame="spacemouse")

    def connect(self) -> None:
        if not self.is_connected:
            self.reset_pose()
        super().connect()

    def reset_pose(self) -> None:
        """Back to the start pose (also what holding ``reset_buttons`` does)."""
        self._pos = self._start_pos.copy()
        self._quat = self._start_quat.copy()

    def _on_open(self) -> None:
        # velocities restart at zero after a (re)connect; the pose is kept across a replug
        now = time.monotonic()
        self._last_t = now
        self._next_tick = now + 1.0 / self.config.rate_hz
        self._resetting = False

    def _channels(self) -> npt.NDArray[np.float64]:
        return self._state.channels[self._axis_index]

    def _read(self) -> list[Sample] | None:
        left = self._next_tick - time.monotonic()
        reports, out = self._fetch(min(left, self.config.read_timeout_s))
        for t_ns, data in reports:
            dec = self._decode(data)
            if dec is None:
                continue
            edges = self._state.apply(dec)
            if edges:
                out += self._button_events(t_ns, edges)
                out += self._reset_events(t_ns)
        now = time.monotonic()
        if now >= self._next_tick:
            out.append(self._tick(now))
            self._next_tick += 1.0 / self.config.rate_hz
            if self._next_tick <= now:  # fell behind: do not burst
                self._next_tick = now + 1.0 / self.config.rate_hz
        return out or None

    def _released_on_loss(self, t_ns: int, edges: list[tuple[str, bool]]) -> list[Sample]:
        return self._button_events(t_ns, edges) + self._reset_events(t_ns)

    def _reset_events(self, t_ns: int) -> list[Sample]:
        combo = self.config.reset_buttons
        held = bool(combo) and all(b in self._state.pressed for b in combo)
        if held == self._resetting:
            return []
        self._resetting = held
        if held:
            self.reset_pose()
        return self._button_events(t_ns, [(self.RESET_BUTTON, held)])

    def _tick(self, now: float) -> PoseSample:
        dt = min(max(now - self._last_t, 0.0), 0.1)  # a stall does not become a jump
        self._last_t = now
        raw = self._channels()
        if self._resetting:
            self.reset_pose()
        else:
            v = _deadband(raw, self.config.deadband)
            self._pos = self._pos + v[:3] * (self.config.translation_speed_m_s * dt)
            dq = _quat_from_rotvec(v[3:] * (self.config.rotation_speed_rad_s * dt))
            q = _quat_mul(dq, self._quat) if self.config.rotation_frame == "world" else _quat_mul(self._quat, dq)
            self._quat = q / np.linalg.norm(q)
        return PoseSample(side=self.config.side, capture_ns=time.monotonic_ns(), seq=self.next_seq(),
                          position_m=self._pos.copy(), quat_wxyz=self._quat.copy(), frame="spacemouse",
                          channels=raw.copy(), buttons=self._state.pressed, source=self._source)


# -- foot pedal ---------------------------------------------------------------------------------------------
class FootPedalDriver(HidDriver):
    """A USB foot pedal read as a boot keyboard on interface 0: a ButtonEvent per press/release.
    Default keys a, b, c -> clutch, intervene, episode (mapping foot_pedal, option ``keys``)."""

    name: ClassVar[str] = "foot_pedal"
    config_class: ClassVar[type[HidConfig]] = FootPedalConfig
    description: ClassVar[str] = "USB foot pedal (keyboard reports) -> clutch / intervene / episode buttons"
    config: FootPedalConfig

    def _load_mappings(self) -> tuple[HidMapping, ...]:
        m = load_mapping(self.config.mapping)
        if m.output != "buttons":
            raise ConfigError(f"mapping={self.config.mapping!r}: the foot_pedal driver needs an output = 'buttons' "
                              f"mapping, this one is {m.output!r}")
        if self.config.keys:
            m = m.with_keys(parse_key_options(self.config.keys))
        return (m,)

    def _kinds(self) -> tuple[SampleKind, ...]:
        return ("buttons",)


# -- command line: list devices, dump raw reports, print udev rules -----------------------------------------
def _cmd_list(_args: argparse.Namespace) -> int:
    from drivers.hid.mapping import shipped_mappings

    mappings = [load_mapping(n) for n in sorted(shipped_mappings())]
    infos = enumerate_devices()
    if not infos:
        print("no HID devices visible. " + _udev_hint(mappings))
    for info in infos:
        fits = [m.name for m in mappings if m.match(info)]
        print(format_device(info) + (f"  <- mapping {', '.join(fits)}" if fits else ""))
    return 0


def _cmd_dump(args: argparse.Namespace) -> int:
    backend = _backend()
    infos = list(backend.enumerate(0, 0))
    if args.path:
        hits = [i for i in infos if _path_str(i["path"]) == args.path]
    else:
        vid, _, pid = args.id.partition(":")
        hits = [i for i in infos if i["vendor_id"] == int(vid, 16) and i["product_id"] == int(pid, 16)]
    if not hits:
        print("no such device; connected:\n" + "\n".join("  " + format_device(i) for i in infos), file=sys.stderr)
        return 1
    mapping = load_mapping(args.mapping) if args.mapping else None
    dev = backend.device()
    dev.open_path(hits[0]["path"])
    print(f"reading {format_device(hits[0])}; move / press things (Ctrl-C stops)", file=sys.stderr)
    try:
        got = 0
        while args.count <= 0 or got < args.count:
            data = dev.read(args.length, 200)
            if not data:
                continue
            got += 1
            line = f"{time.monotonic():.3f}  {bytes(data).hex(' ')}"
            if mapping is not None:
                try:
                    d = decode_report(mapping, data)
                    line += f"  -> {({k: round(v, 4) for k, v in d.axes.items()})} pressed={sorted(d.pressed)}"
                except DecodeError as exc:
                    line += f"  -> {exc}"
            print(line, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        dev.close()
    return 0


def _cmd_udev(args: argparse.Namespace) -> int:
    print("# /etc/udev/rules.d/70-teleop-hid.rules; then: sudo udevadm control --reload-rules && sudo udevadm trigger")
    for line in udev_rules([load_mapping(n) for n in args.mappings]):
        print(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m drivers.hid.hid", description="HID helpers for writing mappings")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="all HID devices the OS lists, and which shipped mapping fits each")
    d = sub.add_parser("dump", help="print raw input reports in hex (and decoded, with --mapping)")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--path", help="device path as printed by `list`")
    g.add_argument("--id", help="VID:PID in hex, e.g. 256f:c62e")
    d.add_argument("--length", type=int, default=64, help="bytes asked for per read (default 64)")
    d.add_argument("--count", type=int, default=0, help="stop after this many reports (0: until Ctrl-C)")
    d.add_argument("--mapping", help="also decode with this mapping (name or .toml path)")
    u = sub.add_parser("udev", help="print udev rules for the devices of mappings")
    u.add_argument("mappings", nargs="+")
    args = p.parse_args(argv)
    try:
        return {"list": _cmd_list, "dump": _cmd_dump, "udev": _cmd_udev}[args.cmd](args)
    except (DeviceError, ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
