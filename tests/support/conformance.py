"""Driver conformance for this repository's tests: the helpers ship with the runtime as
``drivers.testing`` (a plugin package imports them from there); this re-export keeps
``from support.conformance import check_driver`` working."""

from __future__ import annotations

from drivers.testing import FakeSerialDevice, check_driver

__all__ = ["check_driver", "FakeSerialDevice"]
