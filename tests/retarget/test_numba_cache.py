"""Kernels compile once: a second process loads every hot-path kernel from numba's disk cache."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_PROBE = textwrap.dedent(
    """
    import json, time
    t0 = time.perf_counter()
    from robots.description import bundled_description_path, load_description
    from retarget.bimanual import BimanualRetargeter
    from retarget.kernels import packed, poses
    b = BimanualRetargeter(load_description(bundled_description_path()))
    b.warmup()
    kernels = {"hand_step": packed.hand_step, "arm_step": packed.arm_step, "hand_residuals": packed.hand_residuals,
               "mat_to_quat": poses.mat_to_quat}
    print(json.dumps({
        "seconds": time.perf_counter() - t0,
        "misses": {k: sum(f.stats.cache_misses.values()) for k, f in kernels.items()},
        "hits": {k: sum(f.stats.cache_hits.values()) for k, f in kernels.items()},
    }))
    """
)


def _probe() -> dict:
    res = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_second_process_loads_kernels_from_cache():
    _probe()  # compiles (and caches) whatever is not cached yet
    second = _probe()
    assert all(v == 0 for v in second["misses"].values()), second
    assert all(v >= 1 for v in second["hits"].values()), second
