"""``teleop lerobot-check``: our LeRobot export, loaded by the LeRobot installed beside us.

Records the demo (or takes a dataset or an export), exports it, and reads every frame back with
``LeRobotDataset`` (pyav backend, offline): each frame's indices, timestamp, state and action must
equal our parquet rows, each camera frame our own decode of the mp4, and LeRobot must log no
warning about the dataset (an unknown info.json key, a legacy field it rewrites). Run by
``make lerobot-check`` in a venv with the ``lerobot`` extra; never by ``make test`` (LeRobot
brings a torch of several GB).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from teleop.errors import TeleopError

__all__ = ["check_export", "run_lerobot_check"]

#: an image decoded by LeRobot (float in [0, 1]) against ours (uint8): the same decoder, so ~0;
#: 2/255 leaves room for a different swscale conversion path
_IMAGE_TOLERANCE = 2.0 / 255.0


class _Warnings(logging.Handler):
    """Every warning LeRobot logs while it opens and reads the dataset."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _import_lerobot() -> tuple[Any, str]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is on disk: never ask the Hub
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        import lerobot
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
    except ImportError as exc:
        raise TeleopError(f"LeRobot is not installed here ({exc}): run `make lerobot-check`, which makes a venv "
                          "with it, or pip install 'dexteleop[lerobot]' (Python 3.12 or newer)") from None
    return LeRobotDataset, getattr(lerobot, "__version__", "?")


def _our_frames(root: Path, key: str) -> dict[tuple[int, int], np.ndarray]:
    """Every frame of every mp4 of camera ``key``, decoded by PyAV: (chunk, file) -> (n, h, w, 3)."""
    import av

    out = {}
    for path in sorted((root / "videos" / key).glob("chunk-*/file-*.mp4")):
        chunk, file = int(path.parent.name.split("-")[1]), int(path.stem.split("-")[1])
        with av.open(str(path)) as c:
            out[(chunk, file)] = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    return out


def _parquet_files(folder: Path) -> Any:
    """All ``chunk-*/file-*.parquet`` of ``folder`` as one pandas frame, in file order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa.concat_tables([pq.read_table(p) for p in sorted(folder.glob("chunk-*/file-*.parquet"))]).to_pandas()


def _item_value(item: dict, key: str) -> np.ndarray:
    value = item[key]
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def check_export(root: str | Path, repo_id: str = "local/teleop_check") -> dict:
    """Load the export at ``root`` with LeRobotDataset and compare every frame with our files."""
    import json

    LeRobotDataset, version = _import_lerobot()
    root = Path(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    warnings = _Warnings()
    logging.getLogger().addHandler(warnings)
    t0 = time.perf_counter()
    try:
        ds = LeRobotDataset(repo_id, root=root, video_backend="pyav")
        load_s = time.perf_counter() - t0
        rows = _parquet_files(root / "data")
        episodes = _parquet_files(root / "meta" / "episodes")
        cameras = [k for k, f in info["features"].items() if f["dtype"] == "video"]
        ours = {k: _our_frames(root, k) for k in cameras}
        vectors = [k for k, f in info["features"].items()
                   if f["dtype"] in ("float32", "float64") and k != "timestamp"]
        problems: list[str] = []
        image_err, visited = 0.0, 0
        t1 = time.perf_counter()
        for i in range(len(ds)):
            item, row = ds[i], rows.iloc[i]
            ep = episodes.iloc[int(row["episode_index"])]
            for k in ("index", "episode_index", "frame_index", "task_index"):
                if int(_item_value(item, k)) != int(row[k]):
                    problems.append(f"frame {i}: {k} {int(_item_value(item, k))} != {int(row[k])}")
            if abs(float(_item_value(item, "timestamp")) - float(row["timestamp"])) > 1e-6:
                problems.append(f"frame {i}: timestamp {float(_item_value(item, 'timestamp'))} != {row['timestamp']}")
            for k in vectors:
                got, want = _item_value(item, k).reshape(-1), np.asarray(row[k], np.float64).reshape(-1)
                if got.shape != want.shape or not np.allclose(got, want, rtol=1e-6, atol=1e-6, equal_nan=True):
                    problems.append(f"frame {i}: {k} differs from the parquet row")
            for k in cameras:
                frames = ours[k][(int(ep[f"videos/{k}/chunk_index"]), int(ep[f"videos/{k}/file_index"]))]
                n = int(round((float(ep[f"videos/{k}/from_timestamp"]) + float(row["timestamp"])) * info["fps"]))
                img = _item_value(item, k)  # (3, h, w) float in [0, 1]
                err = float(np.abs(img.transpose(1, 2, 0) - frames[n] / 255.0).max())
                image_err = max(image_err, err)
                if err > _IMAGE_TOLERANCE:
                    problems.append(f"frame {i}: {k} is not video frame {n} (max difference {err:.3f})")
            visited += 1
            if len(problems) > 20:
                break
        read_s = time.perf_counter() - t1
    finally:
        logging.getLogger().removeHandler(warnings)
    ours_warned = [m for m in warnings.messages if "Unknown fields" in m or "legacy" in m.lower()
                   or "Migrating" in m]
    problems += [f"LeRobot warned: {m}" for m in ours_warned]
    return {
        "ok": not problems, "lerobot": version, "python": sys.version.split()[0], "root": str(root),
        "episodes": int(ds.num_episodes), "frames": len(ds), "frames_visited": visited,
        "cameras": cameras, "vectors": vectors, "max_image_difference": round(image_err, 5),
        "load_s": round(load_s, 2), "frames_per_s": round(visited / read_s, 1) if read_s else None,
        "lerobot_warnings": warnings.messages[:20], "problems": problems[:20],
    }


def run_lerobot_check(dataset: str | None = None, export: str | None = None, out: str | None = None,
                      codec: str = "h264") -> dict:
    """Record the demo (unless ``dataset`` or ``export`` is given), export it to LeRobot v3 and
    :func:`check_export` it. ``out`` keeps the files; by default they go to a temporary folder."""
    with contextlib.ExitStack() as stack:
        work = Path(out) if out else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lerobot-check-")))
        summary: dict[str, Any] = {}
        if export is None:
            if dataset is None:
                from teleop.demo import run_demo

                dataset = str(work / "episodes")
                demo = run_demo(dataset=dataset, status="quiet")
                if not demo["ok"] or not demo["episode"]:
                    raise TeleopError(f"the demo did not record a complete episode (faults: {demo['faults']})")
                summary["demo_episode"] = str(demo["episode"])
            from recorder.export import export_lerobot

            export = str(work / "lerobot")
            exported = export_lerobot(dataset, export, codec=codec, overwrite=True)
            summary["exported"] = {"episodes": exported.episodes, "frames": exported.frames, "codec": codec}
        summary.update(check_export(export))
        summary["kept"] = str(work) if out else None
        return summary
