"""A video encoder never outranks the control loop: SVT-AV1 started as root moves its threads to
SCHED_FIFO 99 (measured), and the writer and the LeRobot export put them back."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from recorder.video import VideoWriter, _thread_policies

linux_root = pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                                reason="SVT-AV1 raises priorities only when it may (root on Linux)")


@linux_root
def test_an_av1_writer_leaves_every_thread_at_its_policy(tmp_path):
    before = _thread_policies()
    w = VideoWriter(tmp_path / "v.mp4", 64, 48, 10, codec="av1")
    for i in range(12):
        w.write(np.zeros((48, 64, 3), np.uint8), i / 10)
    w.close()
    raised = {tid: p for tid, p in _thread_policies().items() if p != before.get(tid, (os.SCHED_OTHER, 0))}
    assert not raised, f"threads left at a raised scheduling policy: {raised}"
