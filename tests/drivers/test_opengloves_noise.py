"""Serial line noise never becomes hand motion or button presses.

Pure decoder properties (any bytes -> a packet or ``GloveDecodeError``, nothing else; an accepted
line is exactly one that matches the grammar), then the driver through the real boundary: random
bytes written to the fake glove's pty master (``FakeLucidGlove.silent`` + ``write_raw``).
"""

from __future__ import annotations

import random
import re
import time

import numpy as np
import pytest
from fake_lucidglove import FakeLucidGlove
from hypothesis import example, given, settings
from hypothesis import strategies as st

from drivers.opengloves import OpenGlovesConfig, OpenGlovesDriver
from drivers.opengloves.protocol_opengloves import (
    BUTTON_NAMES,
    FLAG_BUTTONS,
    LEGACY_FIELDS,
    MAX_LINE_CHARS,
    REJECT_REASONS,
    GloveDecodeError,
    decode_legacy,
    decode_line,
    encode_input_alpha,
    encode_input_legacy,
)
from drivers.samples import ButtonEvent, HandSample

pytestmark = pytest.mark.timeout(60)

MiB = 1 << 20


# -- the decoder: any bytes -----------------------------------------------------------------------
def _in_range(p, analog_max: int) -> bool:
    values = [*p.curl, *p.splay, *p.joystick, *p.joints.values()]
    ok = all(v is None or 0 <= v <= analog_max for v in values)
    return ok and (p.trigger is None or 0 <= p.trigger <= analog_max + 1)


@settings(max_examples=500, deadline=None)
@given(line=st.binary(max_size=600), encoding=st.sampled_from(["alpha", "legacy"]),
       analog_max=st.sampled_from([1023, 4095, 65535]))
@example(line=b"A" + b"9" * 5000, encoding="alpha", analog_max=4095)  # int() of a huge run
@example(line=b"&".join([b"9" * 5000] * 13), encoding="legacy", analog_max=4095)
@example(line=b"(" * 600, encoding="alpha", analog_max=4095)
def test_decode_raises_only_glove_decode_error_for_any_bytes(line, encoding, analog_max):
    try:
        p = decode_line(line, encoding, analog_max)
    except GloveDecodeError as exc:
        assert exc.reason in REJECT_REASONS
        return
    assert _in_range(p, analog_max)


# Text over the protocol's own alphabet reaches far more of the grammar than random bytes do.
_ALPHABET = "ABCDEFGHIJKLMNOPQZ()0123456789&\r \x00"


@settings(max_examples=500, deadline=None)
@given(line=st.text(_ALPHABET, max_size=60) | st.text(max_size=60))
def test_decode_raises_only_glove_decode_error_for_any_text(line):
    for encoding in ("alpha", "legacy"):
        try:
            p = decode_line(line, encoding, 4095)
        except GloveDecodeError as exc:
            assert exc.reason in REJECT_REASONS
        else:
            assert _in_range(p, 4095)


# An independent statement of what is well formed: a full match of known fields, no key twice,
# every value in range. decode_alpha must accept exactly these lines.
_FIELD = re.compile(r"(\([A-E]B\)|\([A-E]A[A-D]\)|\(Z[VGH]\)|[A-GP])([0-9]+)|([H-OZ])")


def _well_formed(line: str, analog_max: int) -> bool:
    body = line[:-1] if line.endswith("\r") else line
    if not body or len(body) > MAX_LINE_CHARS:
        return False
    pos, keys = 0, []
    while pos < len(body):
        m = _FIELD.match(body, pos)
        if m is None:
            return False
        key = m.group(1) or m.group(3)
        if m.group(3) and body[pos + 1 : pos + 2] in tuple("0123456789"):
            return False  # a flag with digits
        if m.group(1):
            limit = 65535 if key.startswith("(Z") else analog_max + (key == "P")
            if len(m.group(2)) > 6 or int(m.group(2)) > limit:
                return False
        keys.append(key)
        pos = m.end()
    return len(keys) == len(set(keys))


_VALUE_KEYS = ["A", "B", "C", "D", "E", "F", "G", "P", "(AB)", "(EB)", "(BAC)", "(EAD)", "(ZV)", "(ZH)"]
_GOOD_FIELD = st.tuples(st.sampled_from(_VALUE_KEYS), st.sampled_from(["0", "5", "1023"])) | st.tuples(
    st.sampled_from(["Z", *FLAG_BUTTONS]), st.just("")
)
_ANY_KEY = st.sampled_from([*_VALUE_KEYS, "Z", *FLAG_BUTTONS, "Q", "(XY)", "(AB", "()", ")", " ", "\r", "#", "a"])
_ANY_VALUE = st.sampled_from(["", "0", "7", "1023", "1024", "4095", "4096", "4097", "65535", "0001", "9999999"])


@st.composite
def _alpha_lines(draw) -> str:
    """Well-formed-looking lines, half of them with one arbitrary field inserted."""
    fields = draw(st.lists(_GOOD_FIELD, max_size=12))
    if draw(st.booleans()):
        fields.insert(draw(st.integers(0, len(fields))), (draw(_ANY_KEY), draw(_ANY_VALUE)))
    return "".join(k + v for k, v in fields)


@settings(max_examples=400, deadline=None)
@given(line=_alpha_lines(), analog_max=st.sampled_from([1023, 4095]))
def test_alpha_accepts_exactly_the_well_formed_lines(line, analog_max):
    try:
        p = decode_line(line + "\n", "alpha", analog_max)
    except GloveDecodeError:
        assert not _well_formed(line, analog_max), line
    else:
        assert _well_formed(line, analog_max), line
        assert _in_range(p, analog_max)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"1&2&3&4&5&6&7&0&0&0&0&0&1&\r\n", None),  # accepted: trailing '&' and CRLF
        (b"1&2&3&4&5&6&7&0&0&0&0&0&1&&\n", "bad_legacy"),
        (b"1&2&3&4&5&6&7&0&0&&0&0&1\n", "bad_legacy"),
        (b" 1&2&3&4&5&6&7&0&0&0&0&0&1\n", "bad_legacy"),
        (b"1&2&3&4&5&6&7&0&0&0&0&0&+1\n", "bad_legacy"),
        (b"1&2&3&4&5&6&7&0&0&0&0&0&1\x00\n", "not_printable"),
        (b"1024&2&3&4&5&6&7&0&0&0&0&0&1\n", "out_of_range"),  # analog_max 1023 below
        (b"1&2&3&4&5&6&1024&0&0&0&0&0&1\n", "out_of_range"),
        (b"1&2&3&4&5&6&7&0&0&2&0&0&1\n", "out_of_range"),  # a button is 0 or 1
    ],
)
def test_legacy_is_strict_too(line, reason):
    if reason is None:
        assert decode_legacy(line, 1023).curl == (1, 2, 3, 4, 5)
        return
    with pytest.raises(GloveDecodeError) as exc:
        decode_legacy(line, 1023)
    assert exc.value.reason == reason


def test_the_configured_maximum_is_the_limit():
    assert decode_line(b"A1023B0C0D0E0P1024", "alpha", 1023).curl[0] == 1023
    for bad in (b"A1024B0C0D0E0", b"A0B0C0D0E0P1025"):
        with pytest.raises(GloveDecodeError, match="out_of_range"):
            decode_line(bad, "alpha", 1023)
    assert decode_line(b"A4095B0C0D0E0", "alpha", 4095).curl[0] == 4095


# -- the driver, through the pty ------------------------------------------------------------------
CONFIGS = [("alpha", 4095), ("legacy", 1023)]


@pytest.fixture
def glove(tmp_path, request):
    """(fake, driver, taps): a silent fake glove on a pty and a connected driver reading it."""
    encoding, analog_max = request.param
    fake = FakeLucidGlove(tmp_path / "glove", encoding=encoding, analog_max=analog_max)
    fake.silent = True  # before start: the firmware never sends a record of its own
    fake.start()
    drv = OpenGlovesDriver(OpenGlovesConfig(port=fake.path, encoding=encoding, analog_max=analog_max,
                                            reconnect_interval_s=0.05))
    got: list = []
    drv.add_tap(got.append)
    drv.connect()
    try:
        yield fake, drv, got
    finally:
        drv.disconnect()
        fake.close()


def _frame(encoding: str, analog_max: int, rng: random.Random) -> tuple[bytes, dict]:
    """A real glove line with random values, and what it carries."""
    curl = [rng.randint(0, analog_max) for _ in range(5)]
    joy = (rng.randint(0, analog_max), rng.randint(0, analog_max))
    if encoding == "legacy":
        held = {b for b in LEGACY_FIELDS[7:] if rng.random() < 0.3}
        return encode_input_legacy(curl, joy, held), {"curl": curl, "joy": joy, "buttons": held}
    trigger = rng.randint(0, analog_max + 1)
    flags = {k for k in FLAG_BUTTONS if rng.random() < 0.3}
    splay = [rng.randint(0, analog_max) for _ in range(5)]
    line = encode_input_alpha(curl, joy, trigger, flags, splay)
    info = {"curl": curl, "joy": joy, "trigger": trigger, "splay": splay, "buttons": {FLAG_BUTTONS[f] for f in flags}}
    return line, info


def _expected_channels(info: dict, encoding: str, m: int) -> np.ndarray:
    """The driver's channels for a line, uncalibrated (identity calibration)."""
    curl = np.array([v / m for v in info["curl"]])
    if encoding == "legacy":
        splay, trigger = np.zeros(5), float("trigger" in info["buttons"])
    else:
        splay, trigger = np.array([v / m for v in info["splay"]]) * 2.0 - 1.0, min(info["trigger"] / m, 1.0)
    joy = np.array([2.0 * v / m - 1.0 for v in info["joy"]])
    return np.concatenate([curl, splay, joy, [trigger]])


def _wait_for_hand(drv, got, n: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(type(s) is HandSample for s in got) < n:
        assert time.monotonic() < deadline, f"{sum(type(s) is HandSample for s in got)} of {n}: {drv.health()}"
        time.sleep(0.005)


def _rejected(drv) -> int:
    errors = drv.health().errors
    return errors.get("bad_line", 0) + errors.get("line_too_long", 0)


@pytest.mark.parametrize("glove", CONFIGS, indirect=True, ids=["alpha", "legacy"])
def test_one_mebibyte_of_random_bytes_makes_no_sample_and_no_button_event(glove):
    fake, drv, got = glove
    encoding, m = fake.encoding, fake.analog_max
    noise = random.Random(20240601).randbytes(MiB)
    sentinel, info = _frame(encoding, m, random.Random(7))
    t0 = time.monotonic()
    fake.write_raw(noise)
    fake.write_raw(b"\n" + sentinel)  # ends the last noise line; its sample proves all noise was read
    _wait_for_hand(drv, got, 1)
    elapsed = time.monotonic() - t0
    lines = noise.count(b"\n") + 1
    health = drv.health()
    events = [s for s in got if type(s) is ButtonEvent]
    hands = [s for s in got if type(s) is HandSample]
    print(f"{encoding}: 1 MiB of noise read in {elapsed:.2f} s: {lines} lines, {len(hands) - 1} noise hand samples, "
          f"{len(events) - len(info['buttons'])} noise button events, errors {health.errors}")
    assert len(hands) == 1 and np.array_equal(hands[0].channels, _expected_channels(info, encoding, m))
    assert [(e.button, e.pressed) for e in events] == [(b, True) for b in BUTTON_NAMES if b in info["buttons"]]
    assert _rejected(drv) == lines, "every noise line is rejected, and counted"
    assert health.errors.get("bad_line:not_printable", 0) > lines // 2
    assert health.samples == 1 + len(events) and drv.info == {}
    assert health.connected and "device_lost" not in health.errors
    assert drv.replies == lines + 1  # the lock-step: every line answered, noise included
    assert fake.wait_until(lambda: fake.replies == drv.replies + 1)  # + the wake-up "\n" at open


@pytest.mark.parametrize("glove", CONFIGS, indirect=True, ids=["alpha", "legacy"])
def test_random_bytes_between_real_frames_only_the_frames_become_samples(glove):
    fake, drv, got = glove
    encoding, m = fake.encoding, fake.analog_max
    rng = random.Random(99)
    frames = [_frame(encoding, m, rng) for _ in range(300)]
    stream = bytearray()
    for line, _ in frames:
        stream += rng.randbytes(rng.randint(0, 3000)) + b"\n" + line
    stream += rng.randbytes(2000) + b"\n"
    fake.write_raw(bytes(stream))
    _wait_for_hand(drv, got, len(frames))
    assert fake.wait_until(lambda: drv.replies == stream.count(b"\n"))  # every line read (and answered)
    hands = [s for s in got if type(s) is HandSample]
    assert len(hands) == len(frames)
    for s, (_, info) in zip(hands, frames, strict=True):
        assert np.array_equal(s.channels, _expected_channels(info, encoding, m))
        assert s.buttons == info["buttons"]
    # the button events are exactly the edges between consecutive real frames
    expected, held = [], set()
    for _, info in frames:
        expected += [(b, b in info["buttons"]) for b in BUTTON_NAMES if (b in held) != (b in info["buttons"])]
        held = info["buttons"]
    assert [(e.button, e.pressed) for e in got if type(e) is ButtonEvent] == expected
    errors = drv.health().errors
    print(f"{encoding}: {len(frames)} frames in {len(stream)} bytes: {len(hands)} hand samples, errors {errors}")
    assert errors["bad_line"] + errors.get("line_too_long", 0) == stream.count(b"\n") - len(frames)


@pytest.mark.parametrize("glove", [("alpha", 1023)], indirect=True, ids=["alpha1023"])
def test_one_bad_field_rejects_the_line_with_a_named_reason(glove):
    fake, drv, got = glove
    good = b"A10B20C30D40E50F511G511P0J\n"  # "a" held
    bad = {
        b"A10B20C30D40E1024F511G511P0\n": "out_of_range",  # pinky above analog_max = 1023
        b"A10B20C30D40E50F511G511P1025\n": "out_of_range",  # P above max + 1
        b"A10B20C30 D40E50F511G511P0\n": "unexpected_char",  # junk between fields
        b"A10B20C30D40E50F511G511P0K;\n": "unexpected_char",  # junk after the fields
        b"A10B20C30D40E50F511G511P0KQ\n": "unknown_key",
        b"A10B20C30D40E50B99F511G511P0\n": "duplicate_key",
        b"A10B20C30D40E50F511G511PK\n": "missing_value",
        b"A10B20C30D40E50F511G511P0K2\n": "unexpected_value",
        b"A10B20C30D40E50F511G511P0\xc2\xa0K\n": "not_printable",
        b"K\n": "missing_finger",  # a flag alone: not a hand
        b"A10B20C30D40F511G511P0K\n": "missing_finger",
    }
    fake.write_raw(good)
    _wait_for_hand(drv, got, 1)
    for line in bad:  # each would release "a" (and most press "b") if any of it were used
        fake.write_raw(line)
    fake.write_raw(good)
    _wait_for_hand(drv, got, 2)
    errors = drv.health().errors
    assert errors["bad_line"] == len(bad)
    for reason in set(bad.values()):
        assert errors[f"bad_line:{reason}"] == list(bad.values()).count(reason), reason
    hands = [s for s in got if type(s) is HandSample]
    assert len(hands) == 2 and all(s.channels[4] == 50 / 1023 and s.buttons == {"a"} for s in hands)
    assert [(e.button, e.pressed) for e in got if type(e) is ButtonEvent] == [("a", True)]  # no partial update
    assert drv.health().last_error.startswith("bad_line: missing_finger: no curl for E")
