"""The episode log: an append-only file of framed bus messages.

Layout: an 8-byte magic ``TLOG0001``, then records::

    u32 length | u32 crc32 | u64 recv_ns | frame (length - 8 bytes)

little-endian; ``crc32`` covers ``recv_ns`` and ``frame``; ``frame`` is the bus message exactly
as it travelled (``topic NUL msgpack``, see ``teleop.bus.codec``), so the log keeps every header
time and sequence number, and ``recv_ns`` is when the recorder received it (recorder clock).

Crash safety: the writer flushes to the OS at least every ``flush_s`` (a killed process loses
only what Python had not flushed) and fsyncs every ``fsync_s`` (a power cut).

Reading, damage and torn tails (``scan`` gives the whole picture, ``read_records`` the records):

* A record is **good** when its length is plausible (8 .. ``MAX_RECORD``), its bytes fit in the
  file and its CRC matches. Readers walk the length chain from the magic.
* Where the chain breaks, readers **resynchronise** on the next *valid* record: a good record
  whose frame starts with a topic (1..255 bytes, no control characters) and a NUL. The bytes in
  between are a **damaged region** (a flipped bit, a bad sector, garbage written in); every record
  after it that checks is read. ``verify`` never cuts such a region: readers skip it.
* A **torn tail** is what a crash mid-write leaves: bytes after the last good record with no
  valid record after them, where the record there is cut short (its header is incomplete, or its
  length claims more bytes than remain) or the bytes are all zeros. ``verify(truncate=True)``
  cuts it off after saving it next to the log (``log.tlog.torn-<n>``). Anything else at the end
  (e.g. a complete-length last record whose CRC fails) is damage, not a torn tail.
* For each damaged region ``scan`` says how many records it held (walking the length chain
  through it, when the lengths are intact; else unknown), the receive times of the good records
  on either side, and, from the bus headers (source, topic, sequence number), exactly which
  streams lost how many messages across it.
"""

from __future__ import annotations

import mmap
import os
import re
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from teleop.errors import TeleopError

__all__ = [
    "MAGIC",
    "MAX_RECORD",
    "LogWriter",
    "LogRecord",
    "LogError",
    "LogScan",
    "Damage",
    "StreamLoss",
    "VerifyReport",
    "read_records",
    "scan",
    "cut_torn_tail",
    "verify",
    "frame_header",
]

MAGIC = b"TLOG0001"
_HEAD = struct.Struct("<IIQ")  # length, crc32, recv_ns
_LEN_CRC = struct.Struct("<II")
_U32 = struct.Struct("<I")
MAX_RECORD = 256 * 1024 * 1024  # a length beyond this is garbage, not a record
_MIN_VALID = 10  # length of the smallest valid record: recv_ns + a 1-byte topic + NUL
_TOPIC_MAX = 256  # the topic's NUL is within the frame's first 256 bytes (as the bus decoder requires)
_CTRL = re.compile(rb"[\x00-\x1f\x7f]")


class LogError(TeleopError):
    """The log cannot be written or is not a log."""


class LogRecord(NamedTuple):
    offset: int  # byte offset of the record in the file
    recv_ns: int
    frame: bytes

    @property
    def topic(self) -> str:
        cut = self.frame.find(b"\0", 0, _TOPIC_MAX)
        return self.frame[:cut].decode(errors="replace") if cut >= 0 else ""


class LogWriter:
    """Appends records; ``flush_s`` bounds what a killed process can lose."""

    def __init__(self, path: str | Path, *, flush_s: float = 0.2, fsync_s: float = 1.0, buffer_bytes: int = 1 << 20) -> None:
        self.path = Path(path)
        self.flush_s, self.fsync_s = flush_s, fsync_s
        self.records = 0
        self.bytes = len(MAGIC)
        try:
            self._f: BinaryIO | None = open(self.path, "xb", buffering=buffer_bytes)  # noqa: SIM115
            self._f.write(MAGIC)
            self._f.flush()
        except OSError as exc:
            raise LogError(f"cannot create the episode log {self.path}: {exc.strerror or exc}") from exc
        self._last_flush = self._last_sync = time.monotonic()

    def append(self, frame: bytes, recv_ns: int) -> None:
        """Write one record. Raises ``LogError`` (disk full, I/O error); the file then holds every
        record written before, and at most a torn tail that ``verify`` removes."""
        f = self._f
        if f is None:
            raise LogError(f"{self.path}: the log is closed")
        head = struct.pack("<Q", recv_ns)
        crc = zlib.crc32(frame, zlib.crc32(head))
        try:
            f.write(_HEAD.pack(len(frame) + 8, crc, recv_ns))
            f.write(frame)
        except OSError as exc:
            raise LogError(f"writing {self.path} failed: {exc.strerror or exc}") from exc
        self.records += 1
        self.bytes += _HEAD.size + len(frame)

    def tick(self, now: float | None = None) -> None:
        """Flush/fsync when due; call at least a few times a second."""
        now = time.monotonic() if now is None else now
        if now - self._last_flush >= self.flush_s:
            self.flush(sync=now - self._last_sync >= self.fsync_s)

    def flush(self, sync: bool = False) -> None:
        f = self._f
        if f is None:
            return
        try:
            f.flush()
            if sync:
                os.fsync(f.fileno())
                self._last_sync = time.monotonic()
        except OSError as exc:
            raise LogError(f"flushing {self.path} failed: {exc.strerror or exc}") from exc
        self._last_flush = time.monotonic()

    def close(self) -> None:
        f, self._f = self._f, None
        if f is None:
            return
        try:
            f.flush()
            os.fsync(f.fileno())
        except OSError as exc:
            raise LogError(f"closing {self.path} failed: {exc.strerror or exc}") from exc
        finally:
            try:
                f.close()
            except OSError:
                pass

    @property
    def closed(self) -> bool:
        return self._f is None


# -- what a scan finds -----------------------------------------------------------------------------


@dataclass
class StreamLoss:
    """Messages of one stream (sender ``source``, ``topic``) missing across a damaged region: the
    sender numbered ``last_seq`` before it and ``next_seq`` after it."""

    source: str
    topic: str
    lost: int
    last_seq: int
    next_seq: int
    regions: int = 1  # damaged regions the gap spans (>1: the stream had no message between them)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Damage:
    """One damaged region: ``length`` bytes at ``offset`` that hold no valid record."""

    offset: int
    length: int
    records_lost: int | None  # by the length chain through the region; None: the lengths are broken too
    before_recv_ns: int | None  # recv_ns of the good record before it (None: at the start of the log)
    after_recv_ns: int | None  # ... and after it (None: at the end of the log)
    streams: list[StreamLoss] = field(default_factory=list)
    what: str = "corrupt"  # "corrupt" | "magic" (the file magic itself)

    @property
    def messages_lost(self) -> int:
        """Messages missing by the senders' sequence numbers (streams seen on both sides)."""
        return sum(s.lost for s in self.streams)

    def as_dict(self, t0_ns: int | None = None) -> dict[str, Any]:
        def sec(ns: int | None) -> float | None:
            return None if ns is None or t0_ns is None else round((ns - t0_ns) / 1e9, 6)

        return {
            "offset": self.offset, "bytes": self.length, "records_lost": self.records_lost,
            "messages_lost": self.messages_lost, "from_s": sec(self.before_recv_ns), "to_s": sec(self.after_recv_ns),
            "before_recv_ns": self.before_recv_ns, "after_recv_ns": self.after_recv_ns, "what": self.what,
            "streams": [s.as_dict() for s in self.streams],
        }

    def describe(self, t0_ns: int | None = None) -> str:
        d = self.as_dict(t0_ns)
        lost = ("records lost: unknown (the length fields are damaged too)" if self.records_lost is None
                else f"{self.records_lost} record{'s' if self.records_lost != 1 else ''} lost")
        a = "the start" if d["from_s"] is None else f"{d['from_s']:.3f} s"
        b = "the end" if d["to_s"] is None else f"{d['to_s']:.3f} s"
        span = f"between {a} and {b} into the episode"
        streams = ", ".join(f"{s.topic} ({s.source}) {s.lost}" for s in self.streams) or "no sequence gap"
        where = "the file magic" + (f" and after it (+{self.length} bytes)" if self.length > len(MAGIC) else "") \
            if self.what == "magic" else f"byte {self.offset} (+{self.length} bytes)"
        return f"{where}: {lost}, {span}; streams: {streams}"


@dataclass
class LogScan:
    """What walking a log found. ``records`` good records were read (``read_records`` yields
    exactly these); ``damage`` lists the damaged regions readers skipped; a torn tail is
    ``torn_bytes`` bytes from ``torn_offset`` (``torn_offset == file_bytes`` when there is none)."""

    path: str
    file_bytes: int = 0
    records: int = 0
    first_recv_ns: int = 0
    last_recv_ns: int = 0
    damage: list[Damage] = field(default_factory=list)
    torn_offset: int = 0
    torn_bytes: int = 0
    torn_reason: str = ""  # "header cut short", "record cut short", "zeros", "inside the magic"
    done: bool = False  # the walk reached the end of the file
    streams: bool = True  # track sequence gaps across damage (decodes every record's bus header)
    _last: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    _pending: dict[tuple[str, str], list[int]] = field(default_factory=dict, repr=False)

    @property
    def intact(self) -> bool:
        return not self.damage and not self.torn_bytes

    @property
    def damaged(self) -> bool:
        """Damage a reader skips (a torn tail is not: that is a crash's cut-short last write)."""
        return bool(self.damage)

    @property
    def damaged_bytes(self) -> int:
        return sum(d.length for d in self.damage)

    @property
    def records_lost(self) -> int | None:
        """Records lost to damage (None when a region's count is unknown); torn tails not counted."""
        counts = [d.records_lost for d in self.damage]
        return None if None in counts else sum(counts)  # type: ignore[arg-type]

    @property
    def messages_lost(self) -> int:
        return sum(d.messages_lost for d in self.damage)

    def as_dict(self) -> dict[str, Any]:
        t0 = self.first_recv_ns if self.records else None
        return {
            "path": self.path, "file_bytes": self.file_bytes, "records": self.records, "intact": self.intact,
            "damage": [d.as_dict(t0) for d in self.damage], "damaged_bytes": self.damaged_bytes,
            "records_lost": self.records_lost, "messages_lost": self.messages_lost,
            "torn_offset": self.torn_offset, "torn_bytes": self.torn_bytes, "torn_reason": self.torn_reason,
            "first_recv_ns": self.first_recv_ns, "last_recv_ns": self.last_recv_ns,
        }

    def describe(self) -> list[str]:
        """One line per damaged region and torn tail (empty when intact)."""
        t0 = self.first_recv_ns if self.records else None
        out = [f"damaged at {d.describe(t0)}" for d in self.damage]
        if self.torn_bytes:
            out.append(f"torn tail of {self.torn_bytes} bytes at byte {self.torn_offset} ({self.torn_reason})")
        return out

    # -- filled by the walk --
    def _record(self, recv_ns: int, frame: bytes) -> None:
        if not self.records:
            self.first_recv_ns = recv_ns
        self.records += 1
        self.last_recv_ns = recv_ns
        if not self.streams:
            return
        h = frame_header(frame)
        if h is None:
            return
        source, topic, seq = h
        key = (source, topic)
        waiting = self._pending.pop(key, None)
        last = self._last.get(key)
        if waiting and last is not None and seq > last + 1:
            self.damage[waiting[-1]].streams.append(StreamLoss(source, topic, seq - last - 1, last, seq, len(waiting)))
        self._last[key] = seq

    def _region(self, offset: int, length: int, records_lost: int | None, after_recv_ns: int | None,
                what: str = "corrupt") -> None:
        i = len(self.damage)
        self.damage.append(Damage(offset, length, records_lost, self.last_recv_ns if self.records else None,
                                  after_recv_ns, what=what))
        for key in self._last:
            self._pending.setdefault(key, []).append(i)


# -- bus headers, cheaply --------------------------------------------------------------------------


_HEAD_START = b"\x88\xa1v\x01\xa1k"  # fixmap of 8, "v": 1, "k": ... (the encoder's key order)


def _str_end(b: bytes, i: int) -> tuple[int, int]:
    """(start, end) of the msgpack str at ``i``; ValueError if it is not a str."""
    c = b[i]
    if 0xA0 <= c <= 0xBF:
        return i + 1, i + 1 + (c & 0x1F)
    if c == 0xD9:
        return i + 2, i + 2 + b[i + 1]
    if c == 0xDA:
        return i + 3, i + 3 + (b[i + 1] << 8 | b[i + 2])
    raise ValueError("not a str")


def _header_slow(payload: bytes) -> dict[str, Any]:
    import msgpack

    up = msgpack.Unpacker(raw=False, max_buffer_size=max(len(payload), 1 << 16))
    up.feed(payload)
    out: dict[str, Any] = {}
    for _ in range(min(up.read_map_header(), 64)):
        key = up.unpack()
        if key == "b":
            up.skip()
        else:
            out[key] = up.unpack()
    return out


def frame_header(frame: bytes) -> tuple[str, str, int] | None:
    """``(source, topic, seq)`` of a bus frame (``topic NUL msgpack{v,k,t,s,q,tc,ts,b}``) from its
    header alone: the body is not decoded. None when the frame is not a bus message."""
    cut = frame.find(b"\0", 0, _TOPIC_MAX)
    if cut < 0:
        return None
    i = cut + 1
    try:
        if frame.startswith(_HEAD_START, i):  # the encoder's layout: v, k, t, s, q, ...
            i = _str_end(frame, i + 6)[1]
            if frame.startswith(b"\xa1t", i):
                a, i = _str_end(frame, i + 2)
                topic = frame[a:i].decode()
                if frame.startswith(b"\xa1s", i):
                    a, i = _str_end(frame, i + 2)
                    source = frame[a:i].decode()
                    if frame.startswith(b"\xa1q", i):
                        c = frame[i + 2]
                        if c <= 0x7F:
                            return source, topic, c
                        if 0xCC <= c <= 0xCF:
                            n = 1 << (c - 0xCC)
                            return source, topic, int.from_bytes(frame[i + 3:i + 3 + n], "big")
    except (IndexError, ValueError):
        pass
    try:  # another layout: the general unpacker
        vals = _header_slow(frame[cut + 1:])
    except Exception:  # noqa: BLE001 - anything msgpack raises: not a bus frame
        return None
    s, t, q = vals.get("s"), vals.get("t"), vals.get("q")
    if isinstance(s, str) and isinstance(t, str) and type(q) is int:
        return s, t, q
    return None


# -- walking the file ------------------------------------------------------------------------------


def _valid_at(buf: Any, q: int, size: int) -> int:
    """The length field of a valid record at ``q`` (module docstring), else 0."""
    if q + 8 + _MIN_VALID > size:
        return 0
    length, crc = _LEN_CRC.unpack_from(buf, q)
    if length < _MIN_VALID or length > MAX_RECORD or q + 8 + length > size:
        return 0
    start = q + 16
    cut = buf.find(b"\0", start, min(q + 8 + length, start + _TOPIC_MAX))
    if cut <= start:
        return 0
    topic = buf[start:cut]
    if _CTRL.search(topic):
        return 0
    try:
        topic.decode()
    except UnicodeDecodeError:
        return 0
    if zlib.crc32(buf[q + 8:q + 8 + length]) != crc:
        return 0
    return length


def _resync(buf: Any, start: int, size: int) -> int | None:
    """The first offset >= ``start`` holding a valid record, or None. A vectorised prefilter on
    bytes (the length's top byte, two bytes that can start a topic), then on the length (plausible,
    fits in the file), leaves few candidates for the exact check (topic, NUL, CRC)."""
    pos, win = start, 1 << 14
    last = size - 8 - _MIN_VALID  # the last offset where a valid record fits
    top = MAX_RECORD >> 24
    while pos <= last:
        end = min(last + 1, pos + win)
        n = end - pos
        a = np.frombuffer(buf[pos:end + 18], np.uint8)
        t0, t1 = a[16:n + 16], a[17:n + 17]
        ok = (a[3:n + 3] <= top) & (t0 >= 0x20) & (t0 != 0x7F) & ((t1 == 0) | ((t1 >= 0x20) & (t1 != 0x7F)))
        k = np.flatnonzero(ok)
        if len(k):
            length = (a[k].astype(np.int64) | (a[k + 1].astype(np.int64) << 8)
                      | (a[k + 2].astype(np.int64) << 16) | (a[k + 3].astype(np.int64) << 24))
            k = k[(length >= _MIN_VALID) & (length <= MAX_RECORD) & (length <= size - 8 - pos - k)]
            for i in k.tolist():
                if _valid_at(buf, pos + i, size):
                    return pos + i
        pos = end
        win = min(win * 4, 1 << 22)
    return None


def _chain(buf: Any, start: int, stop: int) -> tuple[int, int]:
    """Walk the length fields from ``start`` while each record fits before ``stop``:
    (records walked, where the walk ended)."""
    pos, n = start, 0
    while pos + 16 <= stop:
        (length,) = _U32.unpack_from(buf, pos)
        if length < 8 or pos + 8 + length > stop:
            break
        pos += 8 + length
        n += 1
    return n, pos


def _torn_at(buf: Any, pos: int, size: int, zeros_from: int) -> str:
    """Why the bytes from ``pos`` to the end are a torn tail, or "" if they are not
    (``zeros_from``: where the file's trailing zero bytes begin)."""
    if size - pos < 16:
        return "header cut short"
    (length,) = _U32.unpack_from(buf, pos)
    if length >= 8 and pos + 8 + length > size:
        return "record cut short"
    if pos >= zeros_from:
        return "zeros"
    return ""


def _tail(buf: Any, p: int, size: int, sc: LogScan) -> None:
    """No valid record after ``p``: a torn tail, damage, or damage then a torn tail."""
    zeros_from = p + len(buf[p:size].rstrip(b"\0"))
    why = _torn_at(buf, p, size, zeros_from)
    if why:
        sc.torn_offset, sc.torn_bytes, sc.torn_reason = p, size - p, why
        return
    # complete-length records that do not check, maybe ending in a cut-short one
    pos, n = p, 0
    while pos < size:
        why = _torn_at(buf, pos, size, zeros_from)
        if why:
            break
        (length,) = _U32.unpack_from(buf, pos)
        if length < 8:  # the lengths are broken: all of it is damage
            pos, n = size, -1
            break
        pos += 8 + length
        n += 1
    sc._region(p, pos - p, None if n < 0 else n, None)
    if pos < size:
        sc.torn_offset, sc.torn_bytes, sc.torn_reason = pos, size - pos, why


def _walk(path: Path, sc: LogScan, prefixes: tuple[bytes, ...] | None) -> Iterator[LogRecord]:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        sc.file_bytes = sc.torn_offset = size
        if size < len(MAGIC):
            head = f.read()
            if not MAGIC.startswith(head):
                raise LogError(f"{path} is not an episode log (magic {head!r}, expected {MAGIC!r})")
            sc.torn_offset, sc.torn_bytes, sc.torn_reason, sc.done = 0, size, "inside the magic", True
            return
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as buf:
            yield from _walk_buf(path, buf, size, sc, prefixes)


def _walk_buf(path: Path, buf: Any, size: int, sc: LogScan, prefixes: tuple[bytes, ...] | None) -> Iterator[LogRecord]:
    unpack, crc32 = _HEAD.unpack_from, zlib.crc32
    p = len(MAGIC)
    if buf[:p] != MAGIC:  # a damaged magic (most of it still there, or a valid record right after it)
        close = sum(a == b for a, b in zip(buf[:p], MAGIC)) >= 5
        q = p if _valid_at(buf, p, size) else _resync(buf, p + 1, size) if close else None
        if q is not None:
            n, end = _chain(buf, p, q)
            sc._region(0, q, n if end == q else None, unpack(buf, q)[2], what="magic")
            p = q
        elif close:  # and no valid record anywhere: what follows is a torn tail or damage
            sc._region(0, p, 0, None, what="magic")
        else:
            raise LogError(f"{path} is not an episode log (magic {buf[:p]!r}, expected {MAGIC!r})")
    while p < size:
        if p + 16 <= size:
            length, crc, recv_ns = unpack(buf, p)
            if 8 <= length <= MAX_RECORD and p + 8 + length <= size:
                frame = buf[p + 16:p + 8 + length]
                if crc32(frame, crc32(buf[p + 8:p + 16])) == crc:
                    sc._record(recv_ns, frame)
                    if prefixes is None or frame.startswith(prefixes):
                        yield LogRecord(p, recv_ns, frame)
                    p += 8 + length
                    continue
        q = _resync(buf, p + 1, size)
        if q is None:
            _tail(buf, p, size, sc)
            break
        n, end = _chain(buf, p, q)
        sc._region(p, q - p, n if end == q else None, unpack(buf, q)[2])
        p = q
    sc.done = True


def read_records(path: str | Path, *, topics: tuple[str, ...] | None = None,
                 scan: LogScan | None = None) -> Iterator[LogRecord]:
    """Every good record in order: past a damaged region on the next valid record, stopping at a
    torn tail. ``topics`` keeps records whose topic starts with one of the prefixes. ``scan``
    (a ``LogScan(path)``) is filled as the iteration goes with what the walk found (complete when
    the iterator is exhausted: ``scan.done``)."""
    path = Path(path)
    prefixes = tuple(t.encode() for t in topics) if topics else None
    sc = scan if scan is not None else LogScan(str(path), streams=False)
    return _walk(path, sc, prefixes)


def scan(path: str | Path, *, streams: bool = True) -> LogScan:
    """Walk the whole log: its good records, each damaged region (bytes, records lost, time span
    and, with ``streams``, the sequence gaps per stream across it) and the torn tail."""
    sc = LogScan(str(path), streams=streams)
    for _ in _walk(Path(path), sc, None):
        pass
    return sc


# -- cutting a torn tail ---------------------------------------------------------------------------


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _torn_name(path: Path) -> Path:
    n = 1
    for p in path.parent.glob(path.name + ".torn-*"):
        suffix = p.name.rpartition("-")[2]
        if suffix.isdigit():
            n = max(n, int(suffix) + 1)
    return path.with_name(f"{path.name}.torn-{n}")


def cut_torn_tail(path: str | Path, sc: LogScan) -> Path | None:
    """Cut the torn tail ``sc`` found (``scan(path)``) off the log, after saving its bytes to
    ``<log>.torn-<n>`` (fsynced) next to it. Nothing else in the file is touched; a log that
    changed size since the scan is left alone (``LogError``). Returns the saved file (None if
    the tail was empty: a zero-byte log that only gets its magic)."""
    path = Path(path)
    if not sc.torn_bytes and sc.torn_reason != "inside the magic":
        return None
    saved: Path | None = None
    with open(path, "r+b") as f:
        size = os.fstat(f.fileno()).st_size
        if size != sc.file_bytes:
            raise LogError(f"{path} changed size while it was verified ({sc.file_bytes} -> {size} bytes); is a "
                           "recorder still writing it? Nothing was cut")
        f.seek(sc.torn_offset)
        tail = f.read()
        if tail:
            saved = _torn_name(path)
            with open(saved, "xb") as out:
                out.write(tail)
                out.flush()
                os.fsync(out.fileno())
            _fsync_dir(path.parent)
        if sc.torn_offset < len(MAGIC):  # torn inside the magic: an empty log
            f.seek(0)
            f.write(MAGIC)
            f.truncate(len(MAGIC))
        else:
            f.truncate(sc.torn_offset)
        f.flush()
        os.fsync(f.fileno())
    return saved


@dataclass(frozen=True)
class VerifyReport:
    path: str
    records: int
    good_bytes: int  # the log's length without its torn tail (after a cut: its length)
    file_bytes: int  # its length when verified
    truncated: bool
    first_recv_ns: int
    last_recv_ns: int
    scan: LogScan | None = None
    saved: str | None = None  # where the cut tail's bytes were kept

    @property
    def torn_bytes(self) -> int:
        return self.scan.torn_bytes if self.scan is not None else self.file_bytes - self.good_bytes

    @property
    def damage(self) -> list[Damage]:
        return self.scan.damage if self.scan is not None else []

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "scan"}
        d["torn_bytes"] = self.torn_bytes
        if self.scan is not None:
            s = self.scan.as_dict()
            d.update(damage=s["damage"], records_lost=s["records_lost"], messages_lost=s["messages_lost"],
                     torn_reason=s["torn_reason"], intact=s["intact"])
        return d


def verify(path: str | Path, truncate: bool = False) -> VerifyReport:
    """Scan the log; with ``truncate`` cut its torn tail, keeping the bytes (``cut_torn_tail``).
    Damaged regions are reported (``report.damage``), never cut: readers skip them."""
    path = Path(path)
    sc = scan(path)
    saved, did = None, False
    if truncate and (sc.torn_bytes or sc.torn_reason):
        saved = cut_torn_tail(path, sc)
        did = True
    good = max(sc.torn_offset, len(MAGIC)) if did else sc.torn_offset
    return VerifyReport(str(path), sc.records, good, sc.file_bytes, did, sc.first_recv_ns, sc.last_recv_ns, sc,
                        str(saved) if saved else None)
