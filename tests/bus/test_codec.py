"""Strict decoding: every kind of bad input is rejected, counted by reason, and survivable."""

from __future__ import annotations

import os

import msgpack
import numpy as np
import pytest

from teleop.bus import Decoder, Encoder, JointCommand, RobotState
from teleop.bus.codec import SCHEMA_VERSION, encode_raw
from teleop.errors import DecodeError


def _state(n: int = 5) -> RobotState:
    return RobotState(
        time_s=1.5,
        mode="active",
        q=np.arange(n, dtype=float),
        dq=np.zeros(n),
        target=np.ones(n),
        effort=np.zeros(n),
        body_pose=np.zeros((3, 7)),
        fingertip_force=np.zeros((10, 3)),
        cmd_source_capture_ns=np.array([1, 2], dtype=np.int64),
    )


def _frames(body: dict, kind: str = "joint_command", topic: str = "t", **header) -> list[bytes]:
    obj = {"v": SCHEMA_VERSION, "k": kind, "t": topic, "s": "x", "q": 0, "tc": 1, "ts": 2, "b": body}
    obj.update(header)
    return [topic.encode() + b"\0" + encode_raw(obj)]


def test_round_trip_keeps_arrays_and_header():
    enc, dec = Encoder("robot"), Decoder()
    frame = enc.encode(_state(), "robot/state", capture_ns=123)
    assert frame.startswith(b"robot/state\0")
    header, msg = dec.decode([frame])
    assert header.kind == "robot_state" and header.source == "robot" and header.capture_ns == 123
    assert header.seq == 0 and header.send_ns >= 123
    assert isinstance(msg, RobotState)
    np.testing.assert_array_equal(msg.q, np.arange(5.0))
    assert msg.body_pose.shape == (3, 7) and msg.q.dtype == np.float64
    assert not msg.q.flags.writeable  # decoded arrays are views of the message, read-only
    assert enc.encode(_state(), "robot/state") != frame  # sequence advanced
    assert dec.stats.accepted == 1 and dec.stats.rejected_total == 0


def test_optional_fields_default():
    _, msg = Decoder().decode(_frames({"q": np.zeros(3)}))
    assert msg.author == "human" and msg.source_capture_ns.shape == (0,)


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"t\0", b"x"], "bad_frames"),
        ([b"t\0\xc1\xff\x00garbage"], "bad_msgpack"),
        ([b"no terminator"], "bad_header"),
        ([b"t\0" + msgpack.packb([1, 2, 3])], "bad_header"),
        (_frames({"q": np.zeros(3)}, v=2), "bad_version"),
        ([b"t\0" + msgpack.packb({"k": "joint_command"})], "bad_version"),  # no "v": docs/bus.md
        (_frames({"q": np.zeros(3)}, v=np.array([1])), "bad_version"),
        (_frames({"q": np.zeros(3)}, v=np.array([1, 1])), "bad_version"),
        (_frames({"q": np.zeros(3)}, v=True), "bad_version"),
        (_frames({"q": np.zeros(3)}, v=1.0), "bad_version"),
        ([b"t\0" + msgpack.packb({"v": 1, b"k": 1, "t": "t"}, use_bin_type=True)], "bad_header"),
        (_frames({"q": np.zeros(3), b"author": "x"}), "bad_body"),
        (_frames({"q": np.zeros(3), "extra": 1, b"other": 2}), "bad_body"),
        (_frames({"q": np.zeros(3), "source_capture_ns": np.zeros(125_000, np.int64)}), "too_large"),
        (_frames({"q": np.zeros(3)}, kind="nope"), "unknown_kind"),
        (_frames({"q": np.zeros(3)}, q=-1), "bad_header"),
        ([b"t" + _frames({"q": np.zeros(3)}, topic="other")[0][5:]], "bad_header"),
        (_frames({}), "missing_field"),
        (_frames({"q": np.zeros(3), "extra": 1}), "unknown_field"),
        (_frames({"q": [0.0, 1.0]}), "bad_type"),
        (_frames({"q": np.zeros(3, dtype=np.float32)}), "bad_dtype"),
        (_frames({"q": np.zeros((3, 1))}), "bad_shape"),
        (_frames({"q": np.array([0.0, np.nan])}), "non_finite"),
        (_frames({"q": np.zeros(3), "author": 5}), "bad_type"),
        ([b"t\0" + encode_raw({"v": 1, "b": msgpack.ExtType(9, b"xx")})], "bad_array"),
    ],
)
def test_rejections_are_counted_by_reason(frames, reason):
    dec = Decoder()
    with pytest.raises(DecodeError) as info:
        dec.decode(frames)
    assert info.value.reason == reason
    assert dec.stats.rejected[reason] == 1
    # the decoder keeps working after a rejection
    dec.decode(_frames({"q": np.zeros(3)}))
    assert dec.stats.accepted == 1


def test_bound_shape_rejects_wrong_joint_count():
    dec = Decoder(accept=(JointCommand,), bind={"n": 4})
    with pytest.raises(DecodeError) as info:
        dec.decode(_frames({"q": np.zeros(3)}))
    assert info.value.reason == "bad_shape" and "n=4" in str(info.value)
    dec.decode(_frames({"q": np.zeros(4)}))


def test_inconsistent_symbols_in_one_message_rejected():
    body = {name: getattr(_state(), name) for name in RobotState.SCHEMA}
    body["dq"] = np.zeros(6)
    with pytest.raises(DecodeError, match="bad_shape"):
        Decoder().decode(_frames(body, kind="robot_state"))


def test_huge_length_claims_are_rejected_without_allocating():
    dec = Decoder()
    # bin32 claiming 1 GiB followed by 4 bytes
    claim = b"\x81\xa1v\xc6" + (1 << 30).to_bytes(4, "big") + b"abcd"
    with pytest.raises(DecodeError) as info:
        dec.decode([b"t\0" + claim])
    assert info.value.reason == "bad_msgpack"
    # an array ext claiming 2**31 float64 elements but carrying 8 bytes
    bad = msgpack.ExtType(1, bytes([1, 1]) + (1 << 31).to_bytes(4, "little") + b"\x00" * 8)
    with pytest.raises(DecodeError) as info:
        dec.decode(_frames({"q": bad}))
    assert info.value.reason == "bad_array"
    small = Decoder(max_bytes=100)
    with pytest.raises(DecodeError) as info:
        small.decode([b"t\0" + b"\x00" * 101])
    assert info.value.reason == "too_large"


def test_random_bytes_never_escape_as_other_exceptions():
    dec = Decoder()
    rng = np.random.default_rng(0)
    for i in range(2000):
        payload = os.urandom(int(rng.integers(0, 200)))
        with pytest.raises(DecodeError):
            dec.decode([b"t\0" + payload])
    # mutate a valid message byte by byte
    good = Encoder("x").encode(JointCommand(q=np.zeros(4)), "t")
    for i in range(len(good)):
        mutated = bytearray(good)
        mutated[i] ^= 0xFF
        try:
            dec.decode([bytes(mutated)])
        except DecodeError:
            pass
    assert dec.stats.rejected_total >= 2000


def test_exact_topics_and_namespaces():
    dec = Decoder(topics=["robot/command", "robot/camera/"])
    enc = Encoder("x")
    cmd = JointCommand(q=np.zeros(3))
    dec.decode([enc.encode(cmd, "robot/command")])
    dec.decode([enc.encode(cmd, "robot/camera/head")])
    for topic in ("robot/commandEVIL", "robot/comman", "robot/cameras"):
        with pytest.raises(DecodeError) as info:
            dec.decode([enc.encode(cmd, topic)])
        assert info.value.reason == "bad_topic"
    assert dec.stats.rejected["bad_topic"] == 3


def test_every_variable_dimension_has_a_maximum():
    from teleop.bus.codec import MESSAGE_KINDS, Arr, Dim

    for kind, cls in MESSAGE_KINDS.items():
        for name, spec in cls.SCHEMA.items():
            if isinstance(spec, Arr):
                assert all(isinstance(d, Dim) or type(d) is int for d in spec.shape), (kind, name)
    with pytest.raises(TypeError, match="declared maximum"):
        Arr("float64", ("n",))
