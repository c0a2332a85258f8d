"""LucidGloves / OpenGloves serial protocol: pure byte parsing and encoding, no I/O.

Wire facts (LucidVR firmware and OpenGloves driver): one ASCII record per line, ``\\n``
terminated, in one of two encodings.

* Alpha (default): ``key value`` pairs in free order. A key is one letter ``A``-``Z`` or a
  parenthesised group such as ``(AB)`` / ``(BAC)``; a value is the run of ASCII digits after it
  (flags have none). Keys: ``A``..``E`` whole-finger curl thumb..pinky, ``F``/``G`` joystick x/y,
  ``P`` analog trigger, flags ``H``..``O``, ``(AB)``..``(EB)`` splay, ``(xAy)`` per-joint curl
  (finger x in A..E, joint y in A..D), ``Z`` / ``(ZV)`` / ``(ZG)`` / ``(ZH)`` info.
* Legacy: 13 ``&``-separated decimal ints: thumb, index, middle, ring, pinky, joyX, joyY,
  joyClick, trigger, A, B, grab, pinch.

Decoding is strict, unlike the OpenGloves driver's parser (which skips junk and unknown keys):
a serial line also carries noise (a glove booting, a baud mismatch, a loose cable), and a noise
line that happens to contain ``J`` must not press a button. A line is decoded only when the WHOLE
line is well formed: printable ASCII (one ``\\r`` before the ``\\n`` is tolerated), at most
``MAX_LINE_CHARS``, nothing but known keys each at most once with values in range (below); else
``GloveDecodeError`` with a ``reason`` in ``REJECT_REASONS``, the only exception the decoders
raise for any input.

Values are integers 0..``analog_max`` (1023 on AVR, 4095 on ESP32, the decoders' argument);
``P`` may reach ``analog_max + 1`` (the firmware derives it as ``(index - max/2) * 2``), so
``normalise`` clips; info values are 0..65535, legacy buttons 0 or 1. A larger value rejects the
line (``out_of_range``).

Host -> glove: force feedback ``A<int>B<int>C<int>D<int>E<int>\\n`` thumb..pinky scaled to
``ffb_max`` (1000 for LucidVR firmware, 4095 for senseshift), vibration ``F<freq>G<dur>H<amp>\\n``
(each ``%.2f``; frequency Hz, duration s, amplitude 0..1), legacy force feedback ``t&i&m&r&p\\n``,
and the bare ``\\n`` reply when there is nothing to say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from teleop.errors import DecodeError

__all__ = [
    "FINGERS",
    "FLAG_BUTTONS",
    "BUTTON_NAMES",
    "LEGACY_FIELDS",
    "REPLY_EMPTY",
    "MAX_LINE_CHARS",
    "REJECT_REASONS",
    "GloveDecodeError",
    "GlovePacket",
    "GloveReading",
    "LineAssembler",
    "decode_alpha",
    "decode_legacy",
    "decode_line",
    "normalise",
    "encode_ffb",
    "encode_ffb_legacy",
    "encode_vibration",
    "encode_input_alpha",
    "encode_input_legacy",
]

FINGERS: Final[tuple[str, ...]] = ("thumb", "index", "middle", "ring", "pinky")
_FINGER_KEYS: Final = "ABCDE"

#: Alpha flag key -> button name, in the firmware's emission order (H..O).
FLAG_BUTTONS: Final[dict[str, str]] = {
    "H": "joystick_click",
    "I": "trigger",
    "J": "a",
    "K": "b",
    "L": "grab",
    "M": "pinch",
    "N": "menu",
    "O": "calibrate",
}
_BUTTON_FLAG: Final[dict[str, str]] = {v: k for k, v in FLAG_BUTTONS.items()}

#: Button names in the order the driver documents them (``SampleSpec.button_names``).
BUTTON_NAMES: Final[tuple[str, ...]] = (
    "trigger", "a", "b", "grab", "pinch", "menu", "calibrate", "joystick_click",
)  # fmt: skip

#: Field order of a legacy (``&``) line.
LEGACY_FIELDS: Final[tuple[str, ...]] = (
    "thumb", "index", "middle", "ring", "pinky", "joy_x", "joy_y",
    "joystick_click", "trigger", "a", "b", "grab", "pinch",
)  # fmt: skip

REPLY_EMPTY: Final = b"\n"

_INFO_KEYS: Final[dict[str, str]] = {"(ZV)": "firmware_version", "(ZG)": "device_type", "(ZH)": "hand"}
_SPLAY_KEYS: Final[dict[str, int]] = {f"({k}B)": i for i, k in enumerate(_FINGER_KEYS)}
_JOINT_KEYS: Final[dict[str, tuple[int, int]]] = {
    f"({fk}A{jk})": (f, j) for f, fk in enumerate(_FINGER_KEYS) for j, jk in enumerate("ABCD")
}
_MAX_KEY_LEN: Final = 8  # "(xAy)" is 5; anything much longer is not a key
_MAX_DIGITS: Final = 6  # analog_max <= 65535, so a value has at most 5 digits (P = max + 1 = 65536)
_INFO_MAX: Final = 65535  # info values (version, device type, hand) are small unsigned ints
#: Longest line the decoder looks at. With every key at most once and at most ``_MAX_DIGITS``
#: digits a well-formed Alpha line is under 400 characters; a legacy one under 100.
MAX_LINE_CHARS: Final = 512

#: Every ``GloveDecodeError.reason`` the decoders raise (the driver counts them per reason).
REJECT_REASONS: Final[tuple[str, ...]] = (
    "empty", "too_long", "not_printable", "unexpected_char", "bad_key", "unknown_key",
    "duplicate_key", "missing_value", "unexpected_value", "out_of_range", "bad_legacy",
)  # fmt: skip


class GloveDecodeError(DecodeError):
    """A glove line is not well formed; it must not be acted on. ``reason`` is a counter key,
    one of ``REJECT_REASONS``:

    ``empty`` (nothing but the line end), ``too_long`` (over ``MAX_LINE_CHARS``),
    ``not_printable`` (a byte outside printable ASCII, other than one trailing ``\\r``),
    ``unexpected_char`` (a character that starts no key: junk between or after fields, a value
    with no key before it), ``bad_key`` (a malformed ``(...)`` group), ``unknown_key``,
    ``duplicate_key``, ``missing_value`` (a value key without digits), ``unexpected_value``
    (digits after a flag or ``Z``), ``out_of_range`` (a value above the key's maximum),
    ``bad_legacy`` (not 13 ``&``-separated ints)."""


@dataclass(frozen=True, slots=True)
class GlovePacket:
    """One decoded line, raw integers as sent (``None`` = key absent).

    ``curl`` (5) thumb..pinky; ``joints`` (finger, joint) -> value for ``(xAy)`` keys; ``splay``
    (5); ``joystick`` (x, y); ``trigger`` the analog ``P``; ``flags`` the flag keys present
    (``"H"``..``"O"``); ``info`` for an info packet (``firmware_version``, ``device_type``,
    ``hand``).
    """

    curl: tuple[int | None, ...] = (None,) * 5
    joints: Mapping[tuple[int, int], int] = field(default_factory=dict)
    splay: tuple[int | None, ...] = (None,) * 5
    joystick: tuple[int | None, int | None] = (None, None)
    trigger: int | None = None
    flags: frozenset[str] = frozenset()
    info: Mapping[str, int] | None = None

    @property
    def is_info(self) -> bool:
        return self.info is not None

    @property
    def buttons(self) -> frozenset[str]:
        return frozenset(FLAG_BUTTONS[f] for f in self.flags)


def _shown(text: str) -> str:
    return repr(text[:40] + ("..." if len(text) > 40 else ""))


def _line_text(line: bytes | str) -> str:
    """The line without its end (one ``\\n``, then one ``\\r``), checked to be printable ASCII of
    bounded length. Raises ``GloveDecodeError`` (``too_long``, ``not_printable``)."""
    if isinstance(line, bytes | bytearray | memoryview):
        text = bytes(line).decode("latin-1")  # one char per byte, never fails; checked below
    elif isinstance(line, str):
        text = line
    else:
        raise GloveDecodeError("not_printable", f"a line is bytes or str, got {type(line).__name__}")
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):  # CRLF: a stray "\r" the OpenGloves driver tolerates too
        text = text[:-1]
    if len(text) > MAX_LINE_CHARS:
        raise GloveDecodeError("too_long", f"{len(text)} characters (a glove line has under {MAX_LINE_CHARS})")
    if not (text.isascii() and text.isprintable()):  # for ASCII: exactly 0x20..0x7e
        i, ch = next((i, ch) for i, ch in enumerate(text) if not " " <= ch <= "~")
        shown = text[:40].encode("ascii", "backslashreplace").decode("ascii")
        raise GloveDecodeError("not_printable", f"character {ch!r} at column {i} in {shown!r}")
    return text


def _value(key: str, digits: str, limit: int, text: str) -> int:
    if not digits:
        raise GloveDecodeError("missing_value", f"key {key} has no value in {_shown(text)}")
    v = int(digits) if len(digits) <= _MAX_DIGITS else limit + 1  # never int() of a huge run
    if v > limit:
        raise GloveDecodeError("out_of_range", f"{key}{digits[:10]} is above {limit} in {_shown(text)}")
    return v


def decode_alpha(line: bytes | str, analog_max: int = 4095) -> GlovePacket:
    """Decode one Alpha line (with or without its ``\\n``; a ``\\r`` before it is tolerated).

    Strict: the WHOLE line must be well formed, else ``GloveDecodeError`` (reasons in its
    docstring) and nothing of the line may be used. Well formed = printable ASCII, then nothing
    but fields, each a known key at most once: ``A``..``E``, ``F``, ``G``, ``(xB)``, ``(xAy)``
    with 0..``analog_max``, ``P`` with 0..``analog_max + 1``, flags ``H``..``O`` and a bare ``Z``
    without digits, ``(ZV)``/``(ZG)``/``(ZH)`` with 0..65535. Absent keys are allowed (the order
    is free, as in the OpenGloves driver). Never raises anything but ``GloveDecodeError``.
    """
    text = _line_text(line)
    if not text:
        raise GloveDecodeError("empty", "an empty line")
    top = analog_max
    curl: list[int | None] = [None] * 5
    splay: list[int | None] = [None] * 5
    joy: list[int | None] = [None, None]
    trigger: int | None = None
    joints: dict[tuple[int, int], int] = {}
    flags: set[str] = set()
    info: dict[str, int] = {}
    seen: set[str] = set()
    bare_z = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "(":
            j = text.find(")", i + 1, i + _MAX_KEY_LEN)
            key = text[i : j + 1] if j >= 0 else text[i : i + _MAX_KEY_LEN]
            inner = key[1:-1]
            if j < 0 or not inner or not all("A" <= ch <= "Z" for ch in inner):
                raise GloveDecodeError("bad_key", f"malformed key {key!r} at column {i} in {_shown(text)}")
            i = j + 1
        elif "A" <= c <= "Z":
            key, i = c, i + 1
        else:
            what = "a value with no key before it" if "0" <= c <= "9" else "junk"
            raise GloveDecodeError("unexpected_char", f"{c!r} at column {i} ({what}) in {_shown(text)}")
        k = i
        while k < n and "0" <= text[k] <= "9":
            k += 1
        digits, i = text[i:k], k
        if key in seen:
            raise GloveDecodeError("duplicate_key", f"key {key} twice in {_shown(text)}")
        seen.add(key)
        if key in FLAG_BUTTONS or key == "Z":
            if digits:
                raise GloveDecodeError("unexpected_value", f"flag {key} carries {digits[:10]} in {_shown(text)}")
            if key == "Z":
                bare_z = True
            else:
                flags.add(key)
        elif key in _FINGER_KEYS:
            curl[_FINGER_KEYS.index(key)] = _value(key, digits, top, text)
        elif key == "F":
            joy[0] = _value(key, digits, top, text)
        elif key == "G":
            joy[1] = _value(key, digits, top, text)
        elif key == "P":  # the firmware derives it as (index - max/2) * 2: up to max + 1
            trigger = _value(key, digits, top + 1, text)
        elif key in _SPLAY_KEYS:
            splay[_SPLAY_KEYS[key]] = _value(key, digits, top, text)
        elif key in _JOINT_KEYS:
            joints[_JOINT_KEYS[key]] = _value(key, digits, top, text)
        elif key in _INFO_KEYS:
            info[_INFO_KEYS[key]] = _value(key, digits, _INFO_MAX, text)
        else:
            raise GloveDecodeError("unknown_key", f"unknown key {key} in {_shown(text)}")
    input_keys = len(seen) - len(info) - bare_z
    is_info = bare_z or (bool(info) and input_keys == 0)
    return GlovePacket(
        curl=tuple(curl),
        joints=joints,
        splay=tuple(splay),
        joystick=(joy[0], joy[1]),
        trigger=trigger,
        flags=frozenset(flags),
        info=info if is_info else None,
    )


def decode_legacy(line: bytes | str, analog_max: int = 4095) -> GlovePacket:
    """Decode one legacy line: exactly 13 ``&``-separated decimal ints (one trailing ``&`` and a
    ``\\r`` before the ``\\n`` are tolerated), curls and joystick 0..``analog_max``, buttons 0 or
    1. Strict like ``decode_alpha``: raises ``GloveDecodeError`` (``bad_legacy``,
    ``out_of_range``, ``not_printable``, ``too_long``) and nothing else."""
    text = _line_text(line)
    body = text[:-1] if text.endswith("&") else text
    parts = body.split("&")
    if len(parts) != len(LEGACY_FIELDS) or not all(p and len(p) <= _MAX_DIGITS and p.isdigit() for p in parts):
        fields = ", ".join(LEGACY_FIELDS)
        raise GloveDecodeError(
            "bad_legacy", f"expected {len(LEGACY_FIELDS)} '&'-separated ints ({fields}), got {_shown(text)}"
        )
    v = [int(p) for p in parts]
    for name, x in zip(LEGACY_FIELDS, v, strict=True):
        limit = analog_max if name in LEGACY_FIELDS[:7] else 1
        if x > limit:
            raise GloveDecodeError("out_of_range", f"{name}={x} is above {limit} in {_shown(text)}")
    flags = frozenset(_BUTTON_FLAG[name] for name, x in zip(LEGACY_FIELDS[7:], v[7:], strict=True) if x)
    return GlovePacket(curl=tuple(v[:5]), joystick=(v[5], v[6]), flags=flags)


def decode_line(line: bytes | str, encoding: str = "alpha", analog_max: int = 4095) -> GlovePacket:
    """``decode_alpha`` or ``decode_legacy`` (``ValueError`` only for a bad ``encoding``)."""
    if encoding == "alpha":
        return decode_alpha(line, analog_max)
    if encoding == "legacy":
        return decode_legacy(line, analog_max)
    raise ValueError(f"encoding={encoding!r}: allowed values are 'alpha', 'legacy'")


@dataclass(frozen=True, slots=True)
class GloveReading:
    """A packet normalised by ``analog_max`` (fractions of full scale, before calibration).

    ``curl`` Shape (5,) 0..1; ``joints`` Shape (5, 4) 0..1, NaN where no ``(xAy)`` key came;
    ``splay`` Shape (5,) 0..1 (0.5 = neutral), NaN where absent; ``joystick`` Shape (2,) -1..1
    (0 = centre, also when absent); ``trigger`` 0..1 (0 when absent); ``buttons`` held names.
    """

    curl: npt.NDArray[np.float64]
    joints: npt.NDArray[np.float64]
    splay: npt.NDArray[np.float64]
    joystick: npt.NDArray[np.float64]
    trigger: float
    buttons: frozenset[str]


def normalise(packet: GlovePacket, analog_max: int) -> GloveReading:
    """Divide by ``analog_max`` and clip. Absent curls read 0 (the driver's default as well)."""
    if analog_max <= 0:
        raise ValueError(f"analog_max={analog_max}: must be > 0 (1023 on AVR, 4095 on ESP32)")
    m = float(analog_max)
    curl = np.array([0.0 if v is None else v / m for v in packet.curl])
    np.clip(curl, 0.0, 1.0, out=curl)
    joints = np.full((5, 4), np.nan)
    for (f, j), v in packet.joints.items():
        joints[f, j] = min(v / m, 1.0)
    splay = np.array([np.nan if v is None else min(v / m, 1.0) for v in packet.splay])
    joystick = np.array([0.0 if v is None else 2.0 * v / m - 1.0 for v in packet.joystick])
    np.clip(joystick, -1.0, 1.0, out=joystick)
    trigger = 0.0 if packet.trigger is None else min(packet.trigger / m, 1.0)
    return GloveReading(curl, joints, splay, joystick, trigger, packet.buttons)


# -- host -> glove ---------------------------------------------------------------------------------
def _scaled(force: npt.ArrayLike, ffb_max: int, invert: bool) -> list[int]:
    f = np.asarray(force, dtype=np.float64)
    if f.shape != (5,):
        raise ValueError(f"force must have shape (5,) (thumb..pinky, 0..1), got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError(f"force must be finite, got {f.tolist()}")
    if ffb_max <= 0:
        raise ValueError(f"ffb_max={ffb_max}: must be > 0 (1000 for LucidVR firmware, 4095 for senseshift)")
    v = np.rint(np.clip(f, 0.0, 1.0) * ffb_max).astype(np.int64)
    if invert:
        v = ffb_max - v
    return [int(x) for x in v]


def encode_ffb(force: npt.ArrayLike, ffb_max: int = 1000, invert: bool = False, newline: bool = True) -> bytes:
    """``A<int>B<int>C<int>D<int>E<int>\\n``: ``force`` Shape (5,) thumb..pinky, 0 (free) .. 1
    (blocked), clipped, scaled to 0..``ffb_max`` (``ffb_max - v`` when ``invert``)."""
    v = _scaled(force, ffb_max, invert)
    body = "".join(f"{k}{x}" for k, x in zip(_FINGER_KEYS, v, strict=True))
    return (body + ("\n" if newline else "")).encode("ascii")


def encode_vibration(frequency_hz: float, duration_s: float, amplitude: float, newline: bool = True) -> bytes:
    """``F<freq>G<dur>H<amp>\\n``, each ``%.2f`` (amplitude clipped to 0..1, others to >= 0)."""
    vals = (frequency_hz, duration_s, amplitude)
    if not all(np.isfinite(x) for x in vals):
        raise ValueError(f"vibration values must be finite, got {vals}")
    f, d, a = max(frequency_hz, 0.0), max(duration_s, 0.0), min(max(amplitude, 0.0), 1.0)
    return (f"F{f:.2f}G{d:.2f}H{a:.2f}" + ("\n" if newline else "")).encode("ascii")


def encode_ffb_legacy(force: npt.ArrayLike, ffb_max: int = 1000, invert: bool = False) -> bytes:
    """Legacy force feedback ``t&i&m&r&p\\n`` (same scaling as ``encode_ffb``)."""
    return ("&".join(str(x) for x in _scaled(force, ffb_max, invert)) + "\n").encode("ascii")


# -- glove -> host (for fakes, replay and tests) ---------------------------------------------------
def encode_input_alpha(
    curl: Sequence[int],
    joystick: tuple[int, int],
    trigger: int,
    flags: Iterable[str] = (),
    splay: Sequence[int] | None = None,
    joints: Mapping[tuple[int, int], int] | None = None,
) -> bytes:
    """A glove line in the LucidVR firmware's order: ``A B C D E F G P``, the flags present in
    ``H``..``O`` order, then ``(AB)``..``(EB)`` if ``splay`` is given, then ``(xAy)`` keys."""
    if len(curl) != 5:
        raise ValueError(f"curl must have 5 values (thumb..pinky), got {len(curl)}")
    parts = [f"{k}{int(v)}" for k, v in zip(_FINGER_KEYS, curl, strict=True)]
    parts += [f"F{int(joystick[0])}", f"G{int(joystick[1])}", f"P{int(trigger)}"]
    fl = set(flags)
    bad = fl - set(FLAG_BUTTONS)
    if bad:
        raise ValueError(f"unknown flag keys {sorted(bad)}; allowed: {list(FLAG_BUTTONS)}")
    parts += [k for k in FLAG_BUTTONS if k in fl]
    if splay is not None:
        parts += [f"({k}B){int(v)}" for k, v in zip(_FINGER_KEYS, splay, strict=True)]
    for (f, j), v in sorted((joints or {}).items()):
        parts.append(f"({_FINGER_KEYS[f]}A{'ABCD'[j]}){int(v)}")
    return ("".join(parts) + "\n").encode("ascii")


def encode_input_legacy(curl: Sequence[int], joystick: tuple[int, int], buttons: Iterable[str] = ()) -> bytes:
    """A legacy glove line (13 ints). ``buttons``: names among joystick_click, trigger, a, b,
    grab, pinch (the legacy format has no menu/calibrate)."""
    held = set(buttons)
    bad = held - set(LEGACY_FIELDS[7:])
    if bad:
        allowed = list(LEGACY_FIELDS[7:])
        raise ValueError(f"buttons {sorted(bad)} do not exist in the legacy encoding; allowed: {allowed}")
    vals = [int(v) for v in curl] + [int(joystick[0]), int(joystick[1])]
    vals += [1 if name in held else 0 for name in LEGACY_FIELDS[7:]]
    return ("&".join(str(v) for v in vals) + "\n").encode("ascii")


# -- framing ---------------------------------------------------------------------------------------
class LineAssembler:
    """Bytes in, complete lines out (without the ``\\n``), with bounded memory.

    ``feed`` returns the lines completed by ``data``, in order. A line longer than
    ``max_len`` bytes is dropped up to its next ``\\n`` and reported as ``None`` in that list
    (so a lock-step host can still answer it) and counted in ``overlong``; the buffer never holds
    more than ``max_len`` bytes.
    """

    def __init__(self, max_len: int = 256) -> None:
        if max_len < 1:
            raise ValueError(f"max_len={max_len}: must be >= 1")
        self.max_len = max_len
        self._buf = bytearray()
        self._discarding = False
        self.overlong = 0

    def reset(self) -> None:
        self._buf.clear()
        self._discarding = False

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete line."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | None]:
        out: list[bytes | None] = []
        start = 0
        n = len(data)
        while start < n:
            nl = data.find(b"\n", start)
            end = n if nl < 0 else nl
            if self._discarding:
                if nl >= 0:
                    self._discarding = False
                    out.append(None)
            elif len(self._buf) + (end - start) > self.max_len:
                self._buf.clear()
                self.overlong += 1
                if nl >= 0:
                    out.append(None)
                else:
                    self._discarding = True
            elif nl >= 0:
                self._buf += data[start:end]
                out.append(bytes(self._buf))
                self._buf.clear()
            else:
                self._buf += data[start:end]
            if nl < 0:
                break
            start = nl + 1
        return out
