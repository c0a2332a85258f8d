"""Gestures as control sources, from the human hand model's keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.human_hand import HumanHand
from retarget.motions import pose
from teleop.errors import ConfigError
from teleop.session.config import parse_session
from teleop.session.gestures import GestureDetector


def _kp(side: str, name: str) -> np.ndarray:
    return HumanHand(side).keypoints(pose(name))


@pytest.mark.parametrize("side", ["left", "right"])
def test_pinch_and_fist_fire_after_the_hold_and_release(side):
    det = GestureDetector([f"{side}_pinch", f"{side}_fist"], rate_hz=100, hold_s=0.05)
    i = 0 if side == "left" else 1
    kp = np.zeros((2, 21, 3))
    fresh = np.ones(2, bool)
    events = []
    for name, ticks in (("open", 10), ("pinch_index", 10), ("open", 3), ("fist", 10), ("spread", 3)):
        kp[i] = _kp(side, name)
        for _ in range(ticks):
            events += det.update(kp, fresh)
    assert events == [(f"gesture:{side}_pinch", True), (f"gesture:{side}_pinch", False),
                      (f"gesture:{side}_fist", True), (f"gesture:{side}_fist", False)]


def test_a_brief_pinch_or_a_stale_hand_does_not_fire():
    det = GestureDetector(["right_pinch"], rate_hz=100, hold_s=0.3)
    kp = np.zeros((2, 21, 3))
    kp[1] = _kp("right", "pinch_index")
    assert [e for _ in range(20) for e in det.update(kp, np.array([True, True]))] == []  # 0.2 s < 0.3 s
    assert [e for _ in range(50) for e in det.update(kp, np.array([True, False]))] == []  # no fresh sample


def test_config_accepts_gestures_and_names_the_known_ones():
    base = {"device": {"g": {"driver": "synthetic"}}, "input": {"right": {"hand": "g"}}}
    cfg = parse_session({**base, "controls": {"intervene": ["gesture:right_pinch", "key:i"]}})
    assert cfg.controls.intervene == ("gesture:right_pinch", "key:i")
    with pytest.raises(ConfigError, match="gestures are"):
        parse_session({**base, "controls": {"intervene": ["gesture:wave"]}})
