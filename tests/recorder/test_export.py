"""teleop export: LeRobot v3.0 and robomimic HDF5 from real episode folders (tests/recorder/episode_factory.py),
checked with pyarrow, pandas, h5py and PyAV against the factory's ground truth."""

from __future__ import annotations

import json
from bisect import bisect_right
from fractions import Fraction
from pathlib import Path

import av
import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from episode_factory import Truth, frame_index_of, make_episode

from recorder.export import ExportError, export_hdf5, export_lerobot
from recorder.export.lerobot import INFO_KEYS
from teleop.cli import main
from teleop.errors import ConfigError

FPS = 30


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Truth]]:
    ds = tmp_path_factory.mktemp("export") / "ds"
    truths = [
        # a policy rollout with one human correction, a dropped camera frame and the robot on its own clock
        make_episode(ds, 0, seed=0, seconds=1.5, policy=True, interventions=((0.4, 0.7),), drop_frames=(4, 5),
                     clock_offset_ns=-12_345_678, tactile=("gel",), outcome="success", task="pick the bottle"),
        # a plain teleop demo, another task, a failure
        make_episode(ds, 1, seed=1, seconds=1.0, tactile=("gel",), outcome="failure", task="hand it over"),
    ]
    make_episode(ds, 2, seed=2, seconds=0.5, tactile=("gel",), status="recording")  # still open: skipped
    return ds, truths


@pytest.fixture(scope="module")
def lerobot(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lr") / "lerobot"
    summary = export_lerobot(dataset[0], out, fps=FPS)
    assert summary.episodes == 2 and len(summary.skipped) == 1
    return out


# -- the expectation, computed here from what the factory logged ----------------------------------


def _frame_times(t: Truth, fps: int) -> list[int]:
    start = max(int(t.t_state[0]), int(t.t_cmd[0]))
    end = min(int(t.t_state[-1]), int(t.t_cmd[-1]))
    n = (end - start) * fps // 10**9 + 1
    return [start + round(Fraction(k * 10**9, fps)) for k in range(n)]


def _hold(t_src: np.ndarray, t_k: list[int]) -> np.ndarray:
    src = [int(x) for x in t_src]
    return np.array([max(bisect_right(src, tk) - 1, 0) for tk in t_k])


def _expected_video_indices(t: Truth, camera: str, t_k: list[int]) -> np.ndarray:
    times, vidx = t.cameras[camera]
    ok = vidx >= 0
    return vidx[ok][_hold(times[ok], t_k)]


def _rows(out: Path) -> pd.DataFrame:
    return pq.read_table(out / "data/chunk-000/file-000.parquet").to_pandas()


def _episodes(out: Path) -> pd.DataFrame:
    return pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pandas()


# -- LeRobot --------------------------------------------------------------------------------------


def test_lerobot_rows_index_and_timestamps(dataset, lerobot):
    _, truths = dataset
    table = pq.read_table(lerobot / "data/chunk-000/file-000.parquet")
    lengths = [len(_frame_times(t, FPS)) for t in truths]
    assert table.num_rows == sum(lengths)
    assert str(table.schema.field("timestamp").type) == "float"
    assert str(table.schema.field("observation.state").type) == "fixed_size_list<element: float>[6]"
    df = table.to_pandas()
    np.testing.assert_array_equal(df["index"], np.arange(sum(lengths)))
    np.testing.assert_array_equal(df["episode_index"], np.repeat([0, 1], lengths))
    np.testing.assert_array_equal(df["frame_index"], np.concatenate([np.arange(n) for n in lengths]))
    ts = df["timestamp"].to_numpy()
    assert ts.dtype == np.float32
    np.testing.assert_array_equal(ts, (df["frame_index"].to_numpy() / FPS).astype(np.float32))
    np.testing.assert_array_equal(df["task_index"], np.repeat([0, 1], lengths))


def test_lerobot_values_are_the_zero_order_hold_of_the_log(dataset, lerobot):
    _, truths = dataset
    df = _rows(lerobot)
    for e, t in enumerate(truths):
        rows = df[df["episode_index"] == e]
        t_k = _frame_times(t, FPS)
        si, ci = _hold(t.t_state, t_k), _hold(t.t_cmd, t_k)
        np.testing.assert_array_equal(np.stack(rows["observation.state"]), t.q[si].astype(np.float32))
        np.testing.assert_array_equal(np.stack(rows["observation.velocity"]), t.dq[si].astype(np.float32))
        np.testing.assert_array_equal(np.stack(rows["action"]), t.cmd_q[ci].astype(np.float32))
        np.testing.assert_array_equal(np.stack(rows["observation.object_poses"]),
                                      t.body_pose[si].reshape(len(si), -1).astype(np.float32))
        np.testing.assert_allclose(rows["complementary_info.t_capture"], (t.t_state[si] - t_k[0]) / 1e9, rtol=0,
                                   atol=1e-12)
        # the state used is never newer than the frame time and at most one state period older
        age = rows["complementary_info.t_capture"].to_numpy() - np.arange(len(t_k)) / FPS
        assert age.max() <= 1e-9 and age.min() > -3e-3
        th, kp = t.hands["left_glove"]
        np.testing.assert_array_equal(np.stack(rows["observation.hand_keypoints.left_glove"]),
                                      kp[_hold(th, t_k)].reshape(len(t_k), 63).astype(np.float32))
        tp, pose = t.poses["left_tracker"]
        np.testing.assert_array_equal(np.stack(rows["observation.wrist_pose.left_tracker"]),
                                      pose[_hold(tp, t_k)].astype(np.float32))
        tt, force = t.tactile["gel"]
        np.testing.assert_array_equal(np.stack(rows["observation.tactile.gel.force"]),
                                      force[_hold(tt, t_k)].astype(np.float32))
        # intervention flags, action modes and the policy's proposal, per frame
        interv = t.intervention[ci]
        np.testing.assert_array_equal(rows["intervention"], interv)
        np.testing.assert_array_equal(rows["complementary_info.is_intervention"], interv)
        policy = e == 0
        want_mode = np.where(interv, 1, 0) if policy else np.full(len(t_k), -1)
        np.testing.assert_array_equal(rows["complementary_info.action_mode"], want_mode)
        np.testing.assert_array_equal(np.stack(rows["complementary_info.policy_action"]),
                                      t.policy_q[ci].astype(np.float32))
    first = df[df["episode_index"] == 0]
    assert first["intervention"].any() and not first["intervention"].all()
    assert not df[df["episode_index"] == 1]["intervention"].any()


def test_lerobot_video_has_one_frame_per_row_at_the_right_time(dataset, lerobot):
    _, truths = dataset
    eps = _episodes(lerobot)
    key = "observation.images.head"
    path = lerobot / f"videos/{key}/chunk-000/file-000.mp4"
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(stream)]
    assert len(frames) == sum(len(_frame_times(t, FPS)) for t in truths)
    for e, t in enumerate(truths):
        ep = eps[eps["episode_index"] == e].iloc[0]
        t_k = _frame_times(t, FPS)
        want = _expected_video_indices(t, "head", t_k)
        start = int(ep["dataset_from_index"])
        from_ts = float(ep[f"videos/{key}/from_timestamp"])
        assert float(ep[f"videos/{key}/to_timestamp"]) == pytest.approx(from_ts + len(t_k) / FPS)
        for k in range(len(t_k)):
            ts, img = frames[start + k]
            assert abs(ts - (from_ts + k / FPS)) < 1e-4
            assert frame_index_of(img) == want[k], f"episode {e} frame {k}"
    # the dropped frames are held over: the frame before them shows twice as long
    assert np.any(np.diff(_expected_video_indices(truths[0], "head", _frame_times(truths[0], FPS))) == 0)


def test_lerobot_meta_files_agree(dataset, lerobot):
    _, truths = dataset
    lengths = [len(_frame_times(t, FPS)) for t in truths]
    info = json.loads((lerobot / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["fps"] == FPS and isinstance(info["fps"], int)
    assert info["total_frames"] == sum(lengths) and info["total_episodes"] == 2 and info["total_tasks"] == 2
    assert info["splits"] == {"train": "0:2"}
    feats = info["features"]
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index", "observation.state", "action",
                 "intervention", "complementary_info.is_intervention", "complementary_info.action_mode",
                 "complementary_info.policy_action", "complementary_info.t_capture", "observation.images.head",
                 "observation.hand_keypoints.left_glove",
                 "observation.wrist_pose.left_tracker", "observation.tactile.gel.force",
                 "observation.tactile.gel.displacement", "observation.object_poses", "observation.fingertip_force"):
        assert name in feats, name
    assert all("/" not in name for name in feats)
    assert feats["observation.state"]["names"] == list(truths[0].joint_names)
    assert feats["observation.object_poses"]["names"][:4] == ["bottle.x", "bottle.y", "bottle.z", "bottle.qw"]
    assert feats["intervention"] == {"dtype": "bool", "shape": [1], "names": None}
    assert feats["timestamp"]["dtype"] == "float32"
    video = feats["observation.images.head"]
    assert video["dtype"] == "video" and video["shape"] == [48, 64, 3]
    assert video["info"]["video.codec"] == "h264" and video["info"]["video.fps"] == FPS
    # as LeRobot 0.6 writes it: is_depth_map (not the legacy video.is_depth_map), the encoder settings
    assert video["info"]["is_depth_map"] is False and "video.is_depth_map" not in video["info"]
    assert {k: video["info"][k] for k in ("video.g", "video.crf", "video.preset", "video.fast_decode")} == \
        {"video.g": 2, "video.crf": 23, "video.preset": "veryfast", "video.fast_decode": 0}
    assert set(info) <= set(INFO_KEYS)

    tasks = pd.read_parquet(lerobot / "meta/tasks.parquet")
    assert list(tasks.index) == ["pick the bottle", "hand it over"]
    assert list(tasks["task_index"]) == [0, 1]
    assert pq.read_schema(lerobot / "meta/tasks.parquet").names == ["task_index", "task"]  # 0.6's index name

    eps = _episodes(lerobot)
    assert list(eps["length"]) == lengths
    assert list(eps["dataset_from_index"]) == [0, lengths[0]]
    assert list(eps["dataset_to_index"]) == [lengths[0], sum(lengths)]
    assert [list(x) for x in eps["tasks"]] == [["pick the bottle"], ["hand it over"]]
    assert list(eps["videos/observation.images.head/from_timestamp"]) == [0.0, lengths[0] / FPS]
    assert list(eps["data/file_index"]) == [0, 0]
    assert list(eps["source_episode"]) == ["episode_000000", "episode_000001"]
    assert len(eps["takeover_t"].iloc[0]) == 1 and len(eps["return_t"].iloc[0]) == 1

    stats = json.loads((lerobot / "meta/stats.json").read_text())
    assert set(stats) == set(feats)
    for name, st in stats.items():
        assert set(st) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}, name
    assert stats["index"]["count"] == [sum(lengths)] and stats["index"]["max"] == [sum(lengths) - 1]
    img = np.array(stats["observation.images.head"]["mean"])
    assert img.shape == (3, 1, 1) and 0 <= img.min() and img.max() <= 1
    q = np.stack(_rows(lerobot)["observation.state"]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], q.mean(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(stats["observation.state"]["std"], q.std(0), rtol=1e-6, atol=1e-9)
    assert "stats/observation.state/mean" in eps.columns


def test_lerobot_only_success_and_av1(dataset, tmp_path):
    out = tmp_path / "ok"
    s = export_lerobot(dataset[0], out, fps=15, codec="av1", only_success=True)
    assert s.episodes == 1 and {Path(x["episode"]).name for x in s.skipped} == {"episode_000001", "episode_000002"}
    info = json.loads((out / "meta/info.json").read_text())
    assert info["features"]["observation.images.head"]["info"]["video.codec"] == "av1"
    assert info["features"]["observation.images.head"]["info"]["video.preset"] == 12
    with av.open(str(out / "videos/observation.images.head/chunk-000/file-000.mp4")) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert n == info["total_frames"] == len(_frame_times(dataset[1][0], 15))


# -- HDF5 -----------------------------------------------------------------------------------------


def test_hdf5_round_trip(dataset, tmp_path):
    _, truths = dataset
    out = tmp_path / "demo.hdf5"
    s = export_hdf5(dataset[0], out, fps=FPS)
    assert s.episodes == 2
    with h5py.File(out, "r") as f:
        data = f["data"]
        lengths = [len(_frame_times(t, FPS)) for t in truths]
        assert data.attrs["total"] == sum(lengths)
        env = json.loads(data.attrs["env_args"])
        assert env["env_name"] == "testbot" and "env_kwargs" in env
        assert list(data.attrs["joint_names"]) == list(truths[0].joint_names) and data.attrs["fps"] == FPS
        assert [x.decode() for x in f["mask/train"][:]] == ["demo_0", "demo_1"]
        assert [x.decode() for x in f["mask/success"][:]] == ["demo_0"]
        for e, t in enumerate(truths):
            g = data[f"demo_{e}"]
            n = lengths[e]
            t_k = _frame_times(t, FPS)
            si, ci = _hold(t.t_state, t_k), _hold(t.t_cmd, t_k)
            assert g.attrs["num_samples"] == n
            assert g["actions"].shape == (n, 6) and g["actions"].dtype == np.float32
            np.testing.assert_array_equal(g["actions"][:], t.cmd_q[ci].astype(np.float32))
            np.testing.assert_array_equal(g["obs/state"][:], t.q[si].astype(np.float32))
            np.testing.assert_array_equal(g["next_obs/state"][:-1], g["obs/state"][1:])
            np.testing.assert_array_equal(g["next_obs/state"][-1], g["obs/state"][-1])
            np.testing.assert_array_equal(g["states"][:], t.q[si])
            np.testing.assert_array_equal(g["intervention"][:], t.intervention[ci])
            assert g["dones"][:].tolist() == [0] * (n - 1) + [1]
            assert g["rewards"][-1] == (1.0 if e == 0 else 0.0) and g["rewards"][:-1].sum() == 0
            imgs = g["obs/head_image"]
            assert imgs.shape == (n, 48, 64, 3) and imgs.dtype == np.uint8
            want = _expected_video_indices(t, "head", t_k)
            assert [frame_index_of(im) for im in imgs[:]] == want.tolist()
        assert data["demo_0"]["action_modes"][:].min() == 0 and data["demo_0"]["action_modes"][:].max() == 1
        assert set(data["demo_1"]["action_modes"][:].tolist()) == {-1}


# -- errors and the CLI ---------------------------------------------------------------------------


def test_empty_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="no episode folders"):
        export_lerobot(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ExportError, match="no such dataset folder"):
        export_hdf5(tmp_path / "nowhere", tmp_path / "out.hdf5")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fps", [0, -5, 2.5, float("nan")])
def test_bad_fps_is_a_config_error(dataset, tmp_path, fps):
    with pytest.raises(ConfigError, match="whole number"):
        export_lerobot(dataset[0], tmp_path / "out", fps=fps)


def test_missing_video_names_the_file_and_leaves_nothing_behind(tmp_path):
    ds = tmp_path / "ds"
    make_episode(ds, 0, seconds=0.5)
    video = ds / "episode_000000/video/head.mp4"
    video.unlink()
    with pytest.raises(ExportError, match="head.mp4: missing") as err:
        export_lerobot(ds, tmp_path / "out")
    assert "restore the file" in str(err.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_episodes_with_different_features_are_refused(tmp_path):
    ds = tmp_path / "ds"
    make_episode(ds, 0, seconds=0.4)
    make_episode(ds, 1, seconds=0.4, seed=1, tactile=("gel",))
    with pytest.raises(ExportError, match="episode_000001: its features differ.*observation.tactile.gel.force"):
        export_lerobot(ds, tmp_path / "out")
    with pytest.raises(ExportError, match="episode_000001: its features differ"):
        export_hdf5(ds, tmp_path / "out.hdf5")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.hdf5").exists()


def test_cli_prints_a_json_summary_and_errors_clearly(dataset, tmp_path, capsys):
    out = tmp_path / "cli.hdf5"
    assert main(["export", str(dataset[0]), "--format", "hdf5", "--out", str(out), "--fps", "10"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["episodes"] == 2 and summary["format"] == "hdf5" and summary["out"] == str(out)
    assert summary["frames"] > 0 and "seconds" in summary
    assert "episode_000000" in captured.err and "skip episode_000002" in captured.err
    # an existing output is not overwritten by accident
    assert main(["export", str(dataset[0]), "--format", "hdf5", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(dataset[0]), "--format", "lerobot", "--out", str(tmp_path / "x"), "--fps", "0"]) == 2
    assert "--fps 0" in capsys.readouterr().err
