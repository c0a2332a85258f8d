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
(``status: recording`` in meta.json) is recovered (torn log tail cut, videos probed) and kept.
``meta.json`` is always replaced atomically, so it is either the old or the new version.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
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
    "resolve_episode",
    "EpisodeSummary",
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

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_episodes(dataset: Path) -> list[EpisodeSummary]:
    out = []
    for i in _indices(Path(dataset)):
        folder = episode_dir(dataset, i)
        try:
            m = read_meta(folder)
        except EpisodeError as exc:
            out.append(EpisodeSummary(i, str(folder), f"unreadable: {exc}", "unknown", "", "", 0.0, {}, 0, 1))
            continue
        out.append(EpisodeSummary(
            index=i, path=str(folder), status=m.get("status", "?"), outcome=m.get("outcome", "unknown"),
            task=m.get("task", ""), operator=m.get("operator", ""), duration_s=float(m.get("duration_s", 0.0)),
            frames={k: v.get("frames", 0) for k, v in m.get("videos", {}).items()},
            notes=len(m.get("notes", [])), errors=len(m.get("errors", [])),
        ))
    return out


def write_index(dataset: Path) -> Path:
    """Rewrite index.json from the episode folders (atomically)."""
    dataset = Path(dataset)
    path = dataset / "index.json"
    tmp = path.with_suffix(".json.tmp")
    data = {"episodes": [e.as_dict() for e in list_episodes(dataset)], "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    tmp.write_text(json.dumps(data, indent=1) + "\n")
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
    """Make a crashed episode whole: cut the log's torn tail, count what the videos hold, mark
    it ``recovered``. Returns the new metadata. An episode that is not crashed is untouched."""
    from recorder.log import verify
    from recorder.video import probe_video

    folder = Path(folder)
    meta = read_meta(folder)
    if meta.get("status") != "recording":
        return meta
    rep = verify(folder / LOG_NAME, truncate=True)
    meta["status"] = "recovered"
    meta.setdefault("errors", []).append(
        f"the recorder stopped without closing this episode; recovered {rep.records} log records"
        + (f", cut a torn tail of {rep.torn_bytes} bytes" if rep.torn_bytes else "")
    )
    if rep.records:
        meta["duration_s"] = round((rep.last_recv_ns - rep.first_recv_ns) / 1e9, 3)
    for name, v in meta.get("videos", {}).items():
        try:
            info = probe_video(folder / v["file"])
            v["frames"] = info.frames
        except Exception as exc:  # a video killed before its first fragment has nothing to give
            v["frames"] = 0
            meta["errors"].append(f"video {name}: {exc}")
    meta["outcome"] = meta.get("outcome") or "unknown"
    write_meta(folder, meta)
    return meta


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
