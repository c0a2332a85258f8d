"""The real hand video drives the bundled humanoid's right arm and hand in a session, through
the camera_hands driver like any other device: the session engages on it and the right hand's
command follows the video; the left side, with no input, holds."""

from __future__ import annotations

import numpy as np
import pytest
from support.hands import HAND_VIDEO, require_hand_models
from support.ports import free_port_base

from teleop.session.config import parse_session
from teleop.session.session import ENGAGED, STALE, Session

VIDEO = HAND_VIDEO
pytestmark = pytest.mark.skipif(not VIDEO.is_file(), reason=f"the real hand video is not at {VIDEO} (../shared/data)")


def test_a_video_of_a_hand_drives_the_robot_in_a_session():
    require_hand_models()
    raw = {
        "session": {"rate_hz": 200.0},
        "robot": {"kind": "sim", "port_base": free_port_base(), "sim_args": ["--cameras", "none"]},
        "device": {"cam": {"driver": "camera_hands", "options": {"video": str(VIDEO), "max_hands": 1}}},
        "input": {"right": {"hand": "cam", "wrist": "cam"}},
        "controls": {"engage": ["auto"], "estop": ["key:e"], "release": ["key:r"]},
        "safety": {"max_start_distance_rad": 1.5, "stale_timeout_s": 0.2},
        "haptics": {"enabled": False},
    }
    session = Session(parse_session(raw), status="quiet", keys=False)
    spec_hand = []
    spec_left = []

    def watch(s: Session, tick: int) -> None:
        if s.state == ENGAGED and s.client is not None:
            spec_hand.append(s.command[s.client.spec.group_slice("right_hand")].copy())
            spec_left.append(s.command[s.client.spec.group_slice("left_arm")].copy())

    session.on_tick = watch
    summary = session.run(seconds=8.0)
    assert spec_hand, (summary.final_state, summary.fault_log)
    assert summary.final_state in (ENGAGED, STALE), summary.fault_log
    hand = np.array(spec_hand)
    assert np.ptp(hand, axis=0).max() > 0.2  # the fingers follow the video's hand
    assert np.ptp(np.array(spec_left), axis=0).max() == 0.0  # no input on the left: it holds
    assert summary.latency_ms["p50"] < 200, summary.latency_ms  # camera capture -> setpoint
