"""Reading an episode back: every logged message, grouped by topic, on the session clock.

A damaged log is read past its damage (``recorder.log``): every intact record is here, and
``Episode.log`` (a ``LogScan``) says what was lost (``Episode.damaged``).

Times: every bus header carries the sender's monotonic capture time. The session publishes
``session_event`` records of ``event="clock"`` with ``values={"source", "offset_ns"}`` for every
other host it talks to (``offset_ns`` added to that source's times gives session time); the
reader applies them, so ``Stream.t_ns`` of every stream is on one time base. Sources without an
offset (the session itself, anything on the session host) are taken as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recorder.episode import LOG_NAME, META_NAME, read_meta, resolve_episode
from recorder.log import LogScan, read_records
from teleop.bus.codec import DecodeError, Decoder, Header, Message
from teleop.bus.messages import SessionEvent, VideoFrameRef

__all__ = ["Episode", "Stream", "load_episode", "session_time_ns"]


@dataclass
class Stream:
    topic: str
    kind: str
    source: str
    t_ns: np.ndarray  # capture times on the session clock, int64 (T,)
    recv_ns: np.ndarray  # when the recorder got them (recorder clock), int64 (T,)
    seq: np.ndarray  # bus sequence numbers, int64 (T,)
    messages: list[Message] = field(repr=False, default_factory=list)

    def __len__(self) -> int:
        return len(self.messages)

    def array(self, name: str, dtype: Any = None) -> np.ndarray:
        """A field of every message stacked along a new first axis."""
        vals = [getattr(m, name) for m in self.messages]
        if not vals:
            return np.zeros((0,), dtype=dtype or np.float64)
        return np.asarray(np.stack(vals) if isinstance(vals[0], np.ndarray) else np.array(vals), dtype=dtype)

    @property
    def gaps(self) -> int:
        """Messages the sender numbered but the log does not have (lost on the way)."""
        if len(self.seq) < 2:
            return 0
        d = np.diff(self.seq)
        return int(np.sum(d[d > 1] - 1))

    @property
    def rate_hz(self) -> float:
        if len(self.t_ns) < 2:
            return 0.0
        span = (self.t_ns[-1] - self.t_ns[0]) / 1e9
        return (len(self.t_ns) - 1) / span if span > 0 else 0.0


@dataclass
class Episode:
    path: Path
    meta: dict[str, Any]
    streams: dict[str, Stream]
    offsets_ns: dict[str, int]
    rejected: dict[str, int]  # decode rejections by reason (a log never holds those unless written by hand)
    log: LogScan | None = None  # what reading the log found: damaged regions skipped, a torn tail

    @property
    def damaged(self) -> bool:
        """The log has damage the reader skipped (every intact record is here; ``log.damage`` says
        what was lost)."""
        return self.log is not None and self.log.damaged

    @property
    def start_ns(self) -> int:
        s = self.meta.get("start_ns")
        if s:
            return int(s)
        firsts = [int(st.t_ns[0]) for st in self.streams.values() if len(st)]
        return min(firsts) if firsts else 0

    @property
    def stop_ns(self) -> int:
        s = self.meta.get("stop_ns")
        if s:
            return int(s)
        lasts = [int(st.t_ns[-1]) for st in self.streams.values() if len(st)]
        return max(lasts) if lasts else 0

    def stream(self, topic: str) -> Stream:
        try:
            return self.streams[topic]
        except KeyError:
            raise KeyError(f"{self.path}: no stream {topic!r}; it has {sorted(self.streams)}") from None

    def with_prefix(self, prefix: str) -> dict[str, Stream]:
        return {t: s for t, s in self.streams.items() if t.startswith(prefix)}

    def videos(self) -> dict[str, Path]:
        return {name: self.path / v["file"] for name, v in self.meta.get("videos", {}).items()}

    def video_refs(self, video: str) -> Stream:
        return self.stream(f"recorder/video/{video}")


def session_time_ns(header: Header, msg: Message, offsets_ns: dict[str, int]) -> int:
    """A logged message's capture time on the session clock (a ``video_frame`` record carries the
    camera's source, whose offset applies)."""
    src = msg.source if isinstance(msg, VideoFrameRef) else header.source
    return header.capture_ns + offsets_ns.get(src, 0)


def load_episode(spec: str | Path, topics: Iterable[str] | None = None) -> Episode:
    """Decode the episode's log (``topics``: keep only these prefixes)."""
    folder = resolve_episode(spec)
    meta = read_meta(folder) if (folder / META_NAME).is_file() else {}
    decoder = Decoder()
    rows: dict[str, list[tuple[Header, Message, int]]] = {}
    offsets: dict[str, int] = {}
    prefixes = tuple(topics) if topics is not None else None
    scan = LogScan(str(folder / LOG_NAME))
    for rec in read_records(folder / LOG_NAME, scan=scan):
        try:
            header, msg = decoder.decode([rec.frame])
        except DecodeError:
            continue
        if isinstance(msg, SessionEvent) and msg.event == "clock":
            src, off = msg.values.get("source"), msg.values.get("offset_ns")
            if isinstance(src, str) and isinstance(off, int):
                offsets[src] = off  # the newest estimate wins (they drift slowly)
        if prefixes is not None and not header.topic.startswith(prefixes):
            continue
        rows.setdefault(header.topic, []).append((header, msg, rec.recv_ns))
    streams = {}
    for topic, items in rows.items():
        t = np.empty(len(items), np.int64)
        for i, (h, m, _) in enumerate(items):
            t[i] = session_time_ns(h, m, offsets)
        streams[topic] = Stream(
            topic=topic, kind=items[0][0].kind, source=items[0][0].source, t_ns=t,
            recv_ns=np.fromiter((r for _, _, r in items), np.int64, len(items)),
            seq=np.fromiter((h.seq for h, _, _ in items), np.int64, len(items)),
            messages=[m for _, m, _ in items],
        )
    return Episode(folder, meta, streams, offsets, dict(decoder.stats.rejected), scan)
