"""The episode log: an append-only file of framed bus messages.

Layout: an 8-byte magic ``TLOG0001``, then records::

    u32 length | u32 crc32 | u64 recv_ns | frame (length - 8 bytes)

little-endian; ``crc32`` covers ``recv_ns`` and ``frame``; ``frame`` is the bus message exactly
as it travelled (``topic NUL msgpack``, see ``teleop.bus.codec``), so the log keeps every header
time and sequence number, and ``recv_ns`` is when the recorder received it (recorder clock).

Crash safety: the writer flushes to the OS at least every ``flush_s`` (a killed process loses
only what Python had not flushed) and fsyncs every ``fsync_s`` (a power cut). A torn tail
(a record cut short, or garbage after the last good record) is detected by length and CRC;
``read_records`` stops there and ``verify`` can truncate it off.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from teleop.errors import TeleopError

__all__ = ["MAGIC", "LogWriter", "LogRecord", "LogError", "VerifyReport", "read_records", "verify", "MAX_RECORD"]

MAGIC = b"TLOG0001"
_HEAD = struct.Struct("<IIQ")  # length, crc32, recv_ns
MAX_RECORD = 256 * 1024 * 1024  # a length beyond this is garbage, not a record


class LogError(TeleopError):
    """The log cannot be written or is not a log."""


class LogRecord(NamedTuple):
    offset: int  # byte offset of the record in the file
    recv_ns: int
    frame: bytes

    @property
    def topic(self) -> str:
        cut = self.frame.find(b"\0", 0, 256)
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


def _check_magic(f: BinaryIO, path: Path) -> None:
    magic = f.read(len(MAGIC))
    if magic != MAGIC:
        raise LogError(f"{path} is not an episode log (magic {magic!r}, expected {MAGIC!r})")


def read_records(path: str | Path, *, topics: tuple[str, ...] | None = None) -> Iterator[LogRecord]:
    """Every good record in order, stopping silently at a torn tail (``verify`` reports it).
    ``topics`` keeps records whose topic starts with one of the prefixes."""
    path = Path(path)
    prefixes = tuple(t.encode() for t in topics) if topics else None
    with open(path, "rb", buffering=1 << 20) as f:
        _check_magic(f, path)
        offset = len(MAGIC)
        while True:
            head = f.read(_HEAD.size)
            if len(head) < _HEAD.size:
                return
            length, crc, recv_ns = _HEAD.unpack(head)
            if not 8 <= length <= MAX_RECORD:
                return
            frame = f.read(length - 8)
            if len(frame) < length - 8 or zlib.crc32(frame, zlib.crc32(head[8:])) != crc:
                return
            if prefixes is None or frame.startswith(prefixes):
                yield LogRecord(offset, recv_ns, frame)
            offset += _HEAD.size + length - 8


@dataclass(frozen=True)
class VerifyReport:
    path: str
    records: int
    good_bytes: int
    file_bytes: int
    truncated: bool
    first_recv_ns: int
    last_recv_ns: int

    @property
    def torn_bytes(self) -> int:
        return self.file_bytes - self.good_bytes

    def as_dict(self) -> dict:
        return {**self.__dict__, "torn_bytes": self.torn_bytes}


def verify(path: str | Path, truncate: bool = False) -> VerifyReport:
    """Walk the log; report the good records and the torn tail, and with ``truncate`` cut the
    file back to its last good record (nothing before it is touched)."""
    path = Path(path)
    size = path.stat().st_size
    n, good, first, last = 0, len(MAGIC), 0, 0
    if size < len(MAGIC):
        good = 0  # torn inside the magic: a log with no records
    else:
        for rec in read_records(path):
            n += 1
            first = first or rec.recv_ns
            last = rec.recv_ns
            good = rec.offset + _HEAD.size + len(rec.frame)
    did = False
    if truncate and good < size:
        with open(path, "r+b") as f:
            if good == 0:
                f.write(MAGIC)
                good = len(MAGIC)
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
        did = True
    return VerifyReport(str(path), n, good, size, did, first, last)
