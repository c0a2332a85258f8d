"""Compile every numba kernel once, with progress, so no session waits on a cold cache.

numba keeps compiled kernels in ``__pycache__`` beside their source (``cache=True``), but the first
run after an install or a code change compiles them: about a minute of silence on a 2-core
machine. ``teleop warmup`` (which ``make install`` runs) does it up front, in two processes, and
says what it is doing; a session that still finds a cold cache reports the same progress through
``compile_progress``.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["GROUPS", "compile_progress", "warm_group", "warm_all"]


def _warm_retargeting() -> None:
    import numpy as np

    from retarget.bimanual import BimanualRetargeter
    from robots.description import bundled_description_path, load_description
    from teleop.session.safety import SafetyFilter

    description = load_description(bundled_description_path())
    retarget = BimanualRetargeter(description)
    retarget.warmup()
    n = retarget.n_command
    safety = SafetyFilter.for_retargeter(retarget, np.full(n, -10.0), np.full(n, 10.0), np.ones(n), 500.0, 0.1)
    q = np.zeros(n)
    safety.step(q, q, q.copy())


def _warm_devices() -> None:
    import numpy as np

    from drivers.gelsight_mini.tactile import TactilePipeline
    from drivers.synthetic.script import BimanualScript
    from robots.mujoco_sim.kernels import rate_limit_step

    TactilePipeline().warmup()
    BimanualScript("pick_handover")  # the synthetic hands' keypoint kernels
    x = np.zeros(3)
    rate_limit_step(x, x.copy(), np.ones(3))


#: what each warm-up process compiles (name -> function); the two run side by side
GROUPS: dict[str, Callable[[], None]] = {
    "retargeting and safety": _warm_retargeting,
    "tactile, synthetic hands and sim": _warm_devices,
}


@contextmanager
def compile_progress(what: str, say: Callable[[str], None], every_s: float = 5.0) -> Iterator[None]:
    """While the block runs, count numba compilations and ``say`` a line every ``every_s`` while
    any happen (nothing at all when the cache is warm)."""
    from numba.core import event

    count = [0]
    done = threading.Event()

    class _Counter(event.Listener):
        def on_start(self, ev: event.Event) -> None:
            count[0] += 1

        def on_end(self, ev: event.Event) -> None:
            pass

    def report() -> None:
        t0 = time.monotonic()
        while not done.wait(every_s):
            if count[0]:
                say(f"compiling {what}: {count[0]} kernels so far, {time.monotonic() - t0:.0f} s "
                    "(once after an install or a code change)")

    listener = _Counter()
    event.register("numba:compile", listener)
    reporter = threading.Thread(target=report, name="compile-progress", daemon=True)
    reporter.start()
    try:
        yield
    finally:
        done.set()
        event.unregister("numba:compile", listener)
        reporter.join()


def warm_group(name: str) -> tuple[str, float]:
    t0 = time.monotonic()
    with compile_progress(name, lambda line: print(f"teleop warmup: {line}", file=sys.stderr, flush=True)):
        GROUPS[name]()
    return name, time.monotonic() - t0


def warm_all() -> dict[str, float]:
    """Every group in its own process (numba compiles on one core); returns seconds per group."""
    ctx = multiprocessing.get_context("spawn")  # no forked numba/mujoco state
    with ctx.Pool(len(GROUPS)) as pool:
        return dict(pool.map(warm_group, list(GROUPS)))
