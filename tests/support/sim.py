"""A robot server running in a background thread, torn down even when a test fails."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

from robots.mujoco_sim.server import SimConfig, SimServer
from teleop.bus import RobotEndpoints

FIXTURES = Path(__file__).parents[1] / "fixtures"


@contextmanager
def running_server(port_base: int, **config):
    config.setdefault("cameras", ())
    server = SimServer(SimConfig(endpoints=RobotEndpoints.on(port_base=port_base), **config))
    thread = threading.Thread(target=server.run, name="sim", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(10)
        server.close()
