"""`teleop episodes inspect --plot`: the timeline PNG of real episode folders
(tests/recorder/episode_factory.py), read back with OpenCV, and the degraded lines of inspect."""

from __future__ import annotations

import json

import cv2
import numpy as np
from episode_factory import make_episode

from recorder.episode import read_meta, write_meta
from recorder.inspection import _DRIVERS, PLOT_WIDTH, _fmt, _nice_step, plot_timelines
from teleop.cli import main


def _has(img: np.ndarray, bgr: tuple[int, int, int], at_least: int = 50) -> bool:
    return int(np.all(img == np.array(bgr, np.uint8), axis=2).sum()) >= at_least


def test_the_plot_shows_who_drove_silences_and_every_panel(tmp_path, capsys):
    t = make_episode(tmp_path / "ds", 0, seconds=1.0, policy=True, interventions=((0.3, 0.6),), drop_frames=(3,))
    meta = read_meta(t.path)
    meta["silences"] = [{"after_s": 0.2, "seconds": 1.0}]
    meta["loop"] = {"loop_hz": 401.0, "held_rate": False, "configured_hz": 500.0}
    write_meta(t.path, meta)
    out = tmp_path / "timeline.png"
    assert main(["episodes", "inspect", f"{tmp_path / 'ds'}:0", "--plot", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["plot"] == str(out) and any("401.0 Hz" in why for why in report["degraded"])
    img = cv2.imread(str(out))
    assert img is not None and img.shape[1] == PLOT_WIDTH
    assert _has(img, _DRIVERS["policy"][1], 2000) and _has(img, _DRIVERS["intervention"][1], 1000)
    assert _has(img, (225, 225, 250), 2000)  # the tap silence, shaded across the panels
    # a panel per arm, one for the objects, one for the streams: the figure is as tall as that
    assert img.shape[0] > 150 * 2 + 110 + 17 * len(report["streams"])
    assert main(["episodes", "inspect", f"{tmp_path / 'ds'}:0"]) == 0
    assert "degraded: the loop ran at 401.0 Hz" in capsys.readouterr().out


def test_an_episode_with_only_a_few_streams_still_plots(tmp_path):
    t = make_episode(tmp_path / "ds", 0, seconds=0.2, cameras=(), hands=(), poses=())
    out = plot_timelines(t.path, tmp_path / "p.png")
    assert cv2.imread(str(out)).shape[1] == PLOT_WIDTH


def test_time_ticks_are_round_numbers():
    assert [_nice_step(s) for s in (0.3, 3.0, 26.0, 600.0)] == [0.05, 0.5, 5.0, 50.0]
    assert (_fmt(-1e-17, 0.5), _fmt(2.5, 0.5), _fmt(20.0, 5.0)) == ("0.0", "2.5", "20")
