"""Shared fixtures: free loopback ports and buses that always close (tests cannot hang)."""

from __future__ import annotations

import pytest
from support.ports import free_port_base

import teleop  # noqa: F401  (headless MuJoCo render backend before any test imports mujoco)


@pytest.fixture
def port_base() -> int:
    return free_port_base()


@pytest.fixture
def bus():
    from teleop.bus import Bus

    b = Bus("test")
    yield b
    b.close()
