"""LucidGloves / OpenGloves glove over a serial port (USB or Bluetooth SPP).

Lock-step: the firmware sends one line and then blocks (up to 1 s) until the host sends a line
back, so the reader thread answers EVERY received line at once, before decoding it, with the
queued feedback line if ``send_feedback`` left one, else a bare ``\\n``. The reply never waits for
the application. On open the driver also writes one bare ``\\n`` so a firmware stuck in its 1 s
wait (its last line was flushed by the open) resumes at once.

Channels (``CHANNEL_NAMES``, ``HandSample.channels``): five curls thumb..pinky (0 open .. 1 fist,
calibrated), five splays (-1..1, 0 neutral or not sent), joystick x and y (-1..1), analog trigger
(0..1; legacy gloves: 1.0 while the trigger button is held).

Channels -> the 20 angles of ``retarget.human_hand`` (radians, clipped to ``ANGLE_LIMITS_RAD``):

* index..pinky: curl c -> (mcp, pip, dip) flexion = c * (1.45, 1.70, 1.15); a per-joint
  ``(xAy)`` key overrides its joint: joint 1 -> MCP, 2 -> PIP, 3 -> DIP, each scaled by the same
  full-fist angle (joint 0, the metacarpal, has no angle in the model and is ignored);
  splay s -> mcp_abd = s * (0.30, 0.25, 0.25, 0.40) (+ spreads away from the middle finger).
* thumb: curl c -> (cmc_flex, mcp_flex, ip_flex) = c * (0.70, 0.80, 1.10), per-joint keys
  joint 0 -> CMC, 1 -> MCP, 2 -> IP (joint 3 unused, as upstream); cmc_abd = 0.30 c + 0.50 s
  (opposition grows with curl; thumb splay lifts the thumb out of the palm plane).

Angles -> 21 keypoints in the wrist frame via ``HumanHand(side, hand_length_m)``.

Buttons (``BUTTON_NAMES``): trigger, a, b, grab, pinch, menu, calibrate, joystick_click (Alpha
flags I, J, K, L, M, N, O, H); a ``ButtonEvent`` is emitted on every press and release.

Noise is counted, never acted on: a line becomes a ``HandSample`` (and button events) only when
the WHOLE line is well formed (``protocol_opengloves.decode_line``, strict: printable ASCII,
known keys each once, values within 0..``analog_max``) and, for an input line, carries all five
curls ``A``..``E`` (``missing_finger`` otherwise). Each rejected line counts in
``health().errors["bad_line"]`` and ``["bad_line:<reason>"]`` (``REJECT_REASONS`` plus
``missing_finger``); lines over ``max_line_bytes`` in ``["line_too_long"]``. A rejected line
changes nothing: no sample, no event, the button state stays. It is still answered (lock-step).

Force feedback: ``send_feedback`` encodes ``HapticFeedback.force`` (0 free .. 1 blocked per
finger) as ``A..E`` scaled to ``ffb_max`` (inverted if ``invert_ffb``) and, when a vibration is
asked for, appends ``F<hz>G<s>H<amp>`` to the SAME line: the LucidVR firmware sets every servo
whose key is missing to 0, so a vibration-only line would release the force feedback. The newest
feedback wins; it goes out as the reply to the next received line. Legacy gloves get
``t&i&m&r&p`` and no vibration (a legacy haptic line would be misread as force feedback).
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Final

import numpy as np
import numpy.typing as npt
import serial
import serial.tools.list_ports

from drivers.base import ThreadedDriver, requires_connected
from drivers.opengloves.calibration import (
    ChannelCalibration,
    calibration_from_recording,
    load_calibration,
    save_calibration,
)
from drivers.opengloves.config_opengloves import OpenGlovesConfig
from drivers.opengloves.protocol_opengloves import (
    BUTTON_NAMES,
    FINGERS,
    REPLY_EMPTY,
    GloveDecodeError,
    GloveReading,
    LineAssembler,
    decode_line,
    encode_ffb,
    encode_ffb_legacy,
    encode_vibration,
    normalise,
)
from drivers.samples import ButtonEvent, HandSample, HapticFeedback, Sample, SampleSpec
from retarget.human_hand import ANGLE_LIMITS_RAD, N_ANGLES, HumanHand
from teleop.errors import ConfigError, DeviceError

__all__ = ["OpenGlovesDriver", "CHANNEL_NAMES", "channels_to_angles"]

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

CHANNEL_NAMES: Final[tuple[str, ...]] = (
    tuple(f"{f}_curl" for f in FINGERS)
    + tuple(f"{f}_splay" for f in FINGERS)
    + ("joystick_x", "joystick_y", "trigger")
)

#: Full-fist flexion [rad] per chain: thumb (cmc_flex, mcp_flex, ip_flex), fingers (mcp, pip, dip).
FIST_FLEX_RAD: Final = np.array(
    [[0.70, 0.80, 1.10]] + [[1.45, 1.70, 1.15]] * 4, dtype=np.float64
)
#: Which per-joint key column (0..3) drives each of the three flexion angles of a chain.
_JOINT_COLUMNS: Final = np.array([[0, 1, 2]] + [[1, 2, 3]] * 4)
#: Abduction [rad] at full splay (s = 1), index..pinky.
SPLAY_ABD_RAD: Final = np.array([0.30, 0.25, 0.25, 0.40])
THUMB_ABD_PER_CURL_RAD: Final = 0.30
THUMB_ABD_PER_SPLAY_RAD: Final = 0.50
_FLEX_IDX: Final = np.array([[1, 2, 3]] + [[4 * f + 1, 4 * f + 2, 4 * f + 3] for f in range(1, 5)])
_ROWS: Final = np.arange(5)[:, None]

#: USB-serial bridges the OpenGloves driver probes for: CP2102, CH340.
_GLOVE_USB_IDS: Final = {(0x10C4, 0xEA60), (0x1A86, 0x7523), (0x1A86, 0x7524)}
_WRITE_TIMEOUT_S: Final = 0.5


def channels_to_angles(curl: F64, joints: F64, splay: F64) -> F64:
    """Calibrated channels -> 20 angles [rad] (module docstring). ``curl`` Shape (5,) 0..1,
    ``joints`` Shape (5, 4) 0..1 or NaN (absent), ``splay`` Shape (5,) -1..1 or NaN. Shape (20,)."""
    flex = curl[:, None] * FIST_FLEX_RAD
    per_joint = joints[_ROWS, _JOINT_COLUMNS] * FIST_FLEX_RAD
    flex = np.where(np.isnan(per_joint), flex, per_joint)
    s = np.nan_to_num(splay, nan=0.0)
    q = np.zeros(N_ANGLES)
    q[_FLEX_IDX] = flex
    q[0] = THUMB_ABD_PER_CURL_RAD * curl[0] + THUMB_ABD_PER_SPLAY_RAD * s[0]
    q[4::4] = SPLAY_ABD_RAD * s[1:]
    return np.clip(q, ANGLE_LIMITS_RAD[:, 0], ANGLE_LIMITS_RAD[:, 1])


def _port_list() -> str:
    try:
        ports = serial.tools.list_ports.comports()
    except Exception as exc:  # listing is a courtesy; never hide the real error behind it
        return f"(could not list ports: {exc})"
    if not ports:
        return "none found"
    rows = []
    for p in sorted(ports, key=lambda p: p.device):
        mark = " <- USB-serial bridge used by LucidGloves" if (p.vid, p.pid) in _GLOVE_USB_IDS else ""
        rows.append(f"{p.device} ({p.description}){mark}")
    return ", ".join(rows)


class OpenGlovesDriver(ThreadedDriver):
    """See the module docstring. Samples: ``HandSample`` per received line, ``ButtonEvent`` on
    button edges."""

    name: ClassVar[str] = "opengloves"
    config_class: ClassVar[type[OpenGlovesConfig]] = OpenGlovesConfig
    description: ClassVar[str] = "LucidGloves/OpenGloves serial glove: curls, splay, buttons, force feedback"
    config: OpenGlovesConfig

    def __init__(self, config: OpenGlovesConfig | None = None) -> None:
        super().__init__(config)
        cfg = self.config
        self._hand = HumanHand(cfg.side, cfg.hand_length_m)
        self._serial: serial.Serial | None = None
        self._assembler = LineAssembler(cfg.max_line_bytes)
        self._calibration = ChannelCalibration()
        self._out_lock = threading.Lock()
        self._pending: bytes | None = None
        self._held: frozenset[str] = frozenset()
        self._recording: list[GloveReading] | None = None
        self._source = f"opengloves:{cfg.port}"
        #: Info packet contents (``firmware_version``, ``device_type``, ``hand``) when the glove sent one.
        self.info: dict[str, int] = {}
        #: Lines answered (one reply per received line, the lock-step).
        self.replies = 0
        #: Feedback lines written to the glove.
        self.feedback_sent = 0

    # -- spec --------------------------------------------------------------------------------------
    @property
    def sample_spec(self) -> SampleSpec:
        return SampleSpec(
            kinds=("hand", "buttons"),
            side=self.config.side,
            channel_names=CHANNEL_NAMES,
            button_names=BUTTON_NAMES,
            rate_hz=100.0,  # typical at 115200 baud; the firmware loop allows more over USB CDC
            feedback=True,
            frame="wrist",
        )

    # -- lifecycle ---------------------------------------------------------------------------------
    def connect(self) -> None:
        if self.is_connected:
            return
        path = self.config.calibration
        if path is not None:
            if os.path.exists(path):
                self._calibration = load_calibration(path)
            else:
                logger.warning("%s: calibration file %s does not exist yet; uncalibrated until calibrate()",
                               self.name, path)
        self._hand.keypoints(np.zeros(N_ANGLES))  # compile / load the numba kernel before streaming
        self._held = frozenset()
        super().connect()

    def _open(self) -> None:
        cfg = self.config
        ser = serial.Serial()
        ser.port = cfg.port
        ser.baudrate = cfg.baud
        ser.timeout = cfg.timeout_s
        ser.write_timeout = _WRITE_TIMEOUT_S
        ser.dtr = True  # as the OpenGloves driver; applied at open (a pty ignores it)
        ser.exclusive = True  # a second program on the same glove breaks the lock-step
        try:
            ser.open()
        except (serial.SerialException, OSError) as exc:
            raise DeviceError(self._open_error(exc)) from exc
        self._serial = ser
        self._assembler.reset()
        try:
            ser.write(REPLY_EMPTY)  # wake a firmware waiting for the reply to a flushed line
        except (serial.SerialException, OSError) as exc:
            ser.close()
            self._serial = None
            raise DeviceError(f"{self.name}: opened {cfg.port} but writing to it failed: {exc}") from exc
        logger.info("%s: opened %s at %d baud (%s encoding)", self.name, cfg.port, cfg.baud, cfg.encoding)

    def _open_error(self, exc: BaseException) -> str:
        port = self.config.port
        err = getattr(exc, "errno", None)
        if not os.path.exists(port) or err == errno.ENOENT:
            return (
                f"{self.name}: serial port {port!r} does not exist (glove unplugged, or another name?). "
                f"Available ports: {_port_list()}. If the glove is listed but cannot be opened, add yourself "
                "to the dialout group: sudo usermod -aG dialout $USER, then log in again"
            )
        if err in (errno.EACCES, errno.EPERM):
            return (
                f"{self.name}: no permission to open {port!r}: {exc}. Add yourself to the dialout group "
                "(sudo usermod -aG dialout $USER, then log in again) or add a udev rule"
            )
        if err in (errno.EBUSY, errno.EAGAIN) or "lock" in str(exc).lower():
            return (
                f"{self.name}: {port!r} is in use by another program (SteamVR/OpenGloves, an Arduino serial "
                f"monitor, another teleop?): {exc}"
            )
        return f"{self.name}: could not open {port!r}: {exc}. Available ports: {_port_list()}"

    def _close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            ser.close()

    # -- reading -----------------------------------------------------------------------------------
    def _read(self) -> list[Sample] | None:
        ser = self._serial
        if ser is None:
            raise DeviceError(f"{self.name}: port {self.config.port} is closed")
        data = ser.read(1)  # blocks up to timeout_s
        if not data:
            return None
        waiting = ser.in_waiting
        if waiting:
            data += ser.read(waiting)
        t_ns = time.monotonic_ns()
        lines = self._assembler.feed(data)
        if not lines:
            return None
        # Answer first: the firmware is blocked until it gets a line back.
        reply = self._take_reply()
        ser.write(reply + REPLY_EMPTY * (len(lines) - 1))  # one reply per line
        self.replies += len(lines)
        out: list[Sample] = []
        for line in lines:
            if line is None:
                self.count("line_too_long", f"a line longer than {self.config.max_line_bytes} bytes was dropped")
            else:
                self._handle(line, t_ns, out)
        return out or None

    def _take_reply(self) -> bytes:
        with self._out_lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return REPLY_EMPTY
        self.feedback_sent += 1
        return pending

    def _handle(self, line: bytes, t_ns: int, out: list[Sample]) -> None:
        cfg = self.config
        try:
            packet = decode_line(line, cfg.encoding, cfg.analog_max)
            if packet.info is None and None in packet.curl:
                # Every firmware sends all five curls on every input line (LucidVR and senseshift
                # alike); a short line that is only "J" or "A12" is noise, not an open hand.
                missing = "".join(k for k, v in zip("ABCDE", packet.curl, strict=True) if v is None)
                raise GloveDecodeError("missing_finger", f"no curl for {missing} in {line[:40]!r}")
        except GloveDecodeError as exc:
            self._reject(exc.reason, exc.detail)
            return
        if packet.info is not None:
            self._on_info(dict(packet.info))
            return
        reading = normalise(packet, cfg.analog_max)
        rec = self._recording
        if rec is not None:
            rec.append(reading)
        curl, joints, splay = self._calibration.apply(reading)
        angles = channels_to_angles(curl, joints, splay)
        trigger = reading.trigger if cfg.encoding == "alpha" else float("trigger" in reading.buttons)
        channels = np.concatenate([curl, np.nan_to_num(splay, nan=0.0), reading.joystick, [trigger]])
        buttons = reading.buttons
        if buttons != self._held:  # events first: the hand sample then shows the state after them
            for name in BUTTON_NAMES:
                was, now = name in self._held, name in buttons
                if was != now:
                    out.append(ButtonEvent(t_ns, self.next_seq(), name, now, cfg.side, self._source))
            self._held = buttons
        out.append(
            HandSample(
                side=cfg.side,
                capture_ns=t_ns,
                seq=self.next_seq(),
                keypoints=self._hand.keypoints(angles),
                angles=angles,
                channels=channels,
                buttons=buttons,
                source=self._source,
            )
        )

    def _reject(self, reason: str, detail: str) -> None:
        """A line that is not acted on: counted as ``bad_line`` and ``bad_line:<reason>``."""
        self.count("bad_line", f"{reason}: {detail}")
        self.count(f"bad_line:{reason}")

    def _on_info(self, info: dict[str, int]) -> None:
        self.info.update(info)
        hand = info.get("hand")
        if hand in (0, 1) and ("left", "right")[hand] != self.config.side:
            self.count("side_mismatch", f"the glove says it is a {('left', 'right')[hand]} hand, "
                                        f"configured side={self.config.side!r}")

    # -- output ------------------------------------------------------------------------------------
    @requires_connected
    def send_feedback(self, feedback: HapticFeedback) -> None:
        """Queue force feedback (and vibration) for the next reply; the newest call wins."""
        cfg = self.config
        vibrate = feedback.vibration_s > 0 and feedback.vibration_amplitude > 0
        if cfg.encoding == "alpha":
            line = encode_ffb(feedback.force, cfg.ffb_max, cfg.invert_ffb, newline=False)
            if vibrate:
                line += encode_vibration(
                    feedback.vibration_hz, feedback.vibration_s, feedback.vibration_amplitude, newline=False
                )
        else:
            line = encode_ffb_legacy(feedback.force, cfg.ffb_max, cfg.invert_ffb)[:-1]
            if vibrate:
                self.count("vibration_unsupported", "the legacy encoding has no vibration message; sent force only")
        with self._out_lock:
            self._pending = line + REPLY_EMPTY

    # -- calibration -------------------------------------------------------------------------------
    @property
    def calibration(self) -> ChannelCalibration:
        return self._calibration

    def set_calibration(self, data: dict[str, Any] | ChannelCalibration | None) -> None:
        """Apply a calibration (a ``calibrate()`` result or a stored profile); None = identity."""
        if data is None:
            self._calibration = ChannelCalibration()
        elif isinstance(data, ChannelCalibration):
            self._calibration = data
        else:
            self._calibration = ChannelCalibration.from_dict(data)

    @requires_connected
    def calibrate(
        self,
        open_s: float = 2.0,
        fist_s: float = 2.0,
        prompt: Callable[[str], object] = print,
        save: bool = True,
    ) -> dict[str, Any]:
        """Record an open hand (fingers spread) for ``open_s`` and a fist for ``fist_s``; set the
        per-channel ranges, write them to ``config.calibration`` when set and ``save``, and return
        the stored dict. Raises ``ConfigError`` if the glove sent nothing."""
        prompt(f"Open your hand and spread your fingers ({open_s:.0f} s)...")
        open_rows = self._record(open_s)
        prompt(f"Now make a tight fist ({fist_s:.0f} s)...")
        fist_rows = self._record(fist_s)
        try:
            cal, still = calibration_from_recording(open_rows, fist_rows, side=self.config.side)
        except ConfigError as exc:
            raise ConfigError(f"{self.name}: {exc} (last error: {self._last_error or 'none'})") from None
        if still:
            prompt(f"These channels did not move and stay uncalibrated: {', '.join(still)}")
            logger.warning("%s: channels that did not move during calibration: %s", self.name, still)
        self._calibration = cal
        if save and self.config.calibration:
            save_calibration(self.config.calibration, cal)
            prompt(f"Saved to {self.config.calibration}")
        return cal.to_dict()

    def _record(self, duration_s: float) -> list[GloveReading]:
        rows: list[GloveReading] = []
        self._recording = rows
        try:
            time.sleep(duration_s)
        finally:
            self._recording = None
        return rows
