"""The per-tick kernels allocate nothing: run inside a numba loop (no argument boxing), the number
of numba runtime allocations does not grow with the number of ticks; and a Python-level tick
creates no NumPy arrays (tracemalloc)."""

from __future__ import annotations

import tracemalloc

import numba
import numpy as np
from numba.core.runtime import _nrt_python as nrt
from numba.core.runtime import rtsys

from retarget.bimanual import BimanualRetargeter
from retarget.kernels.packed import bimanual_step
from retarget.motions import keypoint_sequence
from robots.description import bundled_description_path, load_description


@numba.njit
def _ticks(n, keypoints, wrist_pos, wrist_quat, out, slices, results, args):
    for k in range(n):
        bimanual_step(keypoints[k % keypoints.shape[0]], wrist_pos, wrist_quat, k * 0.002, out, slices, results, *args, False)


def _setup():
    b = BimanualRetargeter(load_description(bundled_description_path()))
    b.warmup()
    kp = np.stack([keypoint_sequence("left")[:100], keypoint_sequence("right")[:100]], axis=1)
    return b, kp, np.zeros((2, 3)), np.tile([1.0, 0, 0, 0], (2, 1)), np.zeros(b.n_command)


def _allocs(fn) -> int:
    nrt.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        fn()
        after = rtsys.get_allocation_stats()
    finally:
        nrt.memsys_disable_stats()
    return after.alloc - before.alloc


def test_tick_kernel_allocates_nothing_per_tick():
    b, kp, wp, wq, out = _setup()
    run = lambda n: _ticks(n, kp, wp, wq, out, b._slices, b._results, b._args)  # noqa: E731
    run(1)  # compile
    assert _allocs(lambda: run(10)) == _allocs(lambda: run(500))


def test_python_tick_creates_no_arrays():
    b, kp, wp, wq, out = _setup()
    b.tick(0.0, kp[0], wp, wq, out)
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    for k in range(1, 100):
        b.tick(k * 0.01, kp[k], wp, wq, out)
    snap1 = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grew = [s for s in snap1.compare_to(snap0, "traceback") if s.size_diff > 0 and "numpy" in str(s.traceback)]
    assert not grew, grew
