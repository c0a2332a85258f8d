"""Free loopback ports for tests that bind real sockets."""

from __future__ import annotations

import random

from teleop.bus.endpoints import ports_free

# Below Linux's ephemeral range (32768-60999): a client that keeps reconnecting to a port nobody
# listens on (a killed server's) can be given that very port as its own source port and connect
# to itself (TCP self-connect), holding it, so a restarted server could not bind. Real endpoints
# sit below the range too (7610...).
_LOW, _HIGH = 20000, 32000


def free_port_base(count: int = 8) -> int:
    """A base port with ``count`` consecutive free ports on 127.0.0.1 (a session uses six: the robot
    server's four, the tap and the recorder control)."""
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(_LOW, _HIGH - count)
        if ports_free(base, count):
            return base
    raise RuntimeError(f"no {count} free consecutive ports in {_LOW}..{_HIGH}")
