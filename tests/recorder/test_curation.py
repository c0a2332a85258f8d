"""Offline curation of finished episodes (`teleop episodes label|discard|restore`), `teleop episodes
list` on missing folders and interrupted episodes, and what the live controls say with no recorder;
on real episode folders (tests/recorder/episode_factory.py) and a real ZeroMQ request."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from episode_factory import make_episode
from support.ports import free_port_base

from recorder.episode import EpisodeError, label_episode, list_episodes, read_meta, write_meta
from teleop.cli import main


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    ds = tmp_path / "ds"
    for i in range(3):
        make_episode(ds, i, seconds=0.3, seed=i, cameras=(), outcome="unknown", task="pick")
    return ds


def _json_out(capsys: pytest.CaptureFixture) -> object:
    return json.loads(capsys.readouterr().out)


def test_label_sets_outcome_task_and_note_keeping_what_it_replaced(dataset, capsys):
    assert main(["episodes", "label", f"{dataset}:1", "--success", "--task", "pour", "--note", "slipped once",
                 "--json"]) == 0
    assert _json_out(capsys) == {"episode": 1, "path": str(dataset / "episode_000001"), "outcome": "success",
                                 "task": "pour", "notes": 1}
    meta = read_meta(dataset / "episode_000001")
    assert meta["outcome"] == "success" and meta["task"] == "pour" and meta["notes"][-1]["text"] == "slipped once"
    [change] = meta["curation"]
    assert change["op"] == "label" and change["was_outcome"] == "unknown" and change["was_task"] == "pick"
    assert main(["episodes", "label", str(dataset / "episode_000001"), "--failure"]) == 0  # a folder works too
    assert read_meta(dataset / "episode_000001")["outcome"] == "failure"
    assert not list(dataset.rglob("*.tmp"))  # written through a temporary file, renamed over
    index = json.loads((dataset / "index.json").read_text())
    assert index["episodes"][1]["outcome"] == "failure" and index["episodes"][1]["task"] == "pour"
    # what is not asked is not touched
    assert read_meta(dataset / "episode_000000")["outcome"] == "unknown"


def test_label_refuses_nothing_to_do_a_non_episode_and_the_episode_being_recorded(dataset, capsys):
    assert main(["episodes", "label", f"{dataset}:0"]) == 2
    assert "nothing to label" in capsys.readouterr().err
    assert main(["episodes", "label", f"{dataset}:7", "--success"]) == 2
    assert "not an episode folder" in capsys.readouterr().err
    assert main(["episodes", "label", f"{dataset}:0", "--success", "--failure"]) == 2  # one outcome at a time
    capsys.readouterr()
    meta = read_meta(dataset / "episode_000002")
    meta.update(status="recording", recorder_pid=os.getpid(), recorder_host=socket.gethostname())
    write_meta(dataset / "episode_000002", meta)
    with pytest.raises(EpisodeError, match="being recorded right now.*teleop episodes success"):
        label_episode(f"{dataset}:2", outcome="success")


def test_discard_hides_the_episode_loses_nothing_and_restore_takes_it_back(dataset, capsys):
    before = {p.relative_to(dataset): p.read_bytes() for p in (dataset / "episode_000001").rglob("*")
              if p.is_file() and p.name != "meta.json"}
    assert main(["episodes", "discard", f"{dataset}:1", "--reason", "camera covered"]) == 0
    assert "restore" in capsys.readouterr().out
    assert (dataset / "episode_000001").is_dir()
    assert {p.relative_to(dataset): p.read_bytes() for p in (dataset / "episode_000001").rglob("*")
            if p.is_file() and p.name != "meta.json"} == before
    assert read_meta(dataset / "episode_000001")["discarded"]["reason"] == "camera covered"
    assert main(["episodes", "list", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "    1  " not in out and "1 discarded episode not shown" in out
    assert main(["episodes", "list", str(dataset), "--include-discarded", "--json"]) == 0
    rows = _json_out(capsys)
    assert [r["discarded"] for r in rows] == [False, True, False]
    assert main(["episodes", "discard", f"{dataset}:1"]) == 0
    assert "already discarded" in capsys.readouterr().out
    assert main(["episodes", "restore", f"{dataset}:1", "--json"]) == 0
    assert _json_out(capsys)["changed"] is True
    meta = read_meta(dataset / "episode_000001")
    assert "discarded" not in meta and [c["op"] for c in meta["curation"]] == ["discard", "restore"]
    assert [e.index for e in list_episodes(dataset, include_discarded=False)] == [0, 1, 2]


def test_list_of_a_missing_folder_or_an_episode_fails_clearly(tmp_path, dataset, capsys):
    assert main(["episodes", "list", str(tmp_path / "nowhere")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    assert main(["episodes", "list", str(dataset / "episode_000000")]) == 2
    assert "is one episode, not a dataset folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["episodes", "list", str(tmp_path / "empty")]) == 0
    assert "no episodes in" in capsys.readouterr().out


def test_an_episode_whose_recorder_died_lists_as_interrupted_with_its_real_duration(tmp_path, capsys):
    ds = tmp_path / "ds"
    make_episode(ds, 0, seconds=0.8, cameras=(), status="recording")
    meta = read_meta(ds / "episode_000000")
    meta.update(duration_s=0.0, stop_ns=0, recorder_pid=2**22 + 12345, recorder_host=socket.gethostname())
    write_meta(ds / "episode_000000", meta)  # as a recorder leaves it when it is killed
    [e] = list_episodes(ds)
    assert e.status == "recording" and e.interrupted and e.state == "interrupted"
    assert 0.75 < e.duration_s < 0.85
    assert any("recorder died" in why for why in e.degraded)
    assert main(["episodes", "list", str(ds)]) == 0
    out = capsys.readouterr().out
    row = out.splitlines()[1]
    assert row.split()[:4] == ["0", "interrupted", "success", "0.8"], row
    assert "the recorder died while recording (not recovered yet: `teleop episodes verify`)" in out


def test_live_controls_without_a_recorder_say_so_and_what_to_do(capsys):
    base = free_port_base()
    assert main(["episodes", "success", "--port-base", str(base), "--timeout", "0.2"]) == 2
    err = capsys.readouterr().err
    assert f"no recorder answered at tcp://127.0.0.1:{base + 5}" in err
    assert "robot server" not in err and "teleop record --dataset" in err and "[recorder] enabled = true" in err
    assert "teleop episodes label DATASET:INDEX --success" in err
    assert main(["episodes", "status", "--port-base", str(base), "--timeout", "0.2"]) == 2
    assert "no recorder answered" in capsys.readouterr().err


def test_degradation_names_what_went_wrong_while_recording():
    from recorder.episode import degradation

    assert degradation({"status": "complete", "loop": {"loop_hz": 499.0, "held_rate": True,
                                                       "held_rate_in_log": True}}) == []
    reasons = degradation({
        "status": "recovered", "rate_hz": 500.0,
        "loop": {"loop_hz": 420.0, "held_rate": False, "commands_logged_hz": 418.0, "configured_hz": 500.0,
                 "held_rate_in_log": False},
        # a 28 ms entry is the recorder running late (its queue had the messages), not the tap
        "silences": [{"after_s": 0.5, "seconds": 0.028}, {"after_s": 3.0, "seconds": 2.5}],
        "dropped": {"bus_gaps": {"robot/state": 4}, "overload": {"tap": 2}, "video": {"head": 0, "wrist": 3}},
        "errors": ["the session that started this recorder died without closing the episode; ..."],
        "faults": {"rate": 1, "engage_refused": 2},
    })
    assert reasons == [
        "the loop ran at 420.0 Hz, below its rate (500.0 Hz)",
        "commands in the log at 418.0 Hz of 500.0 Hz",
        "1 tap silence, the longest 2.5 s at 3.0 s",
        "4 messages lost on the bus (robot/state 4)",
        "2 messages dropped by the recorder (queue full) (tap 2)",
        "3 video frames dropped by the encoder (wrist 3)",
        "the recorder died while recording (recovered from its log)",
        "the session died while recording",
        "session faults: rate x1",
    ]
