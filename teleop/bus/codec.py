"""Wire format of every bus message, and strict decoding.

A message is one ZeroMQ frame: the topic (UTF-8, so SUB prefix filtering works), a NUL byte,
then a msgpack map ``{"v": version, "k": kind, "t": topic, "s": source id, "q": sequence, "tc": capture ns,
"ts": send ns, "b": body}``. Times are ``time.monotonic_ns()`` on the sender's host. NumPy
arrays travel as msgpack ext type 1: ``dtype code (u8), ndim (u8), shape (ndim x u32 LE), raw
little-endian bytes``; never as lists, never pickled.

One frame (not topic + payload frames) because ZMQ_CONFLATE, which keeps a control subscriber
on the newest message whatever the sender has queued, only works with single-part messages.

Decoding is strict: anything unexpected raises ``DecodeError(reason, detail)``, and nothing else,
for any bytes; receivers count reasons in ``DecodeStats`` and keep running. Every array dimension
that is not fixed has a declared maximum (``Dim``), so no valid message can be made arbitrarily
large by its sender.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NamedTuple

import msgpack
import numpy as np

from teleop.errors import DecodeError

logger = logging.getLogger(__name__)

__all__ = [
    "SCHEMA_VERSION",
    "Arr",
    "Dim",
    "Header",
    "Message",
    "DecodeStats",
    "Encoder",
    "Decoder",
    "message",
    "MESSAGE_KINDS",
    "MAX_MESSAGE_BYTES",
]

SCHEMA_VERSION = 1
#: Hard cap on one message; also set as ZMQ_MAXMSGSIZE so a peer cannot make us allocate more.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_EXT_ARRAY = 1

# Wire dtype codes. Only little-endian fixed-size numeric types travel on the bus.
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f8"),
    2: np.dtype("<f4"),
    3: np.dtype("<i8"),
    4: np.dtype("<i4"),
    5: np.dtype("u1"),
    6: np.dtype("?"),
    7: np.dtype("<u2"),
    8: np.dtype("<i2"),
}
_CODES: dict[np.dtype, int] = {dt: code for code, dt in _DTYPES.items()}
_HEADER_KEYS = frozenset({"v", "k", "t", "s", "q", "tc", "ts", "b"})


@dataclass(frozen=True)
class Dim:
    """A variable array dimension: its symbol (``"n"``: fields of one message that use the same
    symbol must agree, and a receiver may bind it) and the largest size a message may carry."""

    symbol: str
    max: int


@dataclass(frozen=True)
class Arr:
    """Schema of an array field. ``shape`` entries are fixed ints or ``Dim``s."""

    dtype: str
    shape: tuple[int | Dim, ...]
    finite: bool = False
    np_dtype: np.dtype = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "np_dtype", np.dtype(self.dtype))
        for dim in self.shape:
            if not (isinstance(dim, Dim) or (type(dim) is int and dim >= 0)):
                raise TypeError(f"array dimension {dim!r}: a fixed int or a Dim(symbol, max) with a declared maximum")

    @property
    def max_bytes(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim.max if isinstance(dim, Dim) else dim
        return count * self.np_dtype.itemsize


class Header(NamedTuple):
    version: int
    kind: str
    topic: str
    source: str
    seq: int
    capture_ns: int
    send_ns: int


class Message:
    """Base of every typed message. Subclasses are frozen dataclasses registered with
    ``@message(kind)``; ``SCHEMA`` maps each field to ``int``, ``float``, ``str``, ``bool``,
    ``"strs"`` (list of str), ``"strmap"`` (str -> str), ``"nummap"`` (str -> int/float/str/bool)
    or an ``Arr``. Fields with a dataclass default are optional on the wire."""

    KIND: ClassVar[str] = ""
    SCHEMA: ClassVar[dict[str, Any]] = {}
    _REQUIRED: ClassVar[frozenset[str]] = frozenset()


MESSAGE_KINDS: dict[str, type[Message]] = {}


def message(kind: str):
    """Class decorator registering a message dataclass under ``kind``."""

    def wrap(cls: type[Message]) -> type[Message]:
        if kind in MESSAGE_KINDS:
            raise TypeError(f"message kind {kind!r} registered twice")
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if names != set(cls.SCHEMA):
            raise TypeError(f"{cls.__name__}: SCHEMA keys {sorted(cls.SCHEMA)} != fields {sorted(names)}")
        from dataclasses import MISSING

        cls.KIND = kind
        cls._REQUIRED = frozenset(
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING  # type: ignore[arg-type]
        )
        MESSAGE_KINDS[kind] = cls
        return cls

    return wrap


class DecodeStats:
    """Rejected-message counters by reason, plus sequence gaps per (source, topic)."""

    def __init__(self) -> None:
        self.rejected: Counter[str] = Counter()
        self.accepted = 0
        self.gaps = 0  # messages missing between consecutive sequence numbers
        self.last_error: str | None = None
        self._last_seq: dict[tuple[str, str], int] = {}

    def reject(self, err: DecodeError) -> None:
        self.rejected[err.reason] += 1
        self.last_error = str(err)

    def accept(self, header: Header) -> None:
        self.accepted += 1
        key = (header.source, header.topic)
        last = self._last_seq.get(key)
        if last is not None and header.seq > last + 1:
            self.gaps += header.seq - last - 1
        self._last_seq[key] = header.seq

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "gaps": self.gaps, "rejected": dict(self.rejected)}


_SHAPE_STRUCTS = [struct.Struct(f"<{n}I") for n in range(9)]
_HEAD_STRUCTS = [struct.Struct(f"<BB{n}I") for n in range(9)]


def _pack_array(arr: np.ndarray) -> msgpack.ExtType:
    code = _CODES.get(arr.dtype)
    if code is None:
        if arr.dtype.byteorder == ">":  # big-endian in, little-endian on the wire
            return _pack_array(arr.astype(arr.dtype.newbyteorder("<")))
        raise TypeError(f"dtype {arr.dtype} cannot travel on the bus; use one of {sorted(str(d) for d in _CODES)}")
    ndim = arr.ndim
    if ndim > 8:
        raise TypeError(f"arrays up to 8 dims travel on the bus, got {ndim}")
    # tuple.__new__ skips ExtType's Python-level argument checks (ours are already right).
    return tuple.__new__(msgpack.ExtType, (_EXT_ARRAY, _HEAD_STRUCTS[ndim].pack(code, ndim, *arr.shape) + arr.tobytes()))


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return _pack_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} on the bus")


def _ext_hook(code: int, data: bytes) -> Any:
    if code != _EXT_ARRAY:
        raise DecodeError("bad_array", f"unknown msgpack ext type {code}")
    if len(data) < 2:
        raise DecodeError("bad_array", "array header truncated")
    dcode, ndim = data[0], data[1]
    dt = _DTYPES.get(dcode)
    if dt is None:
        raise DecodeError("bad_dtype", f"unknown array dtype code {dcode}")
    if ndim > 8 or len(data) < 2 + 4 * ndim:
        raise DecodeError("bad_array", f"array header truncated or ndim {ndim} > 8")
    shape = _SHAPE_STRUCTS[ndim].unpack_from(data, 2)
    count = 1
    for s in shape:
        count *= s
    offset = 2 + 4 * ndim
    if count * dt.itemsize != len(data) - offset:
        raise DecodeError(
            "bad_array", f"array claims shape {shape} of {dt} ({count * dt.itemsize} bytes) but carries {len(data) - offset}"
        )
    arr = np.frombuffer(data, dtype=dt, count=count, offset=offset)
    return arr if ndim == 1 else arr.reshape(shape)


class Encoder:
    """Turns messages into wire frames. One per publishing socket (keeps a msgpack Packer)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._packer = msgpack.Packer(default=_default, use_bin_type=True, autoreset=True)
        self._seq: dict[str, int] = {}

    def last_seq(self, topic: str) -> int:
        return self._seq.get(topic, 0) - 1

    def encode(self, msg: Message, topic: str, capture_ns: int | None = None) -> bytes:
        seq = self._seq.get(topic, 0)
        self._seq[topic] = seq + 1
        now = time.monotonic_ns()
        header = Header(SCHEMA_VERSION, msg.KIND, topic, self.source, seq, now if capture_ns is None else int(capture_ns),
                        now)
        return _frame(self._packer.pack, msg, header)


def _frame(pack: Any, msg: Message, h: Header) -> bytes:
    """``topic NUL msgpack{header, body}``: the one place that lays a frame out."""
    body = {name: getattr(msg, name) for name in msg.SCHEMA}
    payload = pack({"v": h.version, "k": h.kind, "t": h.topic, "s": h.source, "q": h.seq, "tc": h.capture_ns,
                    "ts": h.send_ns, "b": body})
    return h.topic.encode() + b"\0" + payload


def encode_with_header(msg: Message, header: Header) -> bytes:
    """Re-encode ``msg`` under a header received earlier (source, sequence and times kept), e.g.
    the recorder logging a message it changed. ``header.kind`` must be ``msg.KIND``."""
    if header.kind != msg.KIND:
        raise ValueError(f"header kind {header.kind!r} != message kind {msg.KIND!r}")
    return _frame(lambda obj: msgpack.packb(obj, default=_default, use_bin_type=True), msg, header)


def encode_raw(obj: dict[str, Any]) -> bytes:
    """Pack an arbitrary map with our array extension (tests and fault injection use this)."""
    return msgpack.packb(obj, default=_default, use_bin_type=True)


class Decoder:
    """Strict decoder. ``accept`` limits which kinds a receiver takes; ``bind`` fixes shape
    symbols (e.g. ``n`` = number of commanded joints) so a wrong-sized array never gets through;
    ``topics`` limits which topics it takes."""

    def __init__(
        self,
        accept: tuple[type[Message], ...] | None = None,
        bind: dict[str, int] | None = None,
        max_bytes: int = MAX_MESSAGE_BYTES,
        topics: tuple[str, ...] | list[str] | None = None,
    ) -> None:
        self.kinds = {c.KIND: c for c in accept} if accept else dict(MESSAGE_KINDS)
        self.bind = dict(bind or {})
        self.max_bytes = max_bytes
        # None: any topic; else exact topics, or namespaces ending in "/" (ZeroMQ filters by
        # prefix only, so "robot/commandEVIL" would pass a subscription to "robot/command")
        self.topics = None if topics is None or "" in topics else frozenset(topics)
        self.stats = DecodeStats()

    def decode(self, frames: list[bytes] | list[Any]) -> tuple[Header, Message]:
        """Decode a received message (the list of its ZMQ frames; exactly one is valid).
        Raises ``DecodeError`` (and nothing else, whatever the bytes) and counts it."""
        try:
            header, msg = self._decode(frames)
        except DecodeError as err:
            self.stats.reject(err)
            raise
        except Exception as exc:  # a check we missed: still a rejection, never a crash
            logger.error("decoder bug: %s on a %d-frame message; rejected as 'internal'", exc, len(frames))
            err = DecodeError("internal", f"{type(exc).__name__}: {exc}")
            self.stats.reject(err)
            raise err from None
        self.stats.accept(header)
        return header, msg

    def _decode(self, frames: list[Any]) -> tuple[Header, Message]:
        if len(frames) != 1:
            raise DecodeError("bad_frames", f"expected 1 frame, got {len(frames)}")
        frame = frames[0] if isinstance(frames[0], bytes) else bytes(frames[0])
        if len(frame) > self.max_bytes:
            raise DecodeError("too_large", f"{len(frame)} bytes > limit {self.max_bytes}")
        cut = frame.find(b"\0", 0, 256)
        if cut < 0:
            raise DecodeError("bad_header", "no topic terminator (NUL) in the first 256 bytes")
        frame_topic, payload = frame[:cut], frame[cut + 1 :]
        try:
            obj = msgpack.unpackb(
                payload,
                ext_hook=_ext_hook,
                raw=False,
                strict_map_key=True,
                max_bin_len=self.max_bytes,
                max_ext_len=self.max_bytes,
                max_str_len=1 << 20,
                max_array_len=1 << 16,
                max_map_len=1 << 12,
            )
        except DecodeError:
            raise
        except Exception as exc:  # msgpack raises ValueError, ExtraData, UnicodeDecodeError, ...
            raise DecodeError("bad_msgpack", f"{type(exc).__name__}: {exc}") from None
        if not isinstance(obj, dict):
            raise DecodeError("bad_header", f"top level is {type(obj).__name__}, expected a map")
        version = obj.get("v")
        if type(version) is not int or version != SCHEMA_VERSION:
            got = "no schema version key 'v'" if "v" not in obj else f"schema version {_show(version)}"
            raise DecodeError("bad_version", f"{got}; this build speaks {SCHEMA_VERSION}; upgrade the older side")
        if obj.keys() != _HEADER_KEYS:
            raise DecodeError("bad_header", f"header keys {_names(obj)} != {sorted(_HEADER_KEYS)}")
        kind, topic, src = obj["k"], obj["t"], obj["s"]
        seq, tc, ts = obj["q"], obj["tc"], obj["ts"]
        if not (type(kind) is str and type(topic) is str and type(src) is str):
            raise DecodeError("bad_header", "kind, topic and source must be strings")
        if not all(type(x) is int and x >= 0 for x in (seq, tc, ts)):
            raise DecodeError("bad_header", "sequence and times must be non-negative ints")
        if frame_topic != topic.encode(errors="surrogatepass"):
            raise DecodeError("bad_header", f"topic prefix {frame_topic[:64]!r} != header topic {topic[:64]!r}")
        if self.topics is not None and not _topic_ok(topic, self.topics):
            raise DecodeError("bad_topic", f"topic {topic[:64]!r}; this receiver takes {sorted(self.topics)}")
        cls = self.kinds.get(kind)
        if cls is None:
            raise DecodeError("unknown_kind", f"kind {kind[:64]!r}; this receiver accepts {sorted(self.kinds)}")
        body = obj["b"]
        if not isinstance(body, dict):
            raise DecodeError("bad_body", "body is not a map")
        values = _check_body(cls, body, self.bind)
        return Header(version, kind, topic, src, seq, tc, ts), cls(**values)


def _topic_ok(topic: str, allowed: frozenset[str]) -> bool:
    """Exact topics, or namespaces: an allowed entry ending in ``/`` takes every topic under it."""
    if topic in allowed:
        return True
    return any(a.endswith("/") and topic.startswith(a) for a in allowed)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 64 else text[:61] + "..."


def _names(mapping: dict[Any, Any]) -> list[str]:
    """Keys of a wire map for a message, whatever their types (bytes and str do not sort together)."""
    return sorted(_show(k) if type(k) is not str else k for k in mapping)[:12]


def _check_body(cls: type[Message], body: dict[Any, Any], bind: dict[str, int]) -> dict[str, Any]:
    schema = cls.SCHEMA
    if not all(type(k) is str for k in body):
        raise DecodeError("bad_body", f"{cls.KIND}: field names must be strings, got {_names(body)}")
    unknown = body.keys() - schema.keys()
    if unknown:
        raise DecodeError("unknown_field", f"{cls.KIND}: unknown field(s) {sorted(unknown)[:8]}")
    missing = cls._REQUIRED - body.keys()
    if missing:
        raise DecodeError("missing_field", f"{cls.KIND}: missing field(s) {sorted(missing)}")
    symbols = dict(bind)
    for name, value in body.items():
        spec = schema[name]
        if isinstance(spec, Arr):
            _check_array(cls.KIND, name, spec, value, symbols)
        elif spec is float:
            if type(value) is int:
                body[name] = float(value)
            elif type(value) is not float:
                raise DecodeError("bad_type", f"{cls.KIND}.{name}: expected float, got {type(value).__name__}")
        elif spec in (int, str, bool):
            if type(value) is not spec:
                raise DecodeError("bad_type", f"{cls.KIND}.{name}: expected {spec.__name__}, got {type(value).__name__}")
        elif spec == "strs":
            if type(value) is not list or not all(type(v) is str for v in value):
                raise DecodeError("bad_type", f"{cls.KIND}.{name}: expected a list of strings")
            body[name] = tuple(value)
        elif spec == "strmap":
            if not _is_map(value, (str,)):
                raise DecodeError("bad_type", f"{cls.KIND}.{name}: expected a map of strings to strings")
        elif spec == "nummap":
            if not _is_map(value, (int, float, str, bool)):
                raise DecodeError("bad_type", f"{cls.KIND}.{name}: expected a map of strings to scalars")
        else:  # pragma: no cover - schema authoring error
            raise TypeError(f"bad schema entry {spec!r}")
    return body


def _is_map(value: Any, scalars: tuple[type, ...]) -> bool:
    return type(value) is dict and all(type(k) is str and type(v) in scalars for k, v in value.items())


def _check_array(kind: str, name: str, spec: Arr, value: Any, symbols: dict[str, int]) -> None:
    if not isinstance(value, np.ndarray):
        raise DecodeError("bad_type", f"{kind}.{name}: expected an array, got {type(value).__name__}")
    if value.dtype != spec.np_dtype:
        raise DecodeError("bad_dtype", f"{kind}.{name}: dtype {value.dtype}, expected {spec.dtype}")
    if value.ndim != len(spec.shape):
        raise DecodeError("bad_shape", f"{kind}.{name}: shape {value.shape}, expected {_shape(spec)}")
    for size, want in zip(value.shape, spec.shape, strict=True):
        if isinstance(want, Dim):
            if size > want.max:
                raise DecodeError("too_large", f"{kind}.{name}: shape {value.shape}, at most {want.symbol}={want.max}")
            have = symbols.setdefault(want.symbol, size)
            if have != size:
                raise DecodeError("bad_shape", f"{kind}.{name}: shape {value.shape}, expected {want.symbol}={have}")
        elif size != want:
            raise DecodeError("bad_shape", f"{kind}.{name}: shape {value.shape}, expected {_shape(spec)}")
    if spec.finite and value.dtype.kind == "f" and not np.isfinite(value).all():
        raise DecodeError("non_finite", f"{kind}.{name}: contains NaN or inf")


def _shape(spec: Arr) -> tuple[int | str, ...]:
    return tuple(d.symbol if isinstance(d, Dim) else d for d in spec.shape)
