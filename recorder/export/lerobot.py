"""``teleop export --format lerobot``: a LeRobot dataset v3.0 from recorded episodes.

Written with pyarrow, pandas, json and PyAV only (no lerobot install needed), following
the LeRobot dataset v3.0 layout::

    OUT/meta/info.json                          codebase_version v3.0, fps (int), features
    OUT/meta/stats.json                         every feature, merged from per-episode stats
    OUT/meta/tasks.parquet                      pandas index "task" = task string, column task_index
    OUT/meta/episodes/chunk-000/file-000.parquet   one row per episode: offsets + stats/* columns
    OUT/data/chunk-000/file-000.parquet         the frames of many episodes
    OUT/videos/observation.images.<cam>/chunk-000/file-000.mp4   all episodes of a camera

Every row is one resampled frame (recorder/export/common.py); ``timestamp = frame_index / fps``
(float32) and each camera's mp4 has exactly one frame per row, frame ``k`` of an episode at
``from_timestamp + k / fps``. Data and video files roll over to ``file-001`` ... past
``data_files_size_in_mb`` / ``video_files_size_in_mb`` (never inside an episode).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from recorder.export.common import (
    EpisodeSkipped,
    ExportError,
    ExportSummary,
    Feature,
    Progress,
    Resampled,
    check_fps,
    finish_out,
    iter_track_frames,
    link_tree,
    note_damage,
    prepare_out,
    resample_path,
    select_episodes,
)
from teleop.errors import ConfigError

__all__ = ["export_lerobot", "CODECS", "CODEBASE_VERSION", "DEFAULT_FEATURES"]

logger = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_MB = 100
VIDEO_FILES_SIZE_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"


@dataclass(frozen=True)
class VideoEncoding:
    """How one codec is encoded. info.json records it as LeRobot 0.6 does (``video.g`` ...), so its
    edit tools (split, merge, re-encode) encode new files the way these were encoded."""

    encoder: str  # PyAV/FFmpeg encoder name
    g: int  # keyframe interval: 2 as LeRobot (cheap seeking)
    crf: int
    preset: str | int
    fast_decode: int = 0  # LeRobot's fast-decode tuning; 0 = off

    def options(self) -> dict[str, str]:
        return {"g": str(self.g), "crf": str(self.crf), "preset": str(self.preset)}

    def info(self) -> dict[str, Any]:
        return {"video.g": self.g, "video.crf": self.crf, "video.preset": self.preset,
                "video.fast_decode": self.fast_decode}


#: our codec name -> how it is encoded (av1: LeRobot's own defaults, preset 12)
CODECS: dict[str, VideoEncoding] = {
    "h264": VideoEncoding("libx264", g=2, crf=23, preset="veryfast"),
    "av1": VideoEncoding("libsvtav1", g=2, crf=30, preset=12),
}
#: the top-level keys of meta/info.json LeRobot knows (0.6 warns about any other and drops it)
INFO_KEYS = ("codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
             "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path",
             "features", "tools")
DEFAULT_FEATURES: dict[str, Feature] = {
    "timestamp": Feature("float32", (1,)),
    "frame_index": Feature("int64", (1,)),
    "episode_index": Feature("int64", (1,)),
    "index": Feature("int64", (1,)),
    "task_index": Feature("int64", (1,)),
}
_QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


def _next_file(chunk: int, file: int) -> tuple[int, int]:
    file += 1
    return (chunk + 1, 0) if file >= CHUNKS_SIZE else (chunk, file)


# -- stats (LeRobot compute_stats.py semantics) ---------------------------------------------------


def _stats(x: np.ndarray, axis: int | tuple[int, ...] = 0) -> dict[str, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    out = {"min": x.min(axis=axis), "max": x.max(axis=axis), "mean": x.mean(axis=axis), "std": x.std(axis=axis),
           "count": np.array([x.shape[0]], dtype=np.int64)}
    for name, q in _QUANTILES.items():
        out[name] = np.quantile(x, q, axis=axis)
    return out


def _image_stats(samples: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per channel, scaled to [0, 1], values Shape (3, 1, 1)."""
    x = np.stack(samples).astype(np.float64) / 255.0  # (n, H, W, 3)
    st = _stats(x, axis=(0, 1, 2))
    return {k: (v if k == "count" else v.reshape(3, 1, 1)) for k, v in st.items()}


def _aggregate(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Mean weighted by count, variance by the parallel formula, global min/max, quantiles
    averaged with count weights (approximate, as LeRobot)."""
    counts = np.array([s["count"][0] for s in per_episode], dtype=np.float64)
    total = counts.sum()

    def w(v: np.ndarray) -> np.ndarray:
        return counts.reshape((-1,) + (1,) * (v.ndim - 1))

    means = np.stack([s["mean"] for s in per_episode])
    mean = (means * w(means)).sum(0) / total
    var = ((np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2) * w(means)).sum(0) / total
    out = {"min": np.stack([s["min"] for s in per_episode]).min(0),
           "max": np.stack([s["max"] for s in per_episode]).max(0),
           "mean": mean, "std": np.sqrt(var), "count": np.array([int(total)], dtype=np.int64)}
    for name in _QUANTILES:
        qs = np.stack([s[name] for s in per_episode])
        out[name] = (qs * w(qs)).sum(0) / total
    return out


def _sample_indices(n: int) -> np.ndarray:
    """LeRobot's heuristic: all frames below 100, else n**0.75 clamped to 100..10000, evenly spaced."""
    k = n if n < 100 else max(100, min(int(n**0.75), 10_000))
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


def _downsample(img: np.ndarray, target: int = 150, threshold: int = 300) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) < threshold:
        return img
    f = int(max(h, w) / target)
    return img[::f, ::f]


# -- writers ---------------------------------------------------------------------------------------


class _VideoOut:
    """All episodes of one camera, concatenated; pts = frame number in the file, time base 1/fps."""

    def __init__(self, root: Path, key: str, fps: int, codec: str, width: int, height: int,
                 start: tuple[int, int] = (0, 0)) -> None:
        self.root, self.key, self.fps, self.codec = root, key, fps, codec
        self.width, self.height = width, height
        self.chunk, self.file = start  # an append starts past the export's files
        self.frames = 0
        self._c: Any = None
        self._st: Any = None
        self.first_path: Path | None = None

    @property
    def path(self) -> Path:
        return self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=self.chunk, file_index=self.file)

    def begin_episode(self) -> tuple[int, int, float]:
        """(chunk, file, from_timestamp) of the episode about to be written."""
        if self._c is not None and self.path.stat().st_size >= VIDEO_FILES_SIZE_MB * 1e6:
            self._close()
            self.chunk, self.file = _next_file(self.chunk, self.file)
        if self._c is None:
            self._open()
        return self.chunk, self.file, self.frames / self.fps

    def _open(self) -> None:
        import av

        encoding = CODECS[self.codec]
        encoder, options = encoding.encoder, encoding.options()
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._c = av.open(str(path), "w")
        try:
            st = self._c.add_stream(encoder, rate=self.fps)
            st.width, st.height, st.pix_fmt = self.width, self.height, "yuv420p"
            st.options = dict(options)
        except Exception as exc:
            self._c.close()
            self._c = None
            raise ExportError(f"{path}: the {encoder} encoder refused {self.width}x{self.height} at {self.fps} fps "
                              f"({exc}); try --codec h264") from exc
        self._st = st
        self.frames = 0
        self.first_path = self.first_path or path

    def write(self, rgb: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = self.frames, Fraction(1, self.fps)
        try:
            if self.frames == 0:  # the encoder starts here (SVT-AV1 as root would run at real-time priority)
                from recorder.video import encoder_without_realtime

                with encoder_without_realtime():
                    packets = self._st.encode(frame)
            else:
                packets = self._st.encode(frame)
            for packet in packets:
                self._c.mux(packet)
        except av.error.FFmpegError as exc:
            raise ExportError(f"{self.path}: encoding frame {self.frames} failed ({exc})") from exc
        self.frames += 1

    def _close(self) -> None:
        if self._c is None:
            return
        try:
            for packet in self._st.encode():
                self._c.mux(packet)
        finally:
            self._c.close()
            self._c, self._st = None, None

    def close(self) -> None:
        self._close()


class _DataOut:
    """Parquet frames of many episodes per file (one row group per episode)."""

    def __init__(self, root: Path, start: tuple[int, int] = (0, 0)) -> None:
        self.root = root
        self.chunk, self.file = start  # an append starts past the export's files
        self._w: Any = None
        self.schema: Any = None

    @property
    def path(self) -> Path:
        return self.root / DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)

    def write(self, table: Any) -> tuple[int, int]:
        import pyarrow.parquet as pq

        if self._w is not None and self.path.stat().st_size >= DATA_FILES_SIZE_MB * 1e6:
            self.close()
            self.chunk, self.file = _next_file(self.chunk, self.file)
        if self._w is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._w = pq.ParquetWriter(str(self.path), table.schema)
        self._w.write_table(table)
        return self.chunk, self.file

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None


def _arrow_type(dtype: str) -> Any:
    import pyarrow as pa

    return {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}[dtype]


def _arrow_column(values: np.ndarray, feat: Feature) -> Any:
    import pyarrow as pa

    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=_arrow_type(feat.dtype))
    if feat.shape == (1,):
        return flat
    return pa.FixedSizeListArray.from_arrays(flat, int(feat.shape[0]))


def _feature_json(feat: Feature, fps: int, codec: str) -> dict[str, Any]:
    names = list(feat.names) if feat.names else None
    d: dict[str, Any] = {"dtype": feat.dtype, "shape": list(feat.shape), "names": names}
    if feat.dtype == "video":
        h, w, c = feat.shape
        d["info"] = {"video.height": h, "video.width": w, "video.codec": codec, "video.pix_fmt": "yuv420p",
                     "video.fps": fps, "video.channels": c, "has_audio": False, "is_depth_map": False,
                     **CODECS[codec].info()}
    return d


def _upgrade_video_info(features: dict[str, Any]) -> dict[str, Any]:
    """An earlier export's video features as this one writes them: ``video.is_depth_map`` (which
    LeRobot 0.6 rewrites with a warning) becomes ``is_depth_map``; the encoder settings are added."""
    out = {}
    for key, feat in features.items():
        info = dict(feat.get("info") or {})
        if feat.get("dtype") == "video":
            info.setdefault("is_depth_map", bool(info.pop("video.is_depth_map", False)))
            encoding = CODECS.get(str(info.get("video.codec")))
            for k, v in (encoding.info() if encoding else {}).items():
                info.setdefault(k, v)
            feat = {**feat, "info": info}
        out[key] = feat
    return out


def _tolist(st: dict[str, np.ndarray]) -> dict[str, Any]:
    return {k: np.asarray(v).tolist() for k, v in st.items()}


def _check_schema(r: Resampled, schema: dict[str, Feature], against: str = "") -> None:
    have = r.all_features()
    if have == schema:
        return
    missing = sorted(set(schema) - set(have))
    extra = sorted(set(have) - set(schema))
    changed = sorted(k for k in set(have) & set(schema)
                     if (have[k].dtype, have[k].shape) != (schema[k].dtype, schema[k].shape))
    parts = ([f"missing {missing}"] if missing else []) + ([f"extra {extra}"] if extra else [])
    parts += [f"{k} is {have[k].dtype}{list(have[k].shape)}, not {schema[k].dtype}{list(schema[k].shape)}"
              for k in changed]
    if not parts:  # only the axis names differ: keep the first episode's
        return
    if against:
        raise ExportError(f"{r.path}: its features differ from those of the existing export {against} "
                          f"({'; '.join(parts)}); one dataset needs one feature set: export it to a new --out")
    raise ExportError(f"{r.path}: its features differ from the first exported episode's ({'; '.join(parts)}); "
                      "one dataset needs one feature set: export these episodes into separate datasets")


# -- an existing export (--append) -----------------------------------------------------------------


@dataclass
class _Existing:
    """What an append needs of the LeRobot dataset already at ``out``."""

    info: dict[str, Any]
    schema: dict[str, Feature]  # its features, without LeRobot's defaults
    tasks: dict[str, int]
    episodes_schema: Any  # pyarrow schema of its meta/episodes rows (new rows are written to match)
    stats: dict[str, dict[str, np.ndarray]]
    have: set[tuple[str, int | None]]  # (source_episode, source_start_ns) of every episode it holds
    data_start: tuple[int, int]  # the first (chunk, file) no file of it uses
    video_start: dict[str, tuple[int, int]]
    meta_start: tuple[int, int]

    @property
    def total_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def total_frames(self) -> int:
        return int(self.info["total_frames"])

    def holds(self, name: str, start_ns: int | None) -> bool:
        return (name, start_ns) in self.have or (name, None) in self.have  # (exports before source_start_ns)


def _after_files(folder: Path, suffix: str) -> tuple[int, int]:
    """The (chunk, file) after the last ``chunk-NNN/file-NNN<suffix>`` in ``folder``."""
    last: tuple[int, int] | None = None
    for p in folder.glob(f"chunk-*/file-*{suffix}"):
        c, f = re.fullmatch(r"chunk-(\d+)", p.parent.name), re.fullmatch(rf"file-(\d+){re.escape(suffix)}", p.name)
        if c and f:
            last = max(last or (0, 0), (int(c.group(1)), int(f.group(1))))
    return (0, 0) if last is None else _next_file(*last)


def _read_existing(out: Path, fps: int, codec: str) -> _Existing:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    info_path = out / "meta" / "info.json"
    try:
        info = json.loads(info_path.read_text())
        tasks_df = pd.read_parquet(out / "meta" / "tasks.parquet")
        raw_stats = json.loads((out / "meta" / "stats.json").read_text())
        ep_files = sorted((out / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        tables = [pq.read_table(p) for p in ep_files]
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise ExportError(f"--append: {out} is not a LeRobot dataset this exporter can add to ({exc}); choose "
                          "another --out, or --overwrite to replace it") from None
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise ExportError(f"--append: {out} is LeRobot {info.get('codebase_version')!r}; appending writes "
                          f"{CODEBASE_VERSION} only: export to a new --out")
    if info.get("fps") != fps:
        raise ExportError(f"--append: {out} was exported at {info.get('fps')} fps; append with --fps {info.get('fps')}")
    feats = info.get("features") or {}
    codecs = sorted({str(v.get("info", {}).get("video.codec")) for v in feats.values() if v.get("dtype") == "video"})
    if codecs and codecs != [codec]:
        raise ExportError(f"--append: the videos of {out} are {', '.join(codecs)}; append with --codec {codecs[0]}")
    episodes = pa.concat_tables(tables) if tables else None
    if episodes is None or episodes.num_rows != info.get("total_episodes"):
        held = 0 if episodes is None else episodes.num_rows
        raise ExportError(f"--append: {out} is inconsistent (meta/info.json says {info.get('total_episodes')} "
                          f"episodes, meta/episodes holds {held}); export to a new --out")
    names = [str(x) for x in episodes.column("source_episode").to_pylist()] if "source_episode" in \
        episodes.column_names else []
    starts = episodes.column("source_start_ns").to_pylist() if "source_start_ns" in episodes.column_names \
        else [None] * len(names)
    schema = {k: Feature(str(v["dtype"]), tuple(int(x) for x in v["shape"]),
                         tuple(v["names"]) if isinstance(v.get("names"), list) else None)
              for k, v in feats.items() if k not in DEFAULT_FEATURES}
    return _Existing(
        info=info, schema=schema,
        tasks={str(t): int(i) for t, i in zip(tasks_df.index, tasks_df["task_index"], strict=True)},
        episodes_schema=tables[0].schema,
        stats={k: {st: np.asarray(v) for st, v in d.items()} for k, d in raw_stats.items()},
        have=set(zip(names, starts, strict=True)),
        data_start=_after_files(out / "data", ".parquet"),
        video_start={k: _after_files(out / "videos" / k, ".mp4") for k, v in feats.items()
                     if v.get("dtype") == "video"},
        meta_start=_after_files(out / "meta" / "episodes", ".parquet"),
    )


def _episodes_table(rows: list[dict[str, Any]], like: Any = None) -> Any:
    """The meta/episodes rows as a pyarrow table; with ``like`` (an existing file's schema) in its
    columns and types, so LeRobot reads all the files as one table."""
    import pyarrow as pa

    table = pa.Table.from_pylist(rows)
    for name in ("takeover_t", "return_t"):  # all-empty lists would be list<null>
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(name).cast(pa.list_(pa.float64())))
    if like is None:
        return table
    cols = []
    for f in like:
        if f.name in table.column_names:
            try:
                cols.append(table.column(f.name).cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ExportError(f"--append: episode column {f.name} is {table.column(f.name).type} here but "
                                  f"{f.type} in the existing export ({exc}); export to a new --out") from None
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=like)


def _replace_file(path: Path, write: Any) -> None:
    """``write(tmp_path)`` then rename over ``path``: a new inode, so a hard-linked original
    (``link_tree``) is never written through."""
    tmp = path.with_name(f".{path.name}.new")
    write(tmp)
    os.replace(tmp, path)


# -- the export ------------------------------------------------------------------------------------


def export_lerobot(dataset: str | Path, out: str | Path, *, fps: float = 30, codec: str = "h264",
                   only_success: bool = False, overwrite: bool = False, velocity: bool = True,
                   skip_damaged: bool = False, skip_degraded: bool = False, episodes: str | None = None,
                   include_discarded: bool = False, append: bool = False,
                   progress: Progress | None = None) -> ExportSummary:
    """Export the complete/recovered episodes of ``dataset`` (``episodes``: a ``--episodes``
    selection) to a LeRobot v3.0 dataset at ``out`` (an episode with a damaged log from every
    intact record, or not at all with ``skip_damaged``; a degraded one with a warning, or not at
    all with ``skip_degraded``). ``append``: add the episodes ``out`` does not hold yet to it,
    after its own (new data, video and episodes files; the old ones untouched)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    t_start = time.monotonic()
    fps_i = check_fps(fps)
    if codec not in CODECS:
        raise ConfigError(f"--codec {codec!r}: allowed {sorted(CODECS)}")
    if append and overwrite:
        raise ConfigError("--append adds to --out and --overwrite replaces it: give one of them")
    out = Path(out)
    existing = _read_existing(out, fps_i, codec) if append and out.exists() else None
    degraded: list[dict[str, Any]] = []
    chosen, skipped = select_episodes(dataset, only_success=only_success, episodes=episodes,
                                      include_discarded=include_discarded, skip_degraded=skip_degraded,
                                      degraded=degraded, progress=progress)
    if existing is not None:
        chosen = [e for e in chosen if not _held(existing, e, out, skipped, progress)]
        if not chosen:
            if progress:
                progress(f"{out} already holds every selected episode; nothing appended")
            return ExportSummary("lerobot", str(out), 0, 0, fps_i, time.monotonic() - t_start, skipped, [], [],
                                 degraded, True, existing.total_episodes, existing.total_frames)
    tmp = prepare_out(out, overwrite or existing is not None)
    if existing is not None:
        link_tree(out, tmp)
    else:
        tmp.mkdir()
    data = _DataOut(tmp, existing.data_start if existing else (0, 0))
    videos: dict[str, _VideoOut] = {}
    schema: dict[str, Feature] | None = dict(existing.schema) if existing else None
    tasks: dict[str, int] = dict(existing.tasks) if existing else {}
    ep_base = existing.total_episodes if existing else 0
    frames_base = total = existing.total_frames if existing else 0
    meta_chunk, meta_file = existing.meta_start if existing else (0, 0)
    ep_rows: list[dict[str, Any]] = []
    ep_stats: list[dict[str, dict[str, np.ndarray]]] = []
    exported: list[dict[str, Any]] = []
    damaged: list[dict[str, Any]] = []
    robot_type: str | None = existing.info.get("robot_type") if existing else None
    try:
        for n, summary in enumerate(chosen):
            t_ep = time.monotonic()
            try:
                r = resample_path(summary.path, fps_i, velocity=velocity)
            except EpisodeSkipped as exc:
                skipped.append({"episode": summary.path, "reason": str(exc)})
                if progress:
                    progress(f"skip {Path(summary.path).name}: {exc}")
                continue
            if note_damage(r, skip_damaged=skip_damaged, damaged=damaged, skipped=skipped, progress=progress):
                continue
            if schema is None:
                schema = r.all_features()
                robot_type = r.meta.get("robot") or None
            else:
                _check_schema(r, schema, against=str(out) if existing else "")
            ep_index = ep_base + len(ep_rows)
            length = r.length
            task_index = tasks.setdefault(r.task, len(tasks))
            row: dict[str, Any] = {"episode_index": ep_index, "tasks": [r.task], "length": length}
            stats: dict[str, dict[str, np.ndarray]] = {}

            # videos: exactly one frame per row, re-encoded at fps
            for key, track in r.videos.items():
                v = videos.get(key)
                if v is None:
                    start = existing.video_start.get(key, (0, 0)) if existing else (0, 0)
                    v = videos[key] = _VideoOut(tmp, key, fps_i, codec, track.width, track.height, start)
                chunk, file, from_ts = v.begin_episode()
                picks = set(_sample_indices(length).tolist())
                samples = []
                for k, rgb in enumerate(iter_track_frames(track)):
                    v.write(rgb)
                    if k in picks:
                        samples.append(_downsample(rgb))
                row[f"videos/{key}/chunk_index"] = chunk
                row[f"videos/{key}/file_index"] = file
                row[f"videos/{key}/from_timestamp"] = from_ts
                row[f"videos/{key}/to_timestamp"] = from_ts + length / fps_i
                stats[key] = _image_stats(samples)

            # frames
            frame_index = np.arange(length, dtype=np.int64)
            defaults: dict[str, np.ndarray] = {
                "timestamp": (frame_index / fps_i).astype(np.float32),
                "frame_index": frame_index,
                "episode_index": np.full(length, ep_index, np.int64),
                "index": np.arange(total, total + length, dtype=np.int64),
                "task_index": np.full(length, task_index, np.int64),
            }
            cols, names = [], []
            for key, feat in schema.items():
                if feat.dtype != "video":
                    names.append(key)
                    cols.append(_arrow_column(r.columns[key], feat))
                    stats[key] = _stats(r.columns[key].reshape(length, -1))
            for key, values in defaults.items():
                names.append(key)
                cols.append(_arrow_column(values, DEFAULT_FEATURES[key]))
                stats[key] = _stats(values.reshape(length, 1))
            chunk, file = data.write(pa.Table.from_arrays(cols, names=names))
            row.update({"data/chunk_index": chunk, "data/file_index": file, "dataset_from_index": total,
                        "dataset_to_index": total + length})
            row.update({"meta/episodes/chunk_index": meta_chunk, "meta/episodes/file_index": meta_file})
            for key, st in stats.items():
                for stat, value in st.items():
                    row[f"stats/{key}/{stat}"] = np.asarray(value).tolist()
            # extras (ignored by the loader): where the episode came from (which --append checks),
            # its outcome, takeover/return times
            row.update({"source_episode": Path(summary.path).name,
                        "source_start_ns": int(r.meta.get("start_ns") or 0) or None, "outcome": r.outcome,
                        "takeover_t": r.takeover_t, "return_t": r.return_t})
            ep_rows.append(row)
            ep_stats.append(stats)
            total += length
            exported.append({"episode": summary.path, "episode_index": ep_index, "frames": length})
            if progress:
                progress(f"[{n + 1}/{len(chosen)}] {Path(summary.path).name} -> episode {ep_index}: {length} frames, "
                         f"{len(r.videos)} videos, {time.monotonic() - t_ep:.1f} s")
        data.close()
        for v in videos.values():
            v.close()
        if not ep_rows or schema is None:
            why = "; ".join(f"{Path(s['episode']).name}: {s['reason']}" for s in skipped[:5])
            raise ExportError(f"{dataset}: no episode had anything to export ({why})")

        meta = tmp / "meta"
        ep_path = tmp / EPISODES_PATH.format(chunk_index=meta_chunk, file_index=meta_file)
        ep_path.parent.mkdir(parents=True, exist_ok=True)
        table = _episodes_table(ep_rows, existing.episodes_schema if existing else None)
        _replace_file(ep_path, lambda p: pq.write_table(table, str(p)))
        task_names = sorted(tasks, key=tasks.__getitem__)
        # the index is the task string, named "task" as LeRobot 0.6 writes it (0.4 reads either)
        tasks_df = pd.DataFrame({"task_index": [tasks[t] for t in task_names]},
                                index=pd.Index(task_names, name="task"))
        _replace_file(meta / "tasks.parquet", lambda p: tasks_df.to_parquet(p))
        keys = list(ep_stats[0])
        merged = {key: _tolist(_aggregate(([existing.stats[key]] if existing and key in existing.stats else [])
                                          + [s[key] for s in ep_stats])) for key in keys}
        _replace_file(meta / "stats.json", lambda p: p.write_text(json.dumps(merged, indent=4)))
        n_episodes = ep_base + len(ep_rows)
        has_video = bool(videos) or any(f.dtype == "video" for f in schema.values())
        info = {
            **({k: v for k, v in existing.info.items() if k in INFO_KEYS} if existing else {}),
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type,
            "total_episodes": n_episodes,
            "total_frames": total,
            "total_tasks": len(tasks),
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": DATA_FILES_SIZE_MB,
            "video_files_size_in_mb": VIDEO_FILES_SIZE_MB,
            "fps": fps_i,
            "splits": {"train": f"0:{n_episodes}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if has_video else None,
            "features": (_upgrade_video_info(existing.info["features"]) if existing else
                         {k: _feature_json(f, fps_i, codec) for k, f in {**schema, **DEFAULT_FEATURES}.items()}),
        }
        _replace_file(meta / "info.json", lambda p: p.write_text(json.dumps(info, indent=4)))
        finish_out(tmp, out)
    except BaseException:
        data.close()
        for v in videos.values():
            try:
                v.close()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportSummary("lerobot", str(out), len(ep_rows), total - frames_base, fps_i, time.monotonic() - t_start,
                         skipped, exported, damaged, degraded, existing is not None, ep_base + len(ep_rows), total)


def _held(existing: _Existing, e: Any, out: Path, skipped: list[dict[str, str]], progress: Progress | None) -> bool:
    """Does the export being appended to hold this episode already? (then it is skipped, said so)"""
    from recorder.episode import read_meta

    start = read_meta(Path(e.path)).get("start_ns")
    if not existing.holds(Path(e.path).name, int(start) if start else None):
        return False
    skipped.append({"episode": e.path, "reason": f"already in {out}"})
    if progress:
        progress(f"skip {Path(e.path).name}: already in {out}")
    return True
