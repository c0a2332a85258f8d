"""Episodes on disk: one folder per episode inside a dataset folder.

::

    DATASET/
      index.json                 one line of summary per episode (rebuilt from the folders)
      episode_000000/
        meta.json                task, operator, outcome, notes, times, session + robot config
        log.tlog                 every bus message (recorder/log.py)
        video/<camera>.mp4       one video per camera (and per tactile sensor with images)

Numbering has no gaps: the next episode takes 1 + the highest existing index; a discarded
episode is renamed away before its number is reused; an episode whose recorder died
(``status: recording`` in meta.json) is recovered (torn log tail cut with its bytes kept,
videos probed) and kept. ``verify_episode`` checks any episode's log the same way
(``recorder.log.scan``): a torn tail is cut after saving its bytes to ``log.tlog.torn-<n>``;
damage inside the log is never cut (readers skip it) but recorded in ``meta.json["damage"]``
and an error line, so the episode shows as damaged whatever its status.
``meta.json`` is always replaced atomically, so it is either the old or the new version.

Offline curation (``label_episode``, ``discard_episode``, ``restore_episode``) works on finished
episodes through the same atomic ``write_meta``. A discarded episode keeps its folder, its number
and every byte: ``meta.json["discarded"]`` marks it, listing, export and training leave it out
unless asked, and ``restore_episode`` removes the mark.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teleop.errors import TeleopError

__all__ = [
    "EpisodeError",
    "episode_dir",
    "list_episodes",
    "next_index",
    "read_meta",
    "write_meta",
    "write_index",
    "recover",
    "verify_episode",
    "resolve_episode",
    "EpisodeSummary",
    "recorder_alive",
    "degradation",
    "tap_silences",
    "label_episode",
    "discard_episode",
    "restore_episode",
    "LOG_NAME",
    "META_NAME",
]

LOG_NAME = "log.tlog"
META_NAME = "meta.json"
VIDEO_DIR = "video"
_EP = re.compile(r"^episode_(\d{6})$")


class EpisodeError(TeleopError):
    pass


def episode_dir(dataset: Path, index: int) -> Path:
    return Path(dataset) / f"episode_{index:06d}"


def _indices(dataset: Path) -> list[int]:
    if not dataset.is_dir():
        return []
    return sorted(int(m.group(1)) for p in dataset.iterdir() if p.is_dir() and (m := _EP.match(p.name)))


def next_index(dataset: Path) -> int:
    idx = _indices(Path(dataset))
    return idx[-1] + 1 if idx else 0


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Atomic: write a temporary file, fsync, rename over meta.json."""
    path = Path(folder) / META_NAME
    tmp = path.with_suffix(".json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2, default=_json_default)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_meta(folder: Path) -> dict[str, Any]:
    path = Path(folder) / META_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EpisodeError(f"{folder}: no {META_NAME}; is this an episode folder?") from None
    except json.JSONDecodeError as exc:
        raise EpisodeError(f"{path} is not valid JSON ({exc}); the log is intact, fix or delete meta.json") from exc


@dataclass(frozen=True)
class EpisodeSummary:
    index: int
    path: str
    status: str
    outcome: str
    task: str
    operator: str
    duration_s: float
    frames: dict[str, int]
    notes: int
    errors: int
    damaged: bool = False  # `teleop episodes verify` found damage inside its log (meta.json "damage")
    discarded: bool = False  # `teleop episodes discard` marked it (meta.json "discarded"); restorable
    interrupted: bool = False  # status "recording" but its recorder is gone: duration_s is the log's span
    degraded: list[str] = field(default_factory=list)  # why the recording is not to be trusted (degradation)
    latency_p99_ms: float | None = None  # the command path's total p99 of its worst second (meta "stages_ms")

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def state(self) -> str:
        """The status to show: ``interrupted`` for an episode whose recorder died before closing it."""
        return "interrupted" if self.interrupted else self.status


def list_episodes(dataset: Path, *, include_discarded: bool = True) -> list[EpisodeSummary]:
    """Every episode folder of ``dataset``, in order (without the discarded ones unless
    ``include_discarded``). An episode left ``recording`` by a recorder that is gone is
    ``interrupted``, its duration the span of its log."""
    out = []
    for i in _indices(Path(dataset)):
        folder = episode_dir(dataset, i)
        try:
            m = read_meta(folder)
        except EpisodeError as exc:
            out.append(EpisodeSummary(i, str(folder), f"unreadable: {exc}", "unknown", "", "", 0.0, {}, 0, 1))
            continue
        if m.get("discarded") and not include_discarded:
            continue
        status = m.get("status", "?")
        duration = float(m.get("duration_s", 0.0) or 0.0)
        interrupted = False
        if status == "recording":
            if recorder_alive(m):
                if m.get("start_ns"):  # the recorder's clock is this host's monotonic clock
                    duration = max(0.0, (time.monotonic_ns() - int(m["start_ns"])) / 1e9)
            else:
                interrupted = True
                duration = _log_span_s(folder)
        out.append(EpisodeSummary(
            index=i, path=str(folder), status=status, outcome=m.get("outcome", "unknown"),
            task=m.get("task", ""), operator=m.get("operator", ""), duration_s=round(duration, 3),
            frames={k: v.get("frames", 0) for k, v in m.get("videos", {}).items()},
            notes=len(m.get("notes", [])), errors=len(m.get("errors", [])), damaged=bool(m.get("damage")),
            discarded=bool(m.get("discarded")), interrupted=interrupted, degraded=degradation(m, interrupted),
            latency_p99_ms=_total_p99(m),
        ))
    return out


def _total_p99(meta: dict[str, Any]) -> float | None:
    """The command path's total p99 of the episode's worst second (None: the session sent none)."""
    stages = meta.get("stages_ms")
    total = stages.get("total") if isinstance(stages, dict) else None
    v = total.get("p99") if isinstance(total, dict) else None
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def _log_span_s(folder: Path) -> float:
    """Seconds between the first and the last good record of the episode's log (0 without one)."""
    from recorder.log import LogError, scan

    try:
        sc = scan(Path(folder) / LOG_NAME, streams=False)
    except (OSError, LogError):
        return 0.0
    return (sc.last_recv_ns - sc.first_recv_ns) / 1e9 if sc.records > 1 else 0.0


def recorder_alive(meta: dict[str, Any]) -> bool:
    """Is the recorder that wrote this episode still running (same host, pid alive, a recorder)?"""
    pid = meta.get("recorder_pid")
    if not pid or meta.get("recorder_host") != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, OverflowError):
        return False
    try:  # a reused pid is not our recorder
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"record" in cmdline or b"recorder" in cmdline or b"pytest" in cmdline


#: A tap silent this long while recording is a silence (the recorder's ``SILENCE_S``).
SILENCE_S = 1.0


def tap_silences(meta: dict[str, Any]) -> list[dict[str, float]]:
    """The episode's tap silences (``meta["silences"]``) of at least ``SILENCE_S``. A shorter entry
    is the recorder running late, not the tap: a busy recorder notes a silence when it has not
    handled a message for a second, though its receiving thread had them queued all along (their
    receive times say how long the tap was really quiet)."""
    return [x for x in meta.get("silences") or [] if isinstance(x, dict)
            and isinstance(x.get("seconds"), int | float) and isinstance(x.get("after_s"), int | float)
            and x["seconds"] >= SILENCE_S]


#: Session faults (meta.json "faults") that make an episode's data suspect.
DEGRADING_FAULTS = ("rate", "robot_lost", "robot_exited", "robot_changed", "stale_input", "device_error", "estop")


def degradation(meta: dict[str, Any], interrupted: bool = False) -> list[str]:
    """Why an episode's recording is not to be trusted, one short reason each (empty: nothing
    known against it): the loop did not hold its rate (the session's summary or the command
    rate in the log), the tap went silent, messages or video frames were lost, the recorder or
    the session died while recording, or the session reported a fault that spoils the data."""
    out: list[str] = []
    loop = meta.get("loop") or {}
    if loop.get("held_rate") is False:
        out.append(f"the loop ran at {loop.get('loop_hz', '?')} Hz, below its rate "
                   f"({loop.get('configured_hz') or meta.get('rate_hz') or '?'} Hz)")
    if loop.get("held_rate_in_log") is False:
        out.append(f"commands in the log at {loop.get('commands_logged_hz', '?')} Hz of "
                   f"{loop.get('configured_hz', '?')} Hz")
    silences = tap_silences(meta)
    if silences:
        longest = max(silences, key=lambda s: float(s.get("seconds", 0)))
        out.append(f"{_plural(len(silences), 'tap silence')}, the longest {longest.get('seconds')} s at "
                   f"{longest.get('after_s')} s")
    dropped = meta.get("dropped") or {}
    for key, what in (("bus_gaps", "lost on the bus"), ("overload", "dropped by the recorder (queue full)"),
                      ("video", "video frames dropped by the encoder")):
        counts = {k: int(v) for k, v in (dropped.get(key) or {}).items() if isinstance(v, int | float) and v}
        if counts:
            n = sum(counts.values())
            noun = f"{n} {what}" if key == "video" else f"{_plural(n, 'message')} {what}"
            out.append(f"{noun} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    errors = [str(e) for e in meta.get("errors") or []]
    if interrupted:
        out.append("the recorder died while recording (not recovered yet: `teleop episodes verify`)")
    elif meta.get("status") == "recovered" or any("the recorder stopped without closing" in e for e in errors):
        out.append("the recorder died while recording (recovered from its log)")
    if any("the session that started this recorder died" in e for e in errors):
        out.append("the session died while recording")
    faults = {k: v for k, v in (meta.get("faults") or {}).items() if k in DEGRADING_FAULTS}
    if faults:
        out.append("session faults: " + ", ".join(f"{k} x{v}" for k, v in faults.items()))
    return out


def _curatable(spec: str | Path) -> tuple[Path, dict[str, Any]]:
    """The folder and metadata of a finished episode (refused while its recorder records it:
    the recorder holds that meta.json in memory and would write over the change)."""
    folder = resolve_episode(spec)
    meta = read_meta(folder)
    if meta.get("status") == "recording" and recorder_alive(meta):
        raise EpisodeError(f"{folder} is being recorded right now (recorder pid {meta.get('recorder_pid')}); label "
                           "the open episode with the live controls (`teleop episodes success|failure|task|note`) "
                           "or wait until it is stopped")
    return folder, meta


def _curate(folder: Path, meta: dict[str, Any], op: str, values: dict[str, Any]) -> None:
    """Write the change atomically, with what it replaced in ``meta["curation"]``, then the index."""
    meta.setdefault("curation", []).append({"t": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "op": op, **values})
    write_meta(folder, meta)
    write_index(folder.parent)


def label_episode(spec: str | Path, *, outcome: str | None = None, task: str | None = None,
                  note: str | None = None) -> dict[str, Any]:
    """Set a finished episode's outcome (``success``/``failure``/``unknown``) and task, and/or
    add a note, as the live controls do for the open one. The values replaced are kept in
    ``meta["curation"]``. Returns ``{"episode", "path", "outcome", "task", "notes"}``."""
    if outcome is not None and outcome not in ("success", "failure", "unknown"):
        raise EpisodeError(f"outcome {outcome!r}: use success, failure or unknown")
    if outcome is None and task is None and note is None:
        raise EpisodeError("nothing to label: give --success, --failure, --task TEXT and/or --note TEXT")
    folder, meta = _curatable(spec)
    change: dict[str, Any] = {}
    if outcome is not None:
        change.update(outcome=outcome, was_outcome=meta.get("outcome", "unknown"))
        meta["outcome"] = outcome
    if task is not None:
        change.update(task=task, was_task=meta.get("task", ""))
        meta["task"] = task
    if note is not None:
        meta.setdefault("notes", []).append({"t": time.strftime("%Y-%m-%dT%H:%M:%S"), "text": note})
        change["note"] = note
    _curate(folder, meta, "label", change)
    return {"episode": meta.get("index"), "path": str(folder), "outcome": meta.get("outcome", "unknown"),
            "task": meta.get("task", ""), "notes": len(meta.get("notes", []))}


def discard_episode(spec: str | Path, reason: str = "") -> dict[str, Any]:
    """Mark a finished episode discarded: nothing is moved or deleted (its folder and number stay),
    listing, export and training leave it out unless asked; ``restore_episode`` undoes it."""
    folder, meta = _curatable(spec)
    if meta.get("discarded"):
        return {"episode": meta.get("index"), "path": str(folder), "discarded": True, "changed": False}
    meta["discarded"] = {"t": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "reason": reason}
    _curate(folder, meta, "discard", {"reason": reason})
    return {"episode": meta.get("index"), "path": str(folder), "discarded": True, "changed": True}


def restore_episode(spec: str | Path) -> dict[str, Any]:
    """Take a ``discard_episode`` mark away."""
    folder, meta = _curatable(spec)
    mark = meta.pop("discarded", None)
    if not mark:
        return {"episode": meta.get("index"), "path": str(folder), "discarded": False, "changed": False}
    _curate(folder, meta, "restore", {"was_discarded": mark})
    return {"episode": meta.get("index"), "path": str(folder), "discarded": False, "changed": True}


def write_index(dataset: Path) -> Path:
    """Rewrite index.json from the episode folders (atomically; several writers may race: each
    writes its own temporary file, the last rename wins and every rename lists complete episodes)."""
    dataset = Path(dataset)
    path = dataset / "index.json"
    tmp = path.with_suffix(f".json.{socket.gethostname()}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = {"episodes": [e.as_dict() for e in list_episodes(dataset)], "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def discard(folder: Path) -> Path:
    """Take the episode out of the numbering at once (a rename); deleting happens later."""
    folder = Path(folder)
    trash = folder.parent / f".discarded_{folder.name}_{time.time_ns()}"
    os.replace(folder, trash)
    return trash


def delete_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def recover(folder: Path) -> dict[str, Any]:
    """Make a crashed episode whole: cut the log's torn tail (its bytes kept next to the log),
    record any damage inside it, count what the videos hold, mark it ``recovered``. Returns the
    new metadata. An episode that is not crashed is untouched."""
    folder = Path(folder)
    meta = read_meta(folder)
    if meta.get("status") != "recording":
        return meta
    if not (folder / LOG_NAME).is_file():  # it died before its log existed
        meta.setdefault("errors", [])
        _mark_recovered(folder, meta, None, None)
        write_meta(folder, meta)
        return meta
    verify_episode(folder)
    return read_meta(folder)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def damage_summary(damage: dict[str, Any]) -> str:
    """One line of what a ``meta.json["damage"]`` entry (or a ``verify_episode`` row) says was lost."""
    regions = damage.get("regions", [])
    lost = damage.get("records_lost")
    parts = [_plural(len(regions), "damaged region") + f" ({damage.get('bytes', 0)} bytes)",
             "records lost unknown" if lost is None else _plural(int(lost), "record") + " lost"]
    missing = damage.get("records_missing")
    if lost is None and missing is not None:
        parts.append(f"{missing} missing by the count in meta.json")
    streams: dict[str, int] = {}
    for r in regions:
        for st in r.get("streams", []):
            key = f"{st['topic']} ({st['source']})"
            streams[key] = streams.get(key, 0) + int(st["lost"])
    parts.append("messages lost: " + (", ".join(f"{k} {v}" for k, v in streams.items()) if streams else "none by "
                                      "sequence number"))

    def sec(x: float | None, edge: str) -> str:
        return edge if x is None else f"{x:.3f}"

    spans = [f"{sec(r['from_s'], 'start')}..{sec(r['to_s'], 'end')} s" for r in regions[:4]]
    parts.append("between " + ", ".join(spans) + (" ..." if len(regions) > 4 else "") + " into the episode")
    return "; ".join(parts)


def _damage_entry(sc: Any, meta: dict[str, Any] | None) -> dict[str, Any]:
    d = sc.as_dict()
    entry: dict[str, Any] = {
        "regions": [{k: v for k, v in r.items() if k not in ("before_recv_ns", "after_recv_ns")} | {
            "streams": [{"source": st["source"], "topic": st["topic"], "lost": st["lost"], "last_seq": st["last_seq"],
                         "next_seq": st["next_seq"]} for st in r["streams"]]} for r in d["damage"]],
        "bytes": d["damaged_bytes"], "records_lost": d["records_lost"], "messages_lost": d["messages_lost"],
        "records_kept": d["records"],
    }
    written = (meta or {}).get("records")
    if isinstance(written, int) and (meta or {}).get("status") == "complete":
        entry["records_written"] = written  # counted by the recorder when it closed the log
        entry["records_missing"] = written - d["records"]
    return entry


def verify_episode(folder: Path, *, dry_run: bool = False) -> dict[str, Any]:
    """Check an episode's log (``recorder.log.scan``) and, unless ``dry_run``, act on it:

    * a torn tail is cut off after its bytes are saved to ``log.tlog.torn-<n>`` (listed in
      ``meta["torn_tails"]`` with an error line);
    * damage inside the log is never cut (readers resynchronise past it); ``meta["damage"]``
      says what was lost (regions: byte offset and length, records lost, time span in seconds
      into the episode, the streams and how many messages each lost) and an error line says it
      once; the status is kept (``EpisodeSummary.damaged`` shows it);
    * an episode left ``recording`` (its recorder died) is marked ``recovered``.

    Returns what was found and done (the ``teleop episodes verify --json`` row). With
    ``dry_run`` nothing is written and the row holds the same analysis."""
    from recorder.log import MAGIC, cut_torn_tail, scan

    folder = Path(folder)
    meta = read_meta(folder) if (folder / META_NAME).is_file() else None
    log = folder / LOG_NAME
    if not log.is_file():
        raise EpisodeError(f"{folder}: no {LOG_NAME}; nothing to verify (the episode's messages are gone)")
    sc = scan(log)
    d = sc.as_dict()
    status = (meta or {}).get("status", "?")
    row: dict[str, Any] = {
        "episode": str(folder), "status": status, "records": sc.records, "file_bytes": sc.file_bytes,
        "intact": sc.intact, "damaged": sc.damaged, "damage": d["damage"], "damaged_bytes": d["damaged_bytes"],
        "records_lost": d["records_lost"], "messages_lost": d["messages_lost"],
        "torn_offset": sc.torn_offset, "torn_bytes": sc.torn_bytes, "torn_reason": sc.torn_reason,
        "bytes": sc.torn_offset if sc.torn_bytes else sc.file_bytes, "truncated": False, "saved": None,
        "marked": False, "dry_run": dry_run,
    }
    entry = _damage_entry(sc, meta) if sc.damaged else None
    if entry is not None:
        row["summary"] = damage_summary(entry)
        if "records_missing" in entry:
            row["records_written"], row["records_missing"] = entry["records_written"], entry["records_missing"]
    if dry_run:
        return row
    saved = None
    if sc.torn_bytes or sc.torn_reason:
        saved = cut_torn_tail(log, sc)
        row.update(truncated=True, saved=saved.name if saved else None, bytes=max(sc.torn_offset, len(MAGIC)))
    if meta is None:
        return row
    errors = meta.setdefault("errors", [])
    changed = False
    if row["truncated"]:
        meta.setdefault("torn_tails", []).append({
            "offset": sc.torn_offset, "bytes": sc.torn_bytes, "reason": sc.torn_reason,
            "saved": saved.name if saved else None, "cut": time.strftime("%Y-%m-%dT%H:%M:%S")})
        if status != "recording":  # (a crashed episode's recovery line says it)
            errors.append(f"log: cut a torn tail of {sc.torn_bytes} bytes at byte {sc.torn_offset} "
                          f"({sc.torn_reason})" + (f"; its bytes are kept in {saved.name}" if saved else ""))
        changed = True
    old = meta.get("damage")
    if entry is not None:
        if not old or old.get("regions") != entry["regions"]:
            meta["damage"] = {**entry, "found": time.strftime("%Y-%m-%dT%H:%M:%S")}
            errors.append(f"log damaged: {damage_summary(entry)}; readers skip the damage and use every intact "
                          "record (teleop episodes verify)")
            changed = True
    elif old:
        del meta["damage"]
        errors.append("log: verify found no damage any more; the earlier damage entry was removed")
        changed = True
    if status == "recording":
        _mark_recovered(folder, meta, sc, saved)
        row["status"] = meta["status"]
        changed = True
    if changed:
        write_meta(folder, meta)
        row["marked"] = True
    return row


def _mark_recovered(folder: Path, meta: dict[str, Any], sc: Any, saved: Path | None) -> None:
    from recorder.video import probe_video

    meta["status"] = "recovered"
    if sc is None:
        meta["errors"].append(f"the recorder stopped without closing this episode, and before its {LOG_NAME} "
                              "existed: no log records")
    else:
        meta["errors"].append(
            f"the recorder stopped without closing this episode; recovered {sc.records} log records"
            + (f", cut a torn tail of {sc.torn_bytes} bytes" if sc.torn_bytes else "")
            + (f" (kept in {saved.name})" if saved else "")
            + (f"; {_plural(len(sc.damage), 'damaged region')} inside the log skipped" if sc.damage else "")
        )
    if sc is not None and sc.records:
        meta["duration_s"] = round((sc.last_recv_ns - sc.first_recv_ns) / 1e9, 3)
        if "stages_ms" not in meta:  # the recorder keeps them in memory until it closes the episode
            from recorder.latency import from_log

            meta.update(from_log(folder / LOG_NAME))
    for name, v in meta.get("videos", {}).items():
        try:
            info = probe_video(folder / v["file"])
            v["frames"] = info.frames
        except Exception as exc:  # a video killed before its first fragment has nothing to give
            v["frames"] = 0
            meta["errors"].append(f"video {name}: {exc}")
    meta["outcome"] = meta.get("outcome") or "unknown"


def resolve_episode(spec: str | Path) -> Path:
    """An episode folder from a path (``DATASET/episode_000003``) or ``DATASET:3``."""
    s = str(spec)
    if ":" in s and not Path(s).exists():
        ds, _, idx = s.rpartition(":")
        if idx.isdigit():
            s = str(episode_dir(Path(ds), int(idx)))
    p = Path(s)
    if not (p / META_NAME).is_file() and not (p / LOG_NAME).is_file():
        raise EpisodeError(f"{p} is not an episode folder (no {META_NAME} or {LOG_NAME}); "
                           "`teleop episodes list DATASET` shows the episodes")
    return p
