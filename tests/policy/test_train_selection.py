"""`teleop policy train --only-success` and discarded episodes: which episodes a model learns from,
on real episode folders labelled offline (`teleop episodes label` / `discard`)."""

from __future__ import annotations

import json

import pytest
from policy_fakes import make_episode

from recorder.episode import discard_episode, label_episode
from teleop.cli import main
from teleop.errors import ConfigError
from teleop.policy.bc import build_samples


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    for i in range(3):
        make_episode(root, i, seconds=0.4, phase=0.7 * i)
    label_episode(f"{root}:1", outcome="unknown")  # (policy_fakes labels its episodes success)
    label_episode(f"{root}:2", outcome="failure")
    return root


def test_only_success_trains_on_the_success_episodes(dataset):
    s = build_samples([dataset], chunk=2, only_success=True)
    assert [p.rsplit("/", 1)[-1] for p in s.episodes] == ["episode_000000"]
    reasons = {k["episode"].rsplit("/", 1)[-1]: k["reason"] for k in s.skipped}
    assert reasons == {"episode_000001": "outcome 'unknown' (--only-success)",
                       "episode_000002": "outcome 'failure' (--only-success)"}
    # an episode named on its own is held to the same rule
    assert build_samples([f"{dataset}:2", f"{dataset}:0"], chunk=2, only_success=True).episodes == \
        [str(dataset / "episode_000000")]
    assert len(build_samples([dataset], chunk=2).episodes) == 3


def test_only_success_without_any_says_how_to_label(tmp_path):
    make_episode(tmp_path, 0, seconds=0.3)
    label_episode(f"{tmp_path}:0", outcome="failure")
    with pytest.raises(ConfigError, match=r"no episode labelled success.*episodes label DATASET:INDEX --success"):
        build_samples([tmp_path], only_success=True)


def test_discarded_episodes_are_not_trained_on_unless_asked(tmp_path, capsys):
    for i in range(2):
        make_episode(tmp_path, i, seconds=0.3, phase=float(i))
    discard_episode(f"{tmp_path}:1", reason="operator sneezed")
    label_episode(f"{tmp_path}:0", outcome="unknown")
    s = build_samples([tmp_path], chunk=2)
    assert len(s.episodes) == 1 and "discarded" in s.skipped[0]["reason"]
    assert len(build_samples([tmp_path], chunk=2, include_discarded=True).episodes) == 2
    assert main(["policy", "train", str(tmp_path), "--out", str(tmp_path / "m.npz"), "--chunk", "2",
                 "--only-success", "--json"]) == 2
    assert "no episode labelled success" in capsys.readouterr().err
    label_episode(f"{tmp_path}:0", outcome="success")
    assert main(["policy", "train", str(tmp_path), "--out", str(tmp_path / "m.npz"), "--chunk", "2",
                 "--only-success", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 1 and len(report["skipped"]) == 1
