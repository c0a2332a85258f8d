"""The decoder raises nothing but ``DecodeError`` for any bytes: arbitrary byte strings,
arbitrary msgpack objects under a valid header, and mutations of a valid message of every kind.
Each case also checks the catch-all never fired (reason ``internal`` would mean a check we
missed, turned into a rejection)."""

from __future__ import annotations

import msgpack
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teleop.bus import Decoder
from teleop.bus.codec import MESSAGE_KINDS, SCHEMA_VERSION, Arr, Dim, Encoder, Message, encode_raw
from teleop.errors import DecodeError

KINDS = sorted(MESSAGE_KINDS)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def example(cls: type[Message]) -> Message:
    """A valid message of ``cls``, built from its schema (every variable dimension = 2)."""
    values = {}
    for name, spec in cls.SCHEMA.items():
        if isinstance(spec, Arr):
            shape = tuple(2 if isinstance(d, Dim) else d for d in spec.shape)
            values[name] = np.zeros(shape, dtype=spec.np_dtype)
        elif spec is float:
            values[name] = 0.5
        elif spec is int:
            values[name] = 1
        elif spec is str:
            values[name] = "x"
        elif spec is bool:
            values[name] = True
        elif spec == "strs":
            values[name] = ("a", "b")
        elif spec == "strmap":
            values[name] = {"a": "b"}
        else:
            values[name] = {"a": 1, "b": 2.5}
    return cls(**values)


def check(decoder: Decoder, frames: list[bytes]) -> None:
    try:
        decoder.decode(frames)
    except DecodeError as err:
        assert err.reason != "internal", err
    # anything else propagates and fails the test


def test_every_kind_round_trips():
    enc = Encoder("prop")
    for kind in KINDS:
        cls = MESSAGE_KINDS[kind]
        header, msg = Decoder().decode([enc.encode(example(cls), "topic/x")])
        assert header.kind == kind and type(msg) is cls


@SETTINGS
@given(st.binary(max_size=2048), st.sampled_from([b"", b"robot/command\0", b"t\0"]))
def test_arbitrary_bytes(data: bytes, prefix: bytes):
    check(Decoder(), [prefix + data])


scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=True)
           | st.text(max_size=20) | st.binary(max_size=20))
wire_arrays = st.builds(
    lambda code, ndim, dims, body: msgpack.ExtType(1, bytes([code, ndim]) + b"".join(
        int(d).to_bytes(4, "little") for d in dims[:ndim]) + body),
    st.integers(0, 10), st.integers(0, 9), st.lists(st.integers(0, 2**32 - 1), min_size=9, max_size=9),
    st.binary(max_size=64),
)
good_arrays = st.builds(lambda n, dt: np.zeros(n, dtype=dt), st.integers(0, 4),
                        st.sampled_from(["<f8", "<f4", "<i8", "u1", "?", "<i2"]))
values = st.recursive(
    scalars | wire_arrays | good_arrays | st.builds(lambda c, d: msgpack.ExtType(c, d), st.integers(0, 127),
                                                    st.binary(max_size=16)),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.binary(max_size=8) | st.integers(-5, 5), inner, max_size=4),
    max_leaves=12,
)


def _pack(obj) -> bytes:
    return encode_raw(obj)


@SETTINGS
@given(st.sampled_from(KINDS), st.dictionaries(st.text(max_size=12) | st.binary(max_size=8), values, max_size=6),
       st.booleans())
def test_arbitrary_bodies_under_a_valid_header(kind: str, junk: dict, use_real_names: bool):
    cls = MESSAGE_KINDS[kind]
    body = dict(junk)
    if use_real_names:  # real field names with arbitrary values reach every type check
        names = list(cls.SCHEMA)
        body = {names[i % len(names)]: v for i, v in enumerate(junk.values())}
    obj = {"v": SCHEMA_VERSION, "k": kind, "t": "t", "s": "x", "q": 0, "tc": 1, "ts": 2, "b": body}
    check(Decoder(), [b"t\0" + _pack(obj)])


@SETTINGS
@given(st.dictionaries(st.sampled_from(["v", "k", "t", "s", "q", "tc", "ts", "b"]) | st.text(max_size=3)
                       | st.binary(max_size=3), values, max_size=9))
def test_arbitrary_headers(obj: dict):
    check(Decoder(), [b"t\0" + _pack(obj)])


@SETTINGS
@given(st.sampled_from(KINDS), st.data())
def test_mutated_valid_messages(kind: str, data):
    frame = bytearray(Encoder("prop").encode(example(MESSAGE_KINDS[kind]), "t"))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, len(frame) - 1))
        if op == "flip":
            frame[i] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del frame[i:]
            if not frame:
                break
        else:
            frame[i:i] = data.draw(st.binary(min_size=1, max_size=8))
    check(Decoder(), [bytes(frame)])
    check(Decoder(bind={"n": 2}, topics=["t"]), [bytes(frame), b"x"])
