"""``teleop export --format hdf5``: one robomimic-style HDF5 file (the layout robomimic reads).

::

    data                      attrs: total, env_args (JSON), fps, joint_names, tasks, format
    data/demo_<i>             attrs: num_samples, task, outcome, operator, source_episode,
                                     source_start_ns, takeover_t, return_t (seconds, frame times)
      actions      (N, n)     float32, the executed command
      states       (N, n)     float64, robot joint positions (no simulator state exists)
      rewards      (N,)       float32, 0; 1 on the last step of a success episode
      dones        (N,)       uint8, 1 on the last step
      action_modes (N,)       int64, -1 demo / 0 policy / 1 human intervention (Sirius codes)
      intervention (N,)       bool
      policy_actions (N, n)   float32, the policy's proposal during an intervention, else 0
      timestamps   (N,)       float64, frame_index / fps
      t_capture    (N,)       float64, capture time of the robot state used (s since frame 0)
      obs/<key>, next_obs/<key>   low-dim float32, images uint8 (N, H, W, 3)
    mask/train                byte strings: every demo; mask/success: the success demos

Frames are the same resampled frames as the LeRobot export (recorder/export/common.py).
``obs`` keys are the LeRobot feature names without ``observation.`` (``state``,
``hand_keypoints.left_glove``, ...), and ``<camera>_image`` for cameras. ``next_obs`` is ``obs``
shifted by one step, the last step repeated. ``--append`` adds ``demo_<n>`` ... to a copy of an
existing file (same layout, else refused) that then replaces it.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from recorder.export.common import (
    BOOKKEEPING,
    EpisodeSkipped,
    ExportError,
    ExportSummary,
    Feature,
    Progress,
    Resampled,
    check_fps,
    finish_out,
    iter_track_frames,
    note_damage,
    prepare_out,
    resample_path,
    select_episodes,
)
from teleop.errors import ConfigError

__all__ = ["export_hdf5", "obs_key"]

#: features stored outside ``obs`` (as actions, flags, capture times) rather than as observations
_NOT_OBS = ("action", *BOOKKEEPING)


def obs_key(feature: str) -> str:
    """The robomimic ``obs`` key of a feature (``observation.state`` -> ``state``)."""
    if feature.startswith("observation.images."):
        return feature[len("observation.images."):] + "_image"
    return feature[len("observation."):] if feature.startswith("observation.") else feature


def _next(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[1:], x[-1:]], axis=0) if len(x) else x


def _obs(r: Resampled) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, feat in r.features.items():
        if name in _NOT_OBS:
            continue
        v = r.columns[name]
        out[obs_key(name)] = v.astype(np.float64 if feat.dtype == "float64" else np.float32)
    for key, track in r.videos.items():
        imgs = np.empty((r.length, track.height, track.width, 3), np.uint8)
        for k, rgb in enumerate(iter_track_frames(track)):
            imgs[k] = rgb
        out[obs_key(key)] = imgs
    return out


def _write_obs(group: Any, name: str, obs: dict[str, np.ndarray]) -> None:
    g = group.create_group(name)
    for key, v in obs.items():
        if v.dtype == np.uint8 and v.ndim == 4:
            g.create_dataset(key, data=v, chunks=(1,) + v.shape[1:], compression="lzf")
        else:
            g.create_dataset(key, data=v)


def _layout(r: Resampled) -> dict[str, tuple[str, tuple[int, ...]]]:
    """What one step of each per-step dataset of a demo of ``r`` is: dtype and shape."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {"actions": ("float32", r.features["action"].shape)}
    for name, feat in r.features.items():
        if name not in _NOT_OBS:
            out[f"obs/{obs_key(name)}"] = ("float64" if feat.dtype == "float64" else "float32", feat.shape)
    for key, track in r.videos.items():
        out[f"obs/{obs_key(key)}"] = ("uint8", (track.height, track.width, 3))
    return out


def _file_layout(g: Any) -> dict[str, tuple[str, tuple[int, ...]]]:
    out = {"actions": (str(g["actions"].dtype), tuple(g["actions"].shape[1:]))}
    for key, d in g["obs"].items():
        out[f"obs/{key}"] = (str(d.dtype), tuple(d.shape[1:]))
    return out


def _differ(have: dict[str, Any], want: dict[str, Any]) -> str:
    parts = [f"missing {sorted(set(want) - set(have))}"] if set(want) - set(have) else []
    parts += [f"extra {sorted(set(have) - set(want))}"] if set(have) - set(want) else []
    parts += [f"{k} is {have[k][0]}{list(have[k][1])}, not {want[k][0]}{list(want[k][1])}"
              for k in sorted(set(have) & set(want)) if have[k] != want[k]]
    return "; ".join(parts)


def _demo_names(data: Any) -> list[str]:
    return sorted((k for k in data if k.startswith("demo_") and k[5:].isdigit()), key=lambda k: int(k[5:]))


def export_hdf5(dataset: str | Path, out: str | Path, *, fps: float = 30, only_success: bool = False,
                overwrite: bool = False, velocity: bool = True, skip_damaged: bool = False,
                skip_degraded: bool = False, episodes: str | None = None, include_discarded: bool = False,
                append: bool = False, progress: Progress | None = None) -> ExportSummary:
    """Export the complete/recovered episodes of ``dataset`` (``episodes``: a ``--episodes``
    selection) to one robomimic-style HDF5 file (an episode with a damaged log from every intact
    record, or not at all with ``skip_damaged``; a degraded one with a warning, or not at all with
    ``skip_degraded``). ``append``: add the episodes ``out`` does not hold yet, as the next demos
    of a copy of it that replaces it when complete."""
    import h5py

    t_start = time.monotonic()
    fps_i = check_fps(fps)
    if append and overwrite:
        raise ConfigError("--append adds to --out and --overwrite replaces it: give one of them")
    out = Path(out)
    appending = append and out.exists()
    held: set[tuple[str, int | None]] = set()
    layout: dict[str, tuple[str, tuple[int, ...]]] | None = None
    n_before = frames_before = 0
    if appending:
        try:
            with h5py.File(out, "r") as f:
                data = f["data"]
                if int(data.attrs.get("fps", -1)) != fps_i:
                    raise ExportError(f"--append: {out} was exported at {data.attrs.get('fps')} fps; append with "
                                      f"--fps {data.attrs.get('fps')}")
                names = _demo_names(data)
                for name in names:
                    a = data[name].attrs
                    start = int(a["source_start_ns"]) if "source_start_ns" in a else None
                    held.add((str(a.get("source_episode", "")), start or None))
                if names:
                    layout = _file_layout(data[names[0]])
                n_before, frames_before = len(names), int(data.attrs.get("total", 0))
        except (OSError, KeyError) as exc:
            raise ExportError(f"--append: {out} is not an HDF5 export this exporter can add to ({exc}); choose "
                              "another --out, or --overwrite to replace it") from None
    degraded: list[dict[str, Any]] = []
    chosen, skipped = select_episodes(dataset, only_success=only_success, episodes=episodes,
                                      include_discarded=include_discarded, skip_degraded=skip_degraded,
                                      degraded=degraded, progress=progress)
    if appending:
        from recorder.episode import read_meta

        keep = []
        for e in chosen:
            start = read_meta(Path(e.path)).get("start_ns")
            name = Path(e.path).name
            if (name, int(start) if start else None) in held or (name, None) in held:
                skipped.append({"episode": e.path, "reason": f"already in {out}"})
                if progress:
                    progress(f"skip {name}: already in {out}")
            else:
                keep.append(e)
        chosen = keep
        if not chosen:
            if progress:
                progress(f"{out} already holds every selected episode; nothing appended")
            return ExportSummary("hdf5", str(out), 0, 0, fps_i, time.monotonic() - t_start, skipped, [], [],
                                 degraded, True, n_before, frames_before)
    tmp = prepare_out(out, overwrite or appending)
    exported: list[dict[str, Any]] = []
    damaged: list[dict[str, Any]] = []
    total = frames_before
    schema: dict[str, Feature] | None = None
    joint_names: list[str] = []
    tasks: list[str] = []
    robot = ""
    success: list[str] = []
    try:
        if appending:
            shutil.copy2(out, tmp)  # the original stays whole until the copy replaces it
        with h5py.File(tmp, "a" if appending else "w") as f:
            data = f["data"] if appending else f.create_group("data")
            if appending:
                joint_names = [str(x) for x in data.attrs.get("joint_names", [])]
                tasks = [str(x) for x in data.attrs.get("tasks", [])]
                robot = json.loads(data.attrs.get("env_args", "{}")).get("env_kwargs", {}).get("robot", "")
                success = [x.decode() for x in f["mask/success"][:]] if "mask/success" in f else []
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
                if layout is not None and (why := _differ(_layout(r), layout)):
                    raise ExportError(f"{r.path}: its features differ from those of the existing export {out} "
                                      f"({why}); one file needs one feature set: export it to a new --out")
                feats = {k: (f.dtype, f.shape) for k, f in r.all_features().items()}
                if schema is None:
                    schema = r.all_features()
                    if not appending:
                        joint_names = list(r.features["observation.state"].names or ())
                        robot = str(r.meta.get("robot") or "")
                elif feats != {k: (f.dtype, f.shape) for k, f in schema.items()}:
                    raise ExportError(f"{r.path}: its features differ from the first exported episode's "
                                      f"({sorted(set(feats) ^ set(schema)) or 'shapes'}); one file needs one feature "
                                      "set: export these episodes into separate files")
                name = f"demo_{n_before + len(exported)}"
                g = data.create_group(name)
                length = r.length
                g.attrs["num_samples"] = length
                g.attrs["task"] = r.task
                g.attrs["outcome"] = r.outcome
                g.attrs["operator"] = str(r.meta.get("operator") or "")
                g.attrs["source_episode"] = Path(summary.path).name
                g.attrs["source_start_ns"] = int(r.meta.get("start_ns") or 0)
                g.attrs["takeover_t"] = np.asarray(r.takeover_t, np.float64)
                g.attrs["return_t"] = np.asarray(r.return_t, np.float64)
                g.create_dataset("actions", data=r.columns["action"].astype(np.float32))
                g.create_dataset("states", data=r.states)
                rewards = np.zeros(length, np.float32)
                dones = np.zeros(length, np.uint8)
                if length:
                    dones[-1] = 1
                    if r.outcome == "success":
                        rewards[-1] = 1.0
                g.create_dataset("rewards", data=rewards)
                g.create_dataset("dones", data=dones)
                g.create_dataset("action_modes",
                                 data=r.columns["complementary_info.action_mode"].reshape(-1).astype(np.int64))
                g.create_dataset("intervention", data=r.columns["intervention"].reshape(-1).astype(bool))
                g.create_dataset("policy_actions",
                                 data=r.columns["complementary_info.policy_action"].astype(np.float32))
                g.create_dataset("timestamps", data=np.arange(length) / fps_i)
                g.create_dataset("t_capture", data=r.columns["complementary_info.t_capture"].reshape(-1))
                obs = _obs(r)
                _write_obs(g, "obs", obs)
                _write_obs(g, "next_obs", {k: _next(v) for k, v in obs.items()})
                if r.task not in tasks:
                    tasks.append(r.task)
                if r.outcome == "success":
                    success.append(name)
                total += length
                exported.append({"episode": summary.path, "demo": name, "frames": length})
                if progress:
                    progress(f"[{n + 1}/{len(chosen)}] {Path(summary.path).name} -> {name}: {length} frames, "
                             f"{len(r.videos)} videos, {time.monotonic() - t_ep:.1f} s")
            if not exported:
                why = "; ".join(f"{Path(s['episode']).name}: {s['reason']}" for s in skipped[:5])
                raise ExportError(f"{dataset}: no episode had anything to export ({why})")
            data.attrs["total"] = total
            data.attrs["env_args"] = json.dumps({
                # robomimic reads "type" (EnvType; no robomimic env matches real teleop data, so null)
                "env_name": robot or "teleop", "type": None, "env_type": "teleop",
                "env_kwargs": {"fps": fps_i, "joint_names": joint_names, "robot": robot},
            })
            data.attrs["fps"] = fps_i
            data.attrs["joint_names"] = np.array(joint_names, dtype=h5py.string_dtype())
            data.attrs["tasks"] = np.array(tasks, dtype=h5py.string_dtype())
            data.attrs["format"] = "teleop-robomimic/1"
            if "mask" in f:
                del f["mask"]
            mask = f.create_group("mask")
            mask.create_dataset("train", data=np.array(_demo_names(data), dtype="S"))
            mask.create_dataset("success", data=np.array(success, dtype="S") if success else np.zeros(0, "S1"))
        finish_out(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportSummary("hdf5", str(out), len(exported), total - frames_before, fps_i, time.monotonic() - t_start,
                         skipped, exported, damaged, degraded, appending, n_before + len(exported), total)
