"""What every exporter shares: picking the episodes, and resampling one episode to a fixed rate.

Resampling rule (docs/data-format.md, "Exports"): frame ``k`` of an episode is at

    t_k = t_0 + k / fps,   k = 0 .. floor((t_end - t_0) * fps)

on the session clock, where ``[t_0, t_end]`` is the span in which the robot state and the
executed command both exist. Every stream is read by **zero-order hold**: the value of the
latest message with ``t_ns <= t_k`` (before a stream's first message: its first message).
Camera frames likewise: the latest logged ``VideoFrameRef`` with a usable ``video_index`` at or
before ``t_k``. The capture time of the state actually used is kept in
``complementary_info.t_capture`` (seconds since ``t_0``), so ``timestamp - t_capture`` is the age
of the observation: never negative, at most the longest interval between two robot states.

Feature names follow LeRobot's reading of them: every ``observation.*`` key is a policy input and
every ``action*`` key a policy output, so bookkeeping that is neither (who drove, the policy's
proposal, capture times) lives under ``complementary_info.*``, which LeRobot leaves alone.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from recorder.episode import EpisodeSummary, list_episodes
from recorder.reader import Episode, Stream, load_episode
from teleop.errors import ConfigError, TeleopError

__all__ = [
    "ExportError",
    "EpisodeSkipped",
    "Feature",
    "VideoTrack",
    "Resampled",
    "ExportSummary",
    "STATE_TOPIC",
    "COMMAND_TOPIC",
    "EXPORTABLE_STATUS",
    "ACTION_MODES",
    "check_fps",
    "select_episodes",
    "resample",
    "resample_path",
    "frame_times_ns",
    "hold_indices",
    "iter_track_frames",
    "count_video_frames",
    "Progress",
    "prepare_out",
    "finish_out",
    "note_damage",
    "link_tree",
    "parse_selection",
    "BOOKKEEPING",
]

logger = logging.getLogger(__name__)

STATE_TOPIC = "robot/state"
COMMAND_TOPIC = "session/command"
SPEC_TOPIC = "session/robot_spec"
VIDEO_PREFIX = "recorder/video/"
EXPORTABLE_STATUS = ("complete", "recovered")
#: ``complementary_info.action_mode`` codes (Sirius): a human demo without a policy, the policy, a human
#: correcting it.
ACTION_MODES = {"demo": -1, "policy": 0, "intervention": 1}
#: Per-frame features that are neither a policy input nor its output (LeRobot takes every
#: ``observation.*`` key as an input and every ``action*`` key as an output; it leaves these alone).
BOOKKEEPING = ("intervention", "complementary_info.is_intervention", "complementary_info.action_mode",
               "complementary_info.policy_action", "complementary_info.t_capture")
MAX_FPS = 1000

Progress = Callable[[str], None]


class ExportError(TeleopError):
    """An export cannot be made; the message names the file and the fix."""


class EpisodeSkipped(ExportError):
    """This episode has nothing to export (no state or no commands); the others go on."""


@dataclass(frozen=True)
class Feature:
    """One per-frame feature. ``dtype`` is ``float32``, ``float64``, ``int64``, ``bool`` or ``video``;
    ``shape`` is ``(D,)`` for vectors (``(1,)`` for scalars) or ``(H, W, 3)`` for videos."""

    dtype: str
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None


@dataclass
class VideoTrack:
    """Which source frame each exported frame shows. ``indices`` Shape (N,) int64, frame indices
    into ``path`` (decode order), non-decreasing in practice."""

    camera: str
    path: Path
    width: int
    height: int
    frames: int  # frames the source file holds
    indices: npt.NDArray[np.int64]


@dataclass
class Resampled:
    """One episode at a fixed rate. ``columns[name]`` Shape (N, *feature.shape) in the feature's
    dtype; videos are described by ``videos[key]`` (frames are decoded on demand)."""

    path: Path
    meta: dict[str, Any]
    fps: int
    t0_ns: int  # session-clock time of frame 0
    t_ns: npt.NDArray[np.int64]  # (N,) t_k
    features: dict[str, Feature]
    columns: dict[str, np.ndarray]
    videos: dict[str, VideoTrack]
    states: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (N, n) float64 robot q, unrounded
    takeover_t: list[float] = field(default_factory=list)  # seconds (frame time) where an intervention starts
    return_t: list[float] = field(default_factory=list)  # ... and where control goes back
    log: Any = None  # the reader's LogScan: damage skipped in the log (every intact record is used)

    @property
    def length(self) -> int:
        return int(len(self.t_ns))

    @property
    def task(self) -> str:
        return str(self.meta.get("task") or "")

    @property
    def outcome(self) -> str:
        return str(self.meta.get("outcome") or "unknown")

    def all_features(self) -> dict[str, Feature]:
        """Vector features then videos (each ``Feature(dtype="video", shape=(H, W, 3))``)."""
        out = dict(self.features)
        for key, v in self.videos.items():
            out[key] = Feature("video", (v.height, v.width, 3), ("height", "width", "channels"))
        return out


@dataclass
class ExportSummary:
    format: str
    out: str
    episodes: int
    frames: int
    fps: int
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    exported: list[dict[str, Any]] = field(default_factory=list)
    damaged: list[dict[str, Any]] = field(default_factory=list)  # episodes whose log is damaged (note_damage)
    degraded: list[dict[str, Any]] = field(default_factory=list)  # episodes recorded in trouble (select_episodes)
    appended: bool = False  # added to an existing export (``episodes``/``frames`` count the new ones)
    total_episodes: int = 0  # in the export now
    total_frames: int = 0

    def as_dict(self, detail: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {"format": self.format, "out": self.out, "episodes": self.episodes, "frames": self.frames,
                             "fps": self.fps, "seconds": round(self.seconds, 3), "skipped": len(self.skipped),
                             "damaged": self.damaged, "degraded": self.degraded, "appended": self.appended,
                             "total_episodes": self.total_episodes or self.episodes,
                             "total_frames": self.total_frames or self.frames}
        if detail:
            d["skipped_episodes"] = self.skipped
            d["exported_episodes"] = self.exported
        return d


# -- choosing episodes -----------------------------------------------------------------------------


def check_fps(fps: float) -> int:
    """The export rate as an int (LeRobot stores ``fps`` as an int); ConfigError otherwise."""
    try:
        f = float(fps)
    except (TypeError, ValueError):
        raise ConfigError(f"--fps {fps!r}: give a whole number of frames per second, e.g. --fps 30") from None
    if not np.isfinite(f) or f <= 0 or f != int(f) or f > MAX_FPS:
        raise ConfigError(f"--fps {f:g}: must be a whole number of frames per second in 1..{MAX_FPS} "
                          "(LeRobot stores fps as an int and timestamps as frame_index / fps), e.g. --fps 30")
    return int(f)


def parse_selection(text: str, available: list[int]) -> list[int]:
    """``--episodes`` (``"0:10,15"``): comma-separated episode numbers and ranges, ``A:B`` = A..B-1
    as a Python slice, ``A:`` to the last, ``:B`` from the first. Returns the numbers in
    ``available`` it names, sorted; ConfigError on bad syntax, an empty range or a number the
    dataset does not have."""
    spec = str(text).strip()
    have = sorted(set(available))
    span = f"{have[0]}..{have[-1]}" if have else "none"
    grammar = "write episode numbers and ranges separated by commas, e.g. --episodes 0:10,15 (A:B is A..B-1)"
    if not spec:
        raise ConfigError(f"--episodes is empty; {grammar}")
    chosen: set[int] = set()
    for item in spec.split(","):
        part = item.strip()
        lo_s, colon, hi_s = part.partition(":")
        lo_s, hi_s = lo_s.strip(), hi_s.strip()
        if not part or not all(x == "" or x.isdigit() for x in (lo_s, hi_s)) or (not colon and not lo_s) \
                or ":" in hi_s:
            raise ConfigError(f"--episodes {spec!r}: {part!r} is not an episode number or a range; {grammar}")
        lo = int(lo_s) if lo_s else (have[0] if have else 0)
        if not colon:
            if lo not in have:
                raise ConfigError(f"--episodes {spec!r}: there is no episode {lo} (the dataset has {span})")
            chosen.add(lo)
            continue
        hi = int(hi_s) if hi_s else (have[-1] + 1 if have else 0)
        if not have or lo > have[-1] or hi - 1 > have[-1]:
            raise ConfigError(f"--episodes {spec!r}: {part!r} goes past the last episode (the dataset has {span}; "
                              f"A:B is A..B-1, A: runs to the last)")
        if hi <= lo:
            raise ConfigError(f"--episodes {spec!r}: {part!r} is an empty range (A:B is A..B-1, so B must be above A)")
        chosen.update(i for i in have if lo <= i < hi)
    return sorted(chosen)


def select_episodes(dataset: str | Path, *, only_success: bool = False, episodes: str | None = None,
                    include_discarded: bool = False, skip_degraded: bool = False,
                    degraded: list[dict[str, Any]] | None = None,
                    progress: Progress | None = None) -> tuple[list[EpisodeSummary], list[dict[str, str]]]:
    """The episodes to export and the skipped ones (``{"episode", "reason"}``). Only ``complete``
    and ``recovered`` episodes are exported (a ``recording`` one is still open, or crashed:
    `teleop episodes verify` recovers it); discarded ones only with ``include_discarded``;
    ``episodes`` (``parse_selection``) picks by number first. A degraded episode (its recording
    went wrong: ``recorder.episode.degradation``) is noted in ``degraded`` and, with
    ``skip_degraded``, skipped."""
    ds = Path(dataset)
    if not ds.is_dir():
        raise ExportError(f"{ds}: no such dataset folder; give the folder `teleop record --dataset` wrote")
    eps = list_episodes(ds)
    if not eps:
        raise ExportError(f"{ds}: no episode folders (episode_NNNNNN/) in it; record some with "
                          f"`teleop record --dataset {ds}` or point at the right folder")
    if episodes is not None:
        wanted = set(parse_selection(episodes, [e.index for e in eps]))
        eps = [e for e in eps if e.index in wanted]
    keep, skipped = [], []
    for e in eps:
        reason = ""
        if e.discarded and not include_discarded:
            reason = f"discarded (`teleop episodes restore {ds}:{e.index}`, or --include-discarded)"
        elif e.status not in EXPORTABLE_STATUS:
            reason = f"status {e.status!r} (exported: {', '.join(EXPORTABLE_STATUS)}"
            reason += "; run `teleop episodes verify` to recover a crashed one)" if e.status == "recording" else ")"
        elif only_success and e.outcome != "success":
            reason = f"outcome {e.outcome!r} (--only-success)"
        elif e.degraded:
            if degraded is not None:
                degraded.append({"episode": e.path, "reasons": list(e.degraded), "skipped": skip_degraded})
            if skip_degraded:
                reason = f"degraded recording ({'; '.join(e.degraded)}; --skip-degraded)"
            elif progress:
                progress(f"warning: {Path(e.path).name}: degraded recording ({'; '.join(e.degraded)}); exported "
                         "(--skip-degraded leaves it out)")
        if reason:
            skipped.append({"episode": e.path, "reason": reason})
            if progress:
                progress(f"skip {Path(e.path).name}: {reason}")
        else:
            keep.append(e)
    if not keep:
        why = "; ".join(f"{Path(s['episode']).name}: {s['reason']}" for s in skipped[:5])
        raise ExportError(f"{ds}: none of its {len(eps)} {'selected ' if episodes is not None else ''}episodes can "
                          f"be exported ({why})")
    return keep, skipped


def note_damage(r: Resampled, *, skip_damaged: bool, damaged: list[dict[str, Any]], skipped: list[dict[str, str]],
                progress: Progress | None = None) -> bool:
    """Say so when ``r``'s log is damaged (its reader skipped damaged regions): an entry in
    ``damaged`` and a progress line. True when the episode is to be left out (``skip_damaged``:
    then it is also in ``skipped``); otherwise it is exported from every intact record."""
    sc = r.log
    if sc is None or not sc.damaged:
        return False
    from recorder.episode import damage_summary

    d = sc.as_dict()
    text = damage_summary({"regions": d["damage"], "bytes": d["damaged_bytes"], "records_lost": d["records_lost"]})
    damaged.append({"episode": str(r.path), "summary": text, "regions": len(sc.damage), "bytes": d["damaged_bytes"],
                    "records_lost": d["records_lost"], "messages_lost": d["messages_lost"], "records_kept": sc.records,
                    "skipped": skip_damaged})
    if skip_damaged:
        reason = f"damaged log ({text}; --skip-damaged)"
        skipped.append({"episode": str(r.path), "reason": reason})
        if progress:
            progress(f"skip {r.path.name}: {reason}")
        return True
    if progress:
        progress(f"warning: {r.path.name}: damaged log ({text}); exported from every intact record "
                 "(--skip-damaged leaves it out)")
    return False


def prepare_out(out: Path, overwrite: bool) -> Path:
    """A fresh partial path next to ``out`` (renamed to ``out`` when the export succeeds)."""
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists; choose another --out, pass --overwrite to replace it or --append to add "
                          "episodes to it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.is_dir():
        shutil.rmtree(tmp)
    elif tmp.exists():
        tmp.unlink()
    return tmp


def finish_out(tmp: Path, out: Path) -> None:
    """Put the finished ``tmp`` in place of ``out``. The old ``out`` is renamed aside first and
    deleted last, so a crash in between leaves a whole export under one of the two names."""
    old = out.with_name(f".{out.name}.old")
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old)
    elif old.exists() or old.is_symlink():
        old.unlink()
    had = out.exists() or out.is_symlink()
    if had:
        os.replace(out, old)
    os.replace(tmp, out)
    if had:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def link_tree(src: Path, dst: Path) -> None:
    """``dst`` as a copy of the folder ``src`` made of hard links (no data copied; a copy where
    links are refused). Files in ``dst`` must then be replaced (``os.replace``), never written
    in place: that would change ``src`` too."""
    for root, _, files in os.walk(src):
        rel = Path(root).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            try:
                os.link(Path(root) / name, dst / rel / name)
            except OSError:
                shutil.copy2(Path(root) / name, dst / rel / name)


# -- resampling ------------------------------------------------------------------------------------


def frame_times_ns(start_ns: int, end_ns: int, fps: int) -> npt.NDArray[np.int64]:
    """``t_k = start + k / fps`` (rounded to ns) for ``k = 0 .. floor((end - start) * fps)``."""
    n = (int(end_ns) - int(start_ns)) * int(fps) // 1_000_000_000 + 1
    k = np.arange(n, dtype=np.int64)
    return int(start_ns) + (k * 1_000_000_000 + fps // 2) // fps


def hold_indices(t_src: npt.NDArray[np.int64], t_k: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Zero-order hold: for each ``t_k`` the index of the latest ``t_src <= t_k`` (0 before the
    first). ``t_src`` must be sorted."""
    idx = np.searchsorted(t_src, t_k, side="right") - 1
    return np.maximum(idx, 0).astype(np.int64)


@dataclass
class _Sorted:
    t: npt.NDArray[np.int64]
    messages: list[Any]


def _sorted(stream: Stream, keep: Callable[[Any], bool] | None = None) -> _Sorted:
    msgs = stream.messages
    t = stream.t_ns
    if keep is not None:
        sel = [i for i, m in enumerate(msgs) if keep(m)]
        msgs = [msgs[i] for i in sel]
        t = t[np.asarray(sel, dtype=np.int64)] if sel else np.zeros(0, np.int64)
    order = np.argsort(t, kind="stable")
    return _Sorted(t[order].astype(np.int64), [msgs[i] for i in order])


def _stack(ep: Episode, topic: str, msgs: list[Any], name: str, flat: bool = True) -> np.ndarray:
    try:
        arr = np.stack([np.asarray(getattr(m, name), dtype=np.float64) for m in msgs])
    except ValueError:
        shapes = sorted({np.shape(getattr(m, name)) for m in msgs})
        raise ExportError(f"{ep.path}: {topic} field {name!r} changes shape within the episode {shapes[:4]}; "
                          "the log is inconsistent, export without this episode") from None
    return arr.reshape(len(msgs), -1) if flat else arr


def _key(device: str) -> str:
    """A device or camera name as a feature name part (feature names must not contain '/')."""
    return device.replace("/", "_").strip() or "unnamed"


def _spec(ep: Episode) -> Any:
    s = ep.streams.get(SPEC_TOPIC)
    return s.messages[-1] if s is not None and len(s) else None


def _names(given: Any, n: int, fallback: str) -> tuple[str, ...]:
    names = tuple(str(x) for x in given) if given is not None else ()
    return names if len(names) == n else tuple(f"{fallback}{i}" for i in range(n))


def resample(ep: Episode, fps: int, *, velocity: bool = True) -> Resampled:
    """The episode at ``fps`` frames per second (module docstring). Raises ``EpisodeSkipped``
    when it has no state or no commands, ``ExportError`` when a listed video is missing."""
    fps = check_fps(fps)
    for topic in (STATE_TOPIC, COMMAND_TOPIC):
        if topic not in ep.streams or not len(ep.streams[topic]):
            raise EpisodeSkipped(f"{ep.path}: no {topic} messages in {ep.path / 'log.tlog'}; nothing to export")
    state = _sorted(ep.streams[STATE_TOPIC])
    cmd = _sorted(ep.streams[COMMAND_TOPIC])
    start = max(int(state.t[0]), int(cmd.t[0]))
    end = min(int(state.t[-1]), int(cmd.t[-1]))
    if end < start:
        raise EpisodeSkipped(f"{ep.path}: the robot state and the commands never overlap in time; nothing to export")
    t_k = frame_times_ns(start, end, fps)
    spec = _spec(ep)
    features: dict[str, Feature] = {}
    columns: dict[str, np.ndarray] = {}

    def put(name: str, dtype: str, values: np.ndarray, names: tuple[str, ...] | None) -> None:
        values = np.asarray(values)
        if values.ndim == 1:
            values = values[:, None]
        features[name] = Feature(dtype, (int(values.shape[1]),), names)
        columns[name] = values.astype(dtype)

    # robot state
    si = hold_indices(state.t, t_k)
    q = _stack(ep, STATE_TOPIC, state.messages, "q")
    n = q.shape[1]
    joint_names = _names(ep.meta.get("joint_names") or (spec.joint_names if spec else None), n, "q")
    put("observation.state", "float32", q[si], joint_names)
    if velocity:
        dq = _stack(ep, STATE_TOPIC, state.messages, "dq")
        if dq.shape[1] == n:
            put("observation.velocity", "float32", dq[si], joint_names)
    poses = _stack(ep, STATE_TOPIC, state.messages, "body_pose")
    if poses.shape[1]:
        bodies = _names(spec.body_names if spec else None, poses.shape[1] // 7, "body")
        put("observation.object_poses", "float32", poses[si],
            tuple(f"{b}.{c}" for b in bodies for c in ("x", "y", "z", "qw", "qx", "qy", "qz")))
        if any(len(m.body_status) for m in state.messages):  # a tracker measured them: say which rows are fresh
            status = _stack(ep, STATE_TOPIC, state.messages, "body_status")
            put("observation.object_pose_fresh", "float32", (status[si] == 0).astype(np.float32), tuple(bodies))
    forces = _stack(ep, STATE_TOPIC, state.messages, "fingertip_force")
    if forces.shape[1]:
        tips = _names(spec.fingertip_names if spec else None, forces.shape[1] // 3, "tip")
        put("observation.fingertip_force", "float32", forces[si],
            tuple(f"{t}.{c}" for t in tips for c in ("fx", "fy", "fz")))

    # device streams
    for topic in sorted(ep.with_prefix("session/hand/")):
        s = _sorted(ep.streams[topic], lambda m: np.size(m.keypoints) > 0)
        if not s.messages:
            continue
        kp = _stack(ep, topic, s.messages, "keypoints")
        put(f"observation.hand_keypoints.{_key(topic[len('session/hand/'):])}", "float32", kp[hold_indices(s.t, t_k)],
            tuple(f"kp{i:02d}.{c}" for i in range(kp.shape[1] // 3) for c in ("x", "y", "z")))
    for topic in sorted(ep.with_prefix("session/pose/")):
        s = _sorted(ep.streams[topic])
        pose = np.concatenate(
            [_stack(ep, topic, s.messages, "position_m"), _stack(ep, topic, s.messages, "quat_wxyz")], 1)
        put(f"observation.wrist_pose.{_key(topic[len('session/pose/'):])}", "float32", pose[hold_indices(s.t, t_k)],
            ("x", "y", "z", "qw", "qx", "qy", "qz"))
    for topic in sorted(ep.with_prefix("session/tactile/")):
        s = _sorted(ep.streams[topic])
        dev = _key(topic[len("session/tactile/"):])
        ti = hold_indices(s.t, t_k)
        force = _stack(ep, topic, s.messages, "force_n")
        put(f"observation.tactile.{dev}.force", "float32", force[ti], ("fx", "fy", "fz"))
        disp = _stack(ep, topic, s.messages, "displacement_px")
        if disp.shape[1]:
            put(f"observation.tactile.{dev}.displacement", "float32", disp[ti],
                tuple(f"m{i}.{c}" for i in range(disp.shape[1] // 2) for c in ("dx", "dy")))

    # the executed command and who authored it
    ci = hold_indices(cmd.t, t_k)
    cq = _stack(ep, COMMAND_TOPIC, cmd.messages, "q")
    action_names = joint_names if cq.shape[1] == n else _names(None, cq.shape[1], "a")
    put("action", "float32", cq[ci], action_names)
    interv = np.array([bool(m.intervention) for m in cmd.messages])
    author = np.array([m.author for m in cmd.messages])
    # intervention -> 1; policy -> 0; other human commands -> 1 in an episode with a policy, else -1 (a demo);
    # "hold" (nobody drives) -> 0 with a policy, else -1
    has_policy = bool(np.any(author == "policy") or interv.any())
    other_human = ACTION_MODES["intervention"] if has_policy else ACTION_MODES["demo"]
    other_hold = ACTION_MODES["policy"] if has_policy else ACTION_MODES["demo"]
    mode = np.where(interv, ACTION_MODES["intervention"],
                    np.where(author == "policy", ACTION_MODES["policy"],
                             np.where(author == "human", other_human, other_hold)))
    m_int = cq.shape[1]
    pol = np.zeros((len(cmd.messages), m_int))
    for i, m in enumerate(cmd.messages):
        if np.size(m.policy_q) == m_int:
            pol[i] = m.policy_q
    flags = interv[ci]
    put("intervention", "bool", flags, None)
    put("complementary_info.is_intervention", "bool", flags, None)
    put("complementary_info.action_mode", "int64", mode[ci], None)
    put("complementary_info.policy_action", "float32", pol[ci], action_names)
    put("complementary_info.t_capture", "float64", (state.t[si] - start) / 1e9, None)

    times = np.arange(len(t_k)) / fps
    edges = np.diff(flags.astype(np.int8), prepend=np.int8(0))
    takeover = [float(times[i]) for i in np.flatnonzero(edges == 1)]
    ret = [float(times[i]) for i in np.flatnonzero(edges == -1)]

    return Resampled(path=ep.path, meta=ep.meta, fps=fps, t0_ns=start, t_ns=t_k, features=features, columns=columns,
                     videos=_video_tracks(ep, t_k), states=q[si], takeover_t=takeover, return_t=ret, log=ep.log)


def _video_tracks(ep: Episode, t_k: npt.NDArray[np.int64]) -> dict[str, VideoTrack]:
    out: dict[str, VideoTrack] = {}
    for name, v in sorted(ep.meta.get("videos", {}).items()):
        path = ep.path / v.get("file", f"video/{name}.mp4")
        topic = VIDEO_PREFIX + name
        if not path.is_file():
            raise ExportError(f"{path}: missing, but {ep.path / 'meta.json'} lists video {name!r}; restore the file, "
                              f"or move {ep.path.name} out of {ep.path.parent} before exporting")
        refs = ep.streams.get(topic)
        if refs is None or not len(refs):
            logger.warning("export: %s: no %s references in the log; video %s left out", ep.path, topic, name)
            continue
        frames, width, height = count_video_frames(path)
        s = _sorted(refs, _in_file(frames))
        if not s.messages:
            raise ExportError(f"{path}: none of the {len(refs)} logged frame references points into the file "
                              f"({frames} frames); the video is unusable, move {ep.path.name} out of the dataset")
        vidx = np.array([m.video_index for m in s.messages], dtype=np.int64)
        out[f"observation.images.{_key(name)}"] = VideoTrack(
            camera=name, path=path, width=width, height=height, frames=frames, indices=vidx[hold_indices(s.t, t_k)])
    return out


def _in_file(frames: int) -> Callable[[Any], bool]:
    return lambda m: 0 <= m.video_index < frames


def resample_path(path: str | Path, fps: int, *, velocity: bool = True) -> Resampled:
    return resample(load_episode(path), fps, velocity=velocity)


# -- video -----------------------------------------------------------------------------------------


def count_video_frames(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of an episode video (recorder.video.probe_video: right for a file
    whose writer was killed too)."""
    from recorder.video import probe_video

    info = probe_video(path)
    return info.frames, info.width, info.height


class _FrameSource:
    """Frames of one episode video by index (the index ``VideoWriter.write`` returned, read from
    the pts), read forward; a backward step reopens. An index the file lacks (a crashed writer
    can skip one) gives the latest frame before it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._it: Iterator[tuple[int, np.ndarray]] | None = None
        self._cur: tuple[int, np.ndarray] | None = None
        self._next: tuple[int, np.ndarray] | None = None

    def _reopen(self) -> None:
        from recorder.video import read_video

        self.close()
        self._it = iter(read_video(self.path))
        self._cur, self._next = None, next(self._it, None)

    def get(self, index: int) -> np.ndarray:
        if self._it is None or (self._cur is not None and index < self._cur[0]):
            self._reopen()
        assert self._it is not None
        while self._next is not None and self._next[0] <= index:
            self._cur, self._next = self._next, next(self._it, None)
        if self._cur is not None:
            return self._cur[1]
        if self._next is not None:  # before the first decodable frame: the first
            return self._next[1]
        raise ExportError(f"{self.path}: no decodable frame; the file is damaged, move its episode out of the dataset")

    def close(self) -> None:
        it, self._it = self._it, None
        if it is not None and hasattr(it, "close"):
            it.close()  # type: ignore[attr-defined]


def iter_track_frames(track: VideoTrack) -> Iterator[np.ndarray]:
    """One RGB image, Shape (H, W, 3) uint8, per exported frame (held frames repeat)."""
    src = _FrameSource(track.path)
    try:
        for idx in track.indices:
            yield src.get(int(idx))
    finally:
        src.close()
