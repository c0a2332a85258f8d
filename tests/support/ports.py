"""Free loopback ports for tests that bind real sockets."""

from __future__ import annotations

import socket


def free_port_base(count: int = 8) -> int:
    """A base port with ``count`` consecutive free ports on 127.0.0.1 (a session uses six: the robot
    server's four, the tap and the recorder control)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        ok = True
        for p in range(base, base + count):
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")
