"""teleop export: --episodes selections, --append to LeRobot and HDF5 exports, degraded and
discarded episodes, and feature names as LeRobot reads them; on real episode folders
(tests/recorder/episode_factory.py)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from episode_factory import make_episode

from recorder.episode import discard_episode, read_meta, write_meta
from recorder.export import ExportError, export_hdf5, export_lerobot
from recorder.export.common import parse_selection
from teleop.cli import main
from teleop.errors import ConfigError

FPS = 20


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = tmp_path_factory.mktemp("sel") / "ds"
    make_episode(ds, 0, seed=0, seconds=0.5, policy=True, interventions=((0.1, 0.3),), task="pick")
    make_episode(ds, 1, seed=1, seconds=0.4, task="place", outcome="failure")
    make_episode(ds, 2, seed=2, seconds=0.4, task="pick")
    return ds


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _lerobot_policy_features(features: dict) -> dict[str, str]:
    """LeRobot's own reading of feature names (lerobot.datasets.utils.dataset_to_policy_features):
    videos are visual inputs, observation.* state inputs, action* outputs, the rest ignored."""
    out = {}
    for key, ft in features.items():
        if ft["dtype"] in ("image", "video"):
            out[key] = "VISUAL"
        elif key == "observation.environment_state":
            out[key] = "ENV"
        elif key.startswith("observation"):
            out[key] = "STATE"
        elif key.startswith("action"):
            out[key] = "ACTION"
    return out


def test_bookkeeping_is_neither_a_policy_input_nor_an_output(dataset, tmp_path):
    out = tmp_path / "lr"
    export_lerobot(dataset, out, fps=FPS, episodes="0")
    feats = json.loads((out / "meta/info.json").read_text())["features"]
    kinds = _lerobot_policy_features(feats)
    assert [k for k, v in kinds.items() if v == "ACTION"] == ["action"]
    inputs = {k for k, v in kinds.items() if v == "STATE"}
    assert not any("t_capture" in k or "mode" in k or "intervention" in k for k in inputs), inputs
    for key in ("complementary_info.t_capture", "complementary_info.action_mode", "complementary_info.policy_action",
                "complementary_info.is_intervention", "intervention"):
        assert key in feats and key not in kinds, key
    assert "action_mode" not in feats and "policy_action" not in feats and "observation.t_capture" not in feats


@pytest.mark.parametrize(("spec", "want"), [("0:2", [0, 1]), ("2", [2]), ("0,2", [0, 2]), ("1:", [1, 2]),
                                            (":1", [0]), (" 0:1 , 2 ", [0, 2]), ("0:3,1", [0, 1, 2])])
def test_selection_takes_indices_and_half_open_ranges(spec, want):
    assert parse_selection(spec, [0, 1, 2]) == want


@pytest.mark.parametrize(("spec", "says"), [("", "empty"), ("a", "not an episode number"), ("1-3", "not an episode"),
                                            ("0:2:1", "not an episode"), ("-1", "not an episode"), (",", "not an"),
                                            ("5", "no episode 5 (the dataset has 0..2)"), ("2:2", "empty range"),
                                            ("0:10", "goes past the last episode"), ("3:", "goes past")])
def test_bad_selections_say_what_is_wrong(spec, says):
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_selection(spec, [0, 1, 2])


def test_cli_selection_exports_only_those_and_refuses_bad_ones(dataset, tmp_path, capsys):
    out = tmp_path / "sel.hdf5"
    assert main(["export", str(dataset), "--format", "hdf5", "--out", str(out), "--fps", str(FPS), "--episodes",
                 "1:3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [Path(e["episode"]).name for e in summary["exported_episodes"]] == ["episode_000001", "episode_000002"]
    assert main(["export", str(dataset), "--format", "lerobot", "--out", str(tmp_path / "x"), "--episodes",
                 "0:9"]) == 2
    err = capsys.readouterr().err
    assert "--episodes '0:9'" in err and "0..2" in err and not (tmp_path / "x").exists()


def test_lerobot_append_adds_only_new_episodes_with_consistent_indices(dataset, tmp_path):
    out = tmp_path / "lr"
    first = export_lerobot(dataset, out, fps=FPS, episodes="0")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    s = export_lerobot(dataset, out, fps=FPS, append=True)  # 0 is in already: 1 and 2 are added
    assert s.appended and s.episodes == 2 and s.total_episodes == 3
    assert [Path(x["episode"]).name for x in s.skipped] == ["episode_000000"]
    assert "already in" in s.skipped[0]["reason"]
    # the files of the first export are untouched; the new episodes are in new files
    for rel, data in before.items():
        if rel.parts[0] != "meta" or rel.parts[1] == "episodes":
            assert (out / rel).read_bytes() == data, rel
    assert (out / "data/chunk-000/file-001.parquet").is_file()
    assert (out / "videos/observation.images.head/chunk-000/file-001.mp4").is_file()
    assert (out / "meta/episodes/chunk-000/file-001.parquet").is_file()
    info = json.loads((out / "meta/info.json").read_text())
    assert info["total_episodes"] == 3 and info["total_frames"] == first.frames + s.frames
    assert info["splits"] == {"train": "0:3"} and info["total_tasks"] == 2
    eps = pa.concat_tables([pq.read_table(p) for p in sorted((out / "meta/episodes").rglob("*.parquet"))]).to_pandas()
    assert list(eps["episode_index"]) == [0, 1, 2]
    assert list(eps["source_episode"]) == ["episode_000000", "episode_000001", "episode_000002"]
    assert list(eps["dataset_from_index"][1:]) == list(eps["dataset_to_index"][:-1])
    assert list(eps["data/file_index"]) == [0, 1, 1] and list(eps["meta/episodes/file_index"]) == [0, 1, 1]
    assert list(eps["videos/observation.images.head/from_timestamp"])[1] == 0.0  # a new video file
    rows = pa.concat_tables([pq.read_table(p) for p in sorted((out / "data").rglob("*.parquet"))]).to_pandas()
    np.testing.assert_array_equal(rows["index"], np.arange(info["total_frames"]))
    np.testing.assert_array_equal(rows["episode_index"], np.repeat([0, 1, 2], eps["length"]))
    np.testing.assert_array_equal(rows["task_index"], np.repeat([0, 1, 0], eps["length"]))  # "pick" kept its index
    with av.open(str(out / "videos/observation.images.head/chunk-000/file-001.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == eps["length"][1] + eps["length"][2]
    stats = json.loads((out / "meta/stats.json").read_text())
    assert stats["index"]["count"] == [info["total_frames"]] and stats["index"]["max"] == [info["total_frames"] - 1]
    q = np.stack(rows["observation.state"]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], q.mean(0), rtol=1e-6, atol=1e-9)
    # again: nothing new, nothing changed
    again = export_lerobot(dataset, out, fps=FPS, append=True)
    assert again.episodes == 0 and again.total_episodes == 3 and len(again.skipped) == 3


def test_append_to_an_earlier_export_writes_it_as_lerobot_06_does(dataset, tmp_path):
    """An export from before the 0.6 layout (legacy video.is_depth_map, no encoder settings, an
    unnamed tasks index, a top-level key LeRobot does not know) is brought up to date by --append."""
    import pandas as pd

    out = tmp_path / "old"
    export_lerobot(dataset, out, fps=FPS, episodes="0")
    info_path = out / "meta/info.json"
    info = json.loads(info_path.read_text())
    head = info["features"]["observation.images.head"]["info"]
    for k in ("is_depth_map", "video.g", "video.crf", "video.preset", "video.fast_decode"):
        head.pop(k)
    head["video.is_depth_map"] = False
    info["total_videos"] = 1  # a v2.x key
    info_path.write_text(json.dumps(info))
    tasks = pd.read_parquet(out / "meta/tasks.parquet")
    tasks.index.name = None
    tasks.to_parquet(out / "meta/tasks.parquet")

    assert export_lerobot(dataset, out, fps=FPS, episodes="2", append=True).total_episodes == 2
    info = json.loads(info_path.read_text())
    head = info["features"]["observation.images.head"]["info"]
    assert "total_videos" not in info and "video.is_depth_map" not in head and head["is_depth_map"] is False
    settings = (head["video.g"], head["video.crf"], head["video.preset"], head["video.fast_decode"])
    assert settings == (2, 23, "veryfast", 0)
    assert pq.read_schema(out / "meta/tasks.parquet").names == ["task_index", "task"]
    assert list(pd.read_parquet(out / "meta/tasks.parquet").index) == ["pick"]


def test_append_refuses_other_features_fps_and_overwrite(tmp_path):
    ds = tmp_path / "ds"
    make_episode(ds, 0, seconds=0.3)
    make_episode(ds, 1, seconds=0.3, seed=1, tactile=("gel",))
    out, h5 = tmp_path / "lr", tmp_path / "d.hdf5"
    export_lerobot(ds, out, fps=FPS, episodes="0")
    export_hdf5(ds, h5, fps=FPS, episodes="0")
    info = (out / "meta/info.json").read_bytes()
    h5_bytes = h5.read_bytes()
    with pytest.raises(ExportError, match=r"episode_000001: its features differ from those of the existing export .*"
                                          r"extra \['observation.tactile.gel.displacement'"):
        export_lerobot(ds, out, fps=FPS, append=True)
    with pytest.raises(ExportError, match="episode_000001: its features differ from those of the existing export"):
        export_hdf5(ds, h5, fps=FPS, append=True)
    with pytest.raises(ExportError, match=f"exported at {FPS} fps; append with --fps {FPS}"):
        export_lerobot(ds, out, fps=10, append=True)
    with pytest.raises(ExportError, match=f"append with --fps {FPS}"):
        export_hdf5(ds, h5, fps=10, append=True)
    with pytest.raises(ExportError, match="append with --codec h264"):
        export_lerobot(ds, out, fps=FPS, append=True, codec="av1")
    with pytest.raises(ConfigError, match="give one of them"):
        export_lerobot(ds, out, fps=FPS, append=True, overwrite=True)
    assert (out / "meta/info.json").read_bytes() == info and h5.read_bytes() == h5_bytes
    assert not list(tmp_path.glob(".*partial")) and not (out / "data/chunk-000/file-001.parquet").exists()


def test_hdf5_append_continues_the_demos(dataset, tmp_path):
    out = tmp_path / "d.hdf5"
    export_hdf5(dataset, out, fps=FPS, episodes="0,1")
    s = export_hdf5(dataset, out, fps=FPS, append=True)
    assert s.appended and s.episodes == 1 and s.total_episodes == 3
    with h5py.File(out, "r") as f:
        data = f["data"]
        assert [x.decode() for x in f["mask/train"][:]] == ["demo_0", "demo_1", "demo_2"]
        assert [x.decode() for x in f["mask/success"][:]] == ["demo_0", "demo_2"]
        assert data["demo_2"].attrs["source_episode"] == "episode_000002"
        assert data.attrs["total"] == sum(int(data[d].attrs["num_samples"]) for d in ("demo_0", "demo_1", "demo_2"))
        assert list(data.attrs["tasks"]) == ["pick", "place"]
        assert "t_capture" not in data["demo_2/obs"] and data["demo_2/t_capture"].dtype == np.float64


def test_degraded_episodes_are_warned_about_or_skipped(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_episode(ds, 0, seconds=0.3)
    make_episode(ds, 1, seconds=0.3, seed=1)
    make_episode(ds, 2, seconds=0.3, seed=2, status="recovered")
    meta = read_meta(ds / "episode_000001")
    meta["loop"] = {"loop_hz": 310.0, "held_rate": False, "configured_hz": 500.0}
    meta["silences"] = [{"after_s": 0.1, "seconds": 1.4}]
    write_meta(ds / "episode_000001", meta)
    s = export_hdf5(ds, tmp_path / "a.hdf5", fps=FPS)
    assert s.episodes == 3
    assert {Path(d["episode"]).name: d["skipped"] for d in s.degraded} == {"episode_000001": False,
                                                                           "episode_000002": False}
    reasons = {Path(d["episode"]).name: " / ".join(d["reasons"]) for d in s.degraded}
    assert "loop ran at 310.0 Hz" in reasons["episode_000001"] and "tap silence" in reasons["episode_000001"]
    assert "recorder died" in reasons["episode_000002"]
    assert main(["export", str(ds), "--format", "lerobot", "--out", str(tmp_path / "b"), "--fps", str(FPS),
                 "--skip-degraded"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["episodes"] == 1
    assert "skip episode_000001: degraded recording (the loop ran at 310.0 Hz" in captured.err


def test_discarded_episodes_are_left_out_unless_asked(tmp_path):
    ds = tmp_path / "ds"
    make_episode(ds, 0, seconds=0.3)
    make_episode(ds, 1, seconds=0.3, seed=1)
    discard_episode(f"{ds}:1")
    s = export_hdf5(ds, tmp_path / "a.hdf5", fps=FPS)
    assert s.episodes == 1 and "discarded" in s.skipped[0]["reason"] and "restore" in s.skipped[0]["reason"]
    assert export_hdf5(ds, tmp_path / "b.hdf5", fps=FPS, include_discarded=True).episodes == 2
