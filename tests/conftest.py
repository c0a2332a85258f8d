"""Shared fixtures: free loopback ports and buses that always close (tests cannot hang)."""

from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


def free_port_base(count: int = 4) -> int:
    """A base port with ``count`` consecutive free ports on 127.0.0.1."""
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


@pytest.fixture
def port_base() -> int:
    return free_port_base()


@pytest.fixture
def bus():
    from teleop.bus import Bus

    b = Bus("test")
    yield b
    b.close()
