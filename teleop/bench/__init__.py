"""``teleop bench ...``: benchmarks that print JSON with a reference measured in the same run."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any


def wait_for_recorder(rpc: Any, proc: subprocess.Popen, where: Callable[[], str], timeout_s: float = 60.0) -> None:
    """Until the recorder ``proc`` answers ``status`` on ``rpc``; if it exits or the time runs
    out, ``RuntimeError`` with ``where()`` (its output, or where its log is)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            rpc.request("status")
            return
        except Exception:  # noqa: BLE001 - still starting
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the recorder did not start{where()}") from None
