"""Video batches (retarget/video_batch.py, retarget/video_cluster.py) on real Dask clusters and
clips of the real hand video: two local worker processes through the CLI, a cluster by address
with a worker killed mid-video, resuming, and a failing video that costs only itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support.hands import HAND_VIDEO, require_hand_models, write_clip

from teleop.errors import TeleopError

CLIP_FRAMES = 40


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two clips with a hand, one video with none, one file that is no video."""
    require_hand_models()
    if not HAND_VIDEO.is_file():
        pytest.skip(f"{HAND_VIDEO} not present")
    from recorder.video import VideoWriter

    root = tmp_path_factory.mktemp("clips")
    a = write_clip(root / "a.mp4", 0, CLIP_FRAMES)
    b = write_clip(root / "b.mp4", 300, CLIP_FRAMES)
    empty = root / "empty_room.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(empty, 160, 120, 30.0, preset="ultrafast", queue_frames=20) as w:
        for i in range(10):
            w.write(rng.integers(90, 110, (120, 160, 3), dtype=np.uint8), i / 30)
    broken = root / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 16)
    return {"a": a, "b": b, "empty": empty, "broken": broken}


def _cli(*args: str) -> tuple[int, dict]:
    res = subprocess.run([sys.executable, "-m", "teleop.cli", "retarget", "video", *args, "--json"],
                         capture_output=True, text=True, timeout=240)
    assert res.stdout.strip(), res.stderr[-3000:]
    return res.returncode, json.loads(res.stdout)


def _ledger(ds: Path) -> list[dict]:
    return [json.loads(line) for line in (ds / "video_jobs.jsonl").read_text().splitlines()]


def test_two_local_workers_finish_every_good_video_and_a_rerun_skips_them(clips, tmp_path):
    ds = tmp_path / "ds"
    videos = [str(clips[k]) for k in ("a", "broken", "empty", "b")]
    rc, summary = _cli(*videos, "--dataset", str(ds), "--workers", "2")
    assert rc == 1  # a failure and a video without hands are not success
    assert summary["cluster"] == "dask local, 2 workers" and summary["workers"] == 2
    by = {Path(r["video"]).name: r for r in summary["videos"]}
    assert [Path(r["video"]).name for r in summary["videos"]] == [Path(v).name for v in videos]  # input order
    assert by["a.mp4"]["status"] == by["b.mp4"]["status"] == "complete"
    assert by["a.mp4"]["hands"]["right"] >= 0.95 * CLIP_FRAMES and by["a.mp4"]["frames"] == CLIP_FRAMES
    assert by["empty_room.mp4"]["status"] == "no_hands" and by["empty_room.mp4"]["episode"] is None
    assert by["broken.mp4"]["status"] == "failed" and "not a video OpenCV can decode" in by["broken.mp4"]["error"]
    assert by["a.mp4"]["pid"] != os.getpid() and by["a.mp4"]["pid"] > 0  # ran in a worker process
    from recorder.episode import list_episodes, read_meta

    eps = list_episodes(ds)
    assert sorted(e.index for e in eps) == [0, 1] and all(e.status == "complete" for e in eps)
    sources = {Path(read_meta(Path(e.path))["source"]["path"]).name for e in eps}
    assert sources == {"a.mp4", "b.mp4"}
    assert {Path(e["path"]).name for e in json.loads((ds / "index.json").read_text())["episodes"]} == \
        {"episode_000000", "episode_000001"}
    assert len(_ledger(ds)) == 4 and not list(ds.glob(".incoming_*"))

    rc, again = _cli(*videos, "--dataset", str(ds), "--workers", "2")  # resume: only the failed one again
    assert rc == 1 and again["skipped"] == 3 and again["failed"] == 1 and again["complete"] == 0
    assert again["cluster"] == "in-process" and again["frames"] == 0  # one video left: no cluster started
    assert len(list_episodes(ds)) == 2 and len(_ledger(ds)) == 5


def test_a_cluster_by_address_survives_a_killed_worker_and_resumes_from_the_episodes(clips, tmp_path):
    from distributed import Client, LocalCluster

    from retarget.video_batch import run_batch

    ds = tmp_path / "ds"
    frames: dict[str, list[int]] = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", scheduler_port=0,
                      dashboard_address=None, scheduler_kwargs={"dashboard": False}) as cluster:
        with Client(cluster) as client:
            pids = client.run(os.getpid)
        killed = threading.Event()

        def on_frames(video: str, done: int) -> None:
            frames.setdefault(Path(video).name, []).append(done)
            if not killed.is_set():  # a worker dies mid-video: its video goes to another worker
                killed.set()
                os.kill(next(iter(pids.values())), signal.SIGKILL)

        t0 = time.monotonic()
        summary = run_batch([clips["a"], clips["b"]], None, ds, address=cluster.scheduler_address,
                            progress=False, on_frames=on_frames)
        assert killed.is_set()
        assert summary["complete"] == 2, [(r["status"], r.get("error")) for r in summary["videos"]]
        assert next(iter(pids.values())) not in {r["pid"] for r in summary["videos"]}  # its video ran elsewhere
        assert summary["cluster"] == f"dask {cluster.scheduler_address}"
        assert all(seq[-1] == CLIP_FRAMES for seq in frames.values()) and set(frames) == {"a.mp4", "b.mp4"}
        assert not list(ds.glob(".incoming_*"))  # the dead worker's build folder was swept
        assert time.monotonic() - t0 < 120

        (ds / "video_jobs.jsonl").unlink()  # the ledger lost: the episodes themselves say what is done
        again = run_batch([clips["a"], clips["b"]], None, ds, address=cluster.scheduler_address, progress=False)
        assert again["skipped"] == 2 and again["complete"] == 0
        assert {Path(r["episode"]).name for r in again["videos"]} == {"episode_000000", "episode_000001"}


def test_an_absent_scheduler_and_a_worker_without_models_are_said_clearly(tmp_path, monkeypatch, clips):
    from support.ports import free_port_base

    from retarget.video_batch import run_batch
    from retarget.video_cluster import _worker_report

    t0 = time.monotonic()
    with pytest.raises(TeleopError, match="no Dask scheduler answers at tcp://127.0.0.1:.*dask scheduler"):
        run_batch([clips["a"], clips["b"]], None, tmp_path / "ds", address=f"tcp://127.0.0.1:{free_port_base(1)}")
    assert time.monotonic() - t0 < 10
    monkeypatch.setenv("TELEOP_MODELS_DIR", str(tmp_path / "no_models"))
    assert "run `teleop models fetch` there" in _worker_report(str(tmp_path))
    monkeypatch.delenv("TELEOP_MODELS_DIR")
    assert _worker_report(str(tmp_path)) == ""


def test_only_dead_processes_build_folders_are_swept_and_a_torn_ledger_line_is_passed_over(tmp_path):
    import socket

    from retarget.video_batch import _read_ledger
    from retarget.video_episode import INCOMING, sweep_incoming

    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    for name in (f"{host}_{dead.pid}_1_a", f"{host}_{os.getpid()}_2_b", f"otherhost_{dead.pid}_3_c"):
        (tmp_path / f"{INCOMING}{name}").mkdir()
    assert sweep_incoming(tmp_path) == [f"{INCOMING}{host}_{dead.pid}_1_a"]
    assert len(list(tmp_path.glob(f"{INCOMING}*"))) == 2
    (tmp_path / "video_jobs.jsonl").write_text('{"path": "/v.mp4", "status": "complete"}\n{"path": "/w.mp4", "sta')
    assert _read_ledger(tmp_path) == [{"path": "/v.mp4", "status": "complete"}]


def test_folders_and_lists_of_videos(tmp_path, capsys):
    from retarget.video_batch import expand_inputs
    from teleop.cli import main
    from teleop.errors import ConfigError

    (tmp_path / "day1" / "cam").mkdir(parents=True)
    for name in ("day1/b.mp4", "day1/cam/a.MOV", "day1/notes.txt"):
        (tmp_path / name).write_bytes(b"not really")
    assert expand_inputs([tmp_path / "day1"]) == [tmp_path / "day1" / "b.mp4", tmp_path / "day1" / "cam" / "a.MOV"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="a folder with no video files"):
        expand_inputs([tmp_path / "empty"])
    listing = tmp_path / "videos.txt"
    listing.write_text(f"# to convert\n{tmp_path / 'day1' / 'b.mp4'}\n\n")
    assert main(["retarget", "video", "--from-list", str(listing), "--dataset", str(tmp_path / "ds")]) == 1
    out = capsys.readouterr().out
    assert "b.mp4: FAILED: video" in out and "1 video: 0 complete, 0 skipped, 0 without hands, 1 failed" in out
