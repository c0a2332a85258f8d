"""Pure protocol tests: Alpha and legacy decoding, normalisation, host->glove encoding, framing."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.opengloves.protocol_opengloves import (
    BUTTON_NAMES,
    FLAG_BUTTONS,
    REJECT_REASONS,
    GloveDecodeError,
    GlovePacket,
    LineAssembler,
    decode_alpha,
    decode_legacy,
    decode_line,
    encode_ffb,
    encode_ffb_legacy,
    encode_input_alpha,
    encode_input_legacy,
    encode_vibration,
    normalise,
)
from teleop.errors import DecodeError

OPEN_4095 = b"A0B0C0D0E0F2047G2047P0\n"
FIST_4095 = b"A4095B4095C4095D4095E4095F2047G2047P4096ILM\n"


# -- Alpha decoding -------------------------------------------------------------------------------
def test_open_and_fist_examples_from_the_firmware():
    p = decode_alpha(OPEN_4095)
    assert p.curl == (0, 0, 0, 0, 0) and p.joystick == (2047, 2047) and p.trigger == 0
    assert p.flags == frozenset() and not p.is_info
    f = decode_alpha(FIST_4095)
    assert f.curl == (4095,) * 5 and f.trigger == 4096
    assert f.buttons == {"trigger", "grab", "pinch"}


def test_every_flag_maps_to_its_button():
    assert set(FLAG_BUTTONS) == set("HIJKLMNO")
    assert set(FLAG_BUTTONS.values()) == set(BUTTON_NAMES)
    for key, name in FLAG_BUTTONS.items():
        assert decode_alpha(f"A1{key}\n").buttons == {name}
    assert decode_alpha("A1HIJKLMNO").buttons == set(BUTTON_NAMES)


def test_splay_keys():
    p = decode_alpha("A1(AB)10(BB)20(CB)30(DB)40(EB)50\n")
    assert p.splay == (10, 20, 30, 40, 50)


def test_every_per_joint_key():
    keys = [f"({f}A{j})" for f, j in itertools.product("ABCDE", "ABCD")]
    line = "".join(f"{k}{i + 1}" for i, k in enumerate(keys))
    p = decode_alpha(line)
    assert p.joints == {(f, j): 4 * f + j + 1 for f in range(5) for j in range(4)}
    assert p.curl == (None,) * 5  # per-joint keys alone are a valid packet


def test_joystick_and_analog_trigger():
    p = decode_alpha("F0G4095P123")
    assert p.joystick == (0, 4095) and p.trigger == 123


def test_order_is_free():
    tokens = ["A1", "B2", "C3", "D4", "E5", "F6", "G7", "P8", "I", "(AB)9", "(BAC)10"]
    ref = decode_alpha("".join(tokens))
    for perm in itertools.islice(itertools.permutations(tokens), 0, 5000, 97):
        assert decode_alpha("".join(perm)) == ref


def test_info_packet_with_bare_z():
    p = decode_alpha(b"Z(ZV)3(ZG)0(ZH)1\n")
    assert p.is_info and p.info == {"firmware_version": 3, "device_type": 0, "hand": 1}


def test_info_packet_senseshift_style_without_z():
    p = decode_alpha(b"(ZV)2(ZG)0(ZH)0\n")
    assert p.is_info and p.info == {"firmware_version": 2, "device_type": 0, "hand": 0}


def test_info_keys_next_to_input_keys_are_not_an_info_packet():
    p = decode_alpha(b"A5(ZV)2\n")
    assert not p.is_info and p.curl[0] == 5


def test_crlf_is_tolerated():
    assert decode_alpha(b"A1B2C3D4E5\r\n").curl == (1, 2, 3, 4, 5)
    assert decode_alpha("A1B2C3D4E5\r").curl == (1, 2, 3, 4, 5)


# Until strict decoding these lines were decoded around their junk (unknown keys skipped, junk
# between keys ignored, a value key without digits skipped); now the whole line is rejected.
@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty"),
        (b"\n", "empty"),
        (b"\r\n", "empty"),
        (b"A100Q7B200C300\n", "unknown_key"),
        (b"A100B200(XY)3C300\n", "unknown_key"),
        (b"A100R\n", "unknown_key"),
        (b"A1(BAZ)4\n", "unknown_key"),
        (b"QRS1(XY)2\n", "unknown_key"),
        (b"AB5\n", "missing_value"),
        (b"A1B2C3D4E\n", "missing_value"),
        (b"\x00\xffA1B2C3D4E5\n", "not_printable"),
        (b"A1B2\tC3D4E5\n", "not_printable"),
        (b"A1B2C3D4E5\r\r\n", "not_printable"),
        (b"A1B2C3D4E5\x7f\n", "not_printable"),
        (b"A1 B2C3D4E5\n", "unexpected_char"),
        (b"A1B2-C3D4E5\n", "unexpected_char"),
        (b"A1B2C3#D4E5\n", "unexpected_char"),
        (b"A1B2C3D4E5 \n", "unexpected_char"),
        (b"A1B2C3D4E5a\n", "unexpected_char"),
        (b"#$%^&*\n", "unexpected_char"),
        (b"123456\n", "unexpected_char"),
        (b"A1)B2\n", "unexpected_char"),
        (b"A1(AB", "bad_key"),
        (b"A1()5", "bad_key"),
        (b"A1(A1)5", "bad_key"),
        (b"A1(ABCDEFGH)5", "bad_key"),
        (b"A1B2A3\n", "duplicate_key"),
        (b"A1JJ\n", "duplicate_key"),
        (b"A1J5\n", "unexpected_value"),
        (b"Z1(ZV)2\n", "unexpected_value"),
        (b"A4096\n", "out_of_range"),
        (b"A1F4096\n", "out_of_range"),
        (b"A1P4097\n", "out_of_range"),
        (b"A1(AB)4096\n", "out_of_range"),
        (b"A1(BAC)4096\n", "out_of_range"),
        (b"A0000000001\n", "out_of_range"),
        (b"A1" + b"9" * 5000 + b"\n", "too_long"),
    ],
)
def test_a_malformed_line_is_rejected_whole_with_its_reason(line, reason):
    with pytest.raises(GloveDecodeError) as exc:
        decode_alpha(line)
    assert exc.value.reason == reason and isinstance(exc.value, DecodeError)
    assert reason in REJECT_REASONS


# -- legacy ---------------------------------------------------------------------------------------
def test_legacy_line():
    p = decode_legacy(b"1&2&3&4&5&511&600&1&0&1&0&1&1\n")
    assert p.curl == (1, 2, 3, 4, 5) and p.joystick == (511, 600)
    assert p.buttons == {"joystick_click", "a", "grab", "pinch"}
    assert decode_legacy(b"0&0&0&0&0&0&0&0&0&0&0&0&0&\r\n").buttons == frozenset()


@pytest.mark.parametrize(
    "line", [b"1&2&3\n", b"1&2&3&4&5&6&7&8&9&10&11&12&13&14\n", b"1&2&x&4&5&6&7&8&9&0&1&0&1\n", b""]
)
def test_legacy_bad_line(line):
    with pytest.raises(GloveDecodeError) as exc:
        decode_legacy(line)
    assert exc.value.reason == "bad_legacy" and "13" in str(exc.value)


def test_decode_line_dispatch_and_bad_encoding():
    assert decode_line(OPEN_4095, "alpha").curl == (0,) * 5
    assert decode_line(b"1&2&3&4&5&6&7&0&0&0&0&0&0", "legacy").curl == (1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="alpha"):
        decode_line(OPEN_4095, "beta")


# -- normalisation --------------------------------------------------------------------------------
@pytest.mark.parametrize("analog_max", [1023, 4095])
def test_normalise_both_maxima(analog_max):
    half = analog_max // 2
    line = encode_input_alpha([0, half, analog_max, 0, 0], (half, analog_max), analog_max + 1, "I",
                              splay=[half] * 5, joints={(1, 2): analog_max})
    r = normalise(decode_alpha(line), analog_max)
    np.testing.assert_allclose(r.curl, [0, 0.5, 1, 0, 0], atol=1e-3)
    np.testing.assert_allclose(r.joystick, [0, 1], atol=1e-3)
    assert r.trigger == 1.0  # P = max + 1 is clipped
    np.testing.assert_allclose(r.splay, 0.5, atol=1e-3)
    assert r.joints[1, 2] == 1.0 and np.isnan(r.joints).sum() == 19
    assert r.buttons == {"trigger"}


def test_normalise_defaults_for_absent_keys():
    r = normalise(decode_alpha("I"), 4095)
    assert r.curl.tolist() == [0.0] * 5 and r.joystick.tolist() == [0.0, 0.0] and r.trigger == 0.0
    assert np.isnan(r.splay).all() and np.isnan(r.joints).all()


def test_normalise_clips_values_above_max():
    r = normalise(GlovePacket(curl=(5000, None, None, None, None), joystick=(9999, None)), 1023)
    assert r.curl[0] == 1.0 and r.joystick[0] == 1.0
    with pytest.raises(ValueError, match="analog_max"):
        normalise(decode_alpha("A1"), 0)


# -- host -> glove --------------------------------------------------------------------------------
def test_ffb_lucidvr_scale():
    assert encode_ffb([0, 0.25, 0.5, 0.75, 1]) == b"A0B250C500D750E1000\n"
    assert encode_ffb([-1, 2, 0.5, 0, 1]) == b"A0B1000C500D0E1000\n"  # clipped


def test_ffb_senseshift_scale_and_invert():
    assert encode_ffb([0, 0.5, 1, 0, 1], ffb_max=4095) == b"A0B2048C4095D0E4095\n"
    assert encode_ffb([0, 0.25, 1, 0, 1], ffb_max=1000, invert=True) == b"A1000B750C0D1000E0\n"
    assert encode_ffb([0.1] * 5, newline=False) == b"A100B100C100D100E100"


@pytest.mark.parametrize("force", [[0, 0, 0, 0], [0, 0, 0, 0, float("nan")], [[0] * 5]])
def test_ffb_rejects_bad_force(force):
    with pytest.raises(ValueError, match="force"):
        encode_ffb(force)


def test_ffb_rejects_bad_scale():
    with pytest.raises(ValueError, match="ffb_max"):
        encode_ffb([0] * 5, ffb_max=0)


def test_vibration_format():
    assert encode_vibration(160, 0.25, 0.5) == b"F160.00G0.25H0.50\n"
    assert encode_vibration(1.234, 0.005, 2.0) == b"F1.23G0.01H1.00\n"  # %.2f; amplitude clipped
    assert encode_vibration(100, 1, 0.3, newline=False) == b"F100.00G1.00H0.30"
    with pytest.raises(ValueError, match="finite"):
        encode_vibration(float("inf"), 1, 1)


def test_legacy_ffb():
    assert encode_ffb_legacy([0, 0.5, 1, 0, 0.1]) == b"0&500&1000&0&100\n"
    assert encode_ffb_legacy([0, 0.5, 1, 0, 0.1], ffb_max=4095, invert=True) == b"4095&2047&0&4095&3685\n"


# -- glove-side encoders (used by the fake firmware) ----------------------------------------------
def test_input_encoder_matches_firmware_examples():
    assert encode_input_alpha([0] * 5, (2047, 2047), 0) == OPEN_4095
    assert encode_input_alpha([4095] * 5, (2047, 2047), 4096, "MLI") == FIST_4095
    assert encode_input_alpha([1, 2, 3, 4, 5], (511, 511), 0, "OH", splay=[6, 7, 8, 9, 10], joints={(1, 2): 11}) == (
        b"A1B2C3D4E5F511G511P0HO(AB)6(BB)7(CB)8(DB)9(EB)10(BAC)11\n"
    )
    assert encode_input_legacy([1, 2, 3, 4, 5], (6, 7), {"trigger", "pinch"}) == b"1&2&3&4&5&6&7&0&1&0&0&0&1\n"
    with pytest.raises(ValueError, match="menu"):
        encode_input_legacy([0] * 5, (0, 0), {"menu"})
    with pytest.raises(ValueError, match="flag"):
        encode_input_alpha([0] * 5, (0, 0), 0, "Q")


ints = st.integers(0, 4095)


@settings(max_examples=200, deadline=None)
@given(
    curl=st.lists(ints, min_size=5, max_size=5),
    joy=st.tuples(ints, ints),
    trig=st.integers(0, 4096),
    flags=st.sets(st.sampled_from(sorted(FLAG_BUTTONS))),
    splay=st.none() | st.lists(ints, min_size=5, max_size=5),
    joints=st.dictionaries(st.tuples(st.integers(0, 4), st.integers(0, 3)), ints, max_size=6),
)
def test_alpha_round_trip(curl, joy, trig, flags, splay, joints):
    p = decode_alpha(encode_input_alpha(curl, joy, trig, flags, splay, joints))
    assert p.curl == tuple(curl) and p.joystick == joy and p.trigger == trig
    assert p.flags == flags and p.joints == joints
    assert p.splay == (tuple(splay) if splay is not None else (None,) * 5)


# -- framing --------------------------------------------------------------------------------------
def test_assembler_joins_split_lines_and_splits_joined_ones():
    a = LineAssembler()
    assert a.feed(b"A1B") == []
    assert a.feed(b"2\nC3\n\nD") == [b"A1B2", b"C3", b""]
    assert a.pending == 1
    assert a.feed(b"4\n") == [b"D4"]


def test_assembler_drops_overlong_line_and_recovers():
    a = LineAssembler(max_len=16)
    assert a.feed(b"x" * 10) == []
    for _ in range(100):  # garbage keeps coming without a newline: memory stays bounded
        assert a.feed(b"y" * 50) == []
        assert a.pending <= 16
    assert a.overlong == 1
    assert a.feed(b"zz\nA1\n") == [None, b"A1"]  # the dropped line is reported once, at its end
    assert a.overlong == 1


def test_assembler_limit_is_inclusive():
    a = LineAssembler(max_len=4)
    assert a.feed(b"abcd\nabcde\nab") == [b"abcd", None]
    assert a.feed(b"c\n") == [b"abc"] and a.overlong == 1
    assert a.feed(b"x" * 9 + b"\n") == [None] and a.overlong == 2
    with pytest.raises(ValueError):
        LineAssembler(0)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20),
    cuts=st.lists(st.integers(0, 1000), max_size=10),
)
def test_assembler_any_chunking(lines, cuts):
    stream = b"".join(line + b"\n" for line in lines)
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    a = LineAssembler(max_len=24)
    got = []
    for lo, hi in itertools.pairwise(bounds):
        got += a.feed(stream[lo:hi])
        assert a.pending <= 24
    assert got == [line if len(line) <= 24 else None for line in lines]
    assert a.overlong == sum(len(line) > 24 for line in lines)
