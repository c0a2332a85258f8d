"""Driver conformance: every driver (built-in or plugin) passes ``check_driver`` with its fake
device. Usage in a driver's tests::

    from support.conformance import check_driver
    def test_conformance(fake_device):
        check_driver(lambda: MyDriver(MyConfig(port=fake_device.path)), kinds=("hand",))
"""

from __future__ import annotations

import time
from collections.abc import Callable

from drivers.base import Driver
from drivers.config import DriverConfig
from drivers.samples import ButtonEvent, HandSample, PoseSample, SampleSpec, TactileSample, sample_to_json
from teleop.errors import DeviceNotConnectedError, DeviceTimeoutError

_KIND = {HandSample: "hand", PoseSample: "pose", TactileSample: "tactile", ButtonEvent: "buttons"}


def check_driver(make: Callable[[], Driver], kinds: tuple[str, ...], samples: int = 5, timeout_s: float = 5.0) -> list:
    """Exercise the lifecycle and the reading contract; returns the samples read."""
    drv = make()  # construction does no I/O: it must not fail or open anything
    assert drv.name, "class attribute `name` (== entry-point name) is empty"
    assert issubclass(drv.config_class, DriverConfig)
    spec = drv.sample_spec  # works while disconnected
    assert isinstance(spec, SampleSpec) and set(kinds) <= set(spec.kinds), spec
    assert not drv.is_connected
    for call in (lambda: drv.get_sample(0.01), lambda: drv.read_latest()):
        try:
            call()
        except DeviceNotConnectedError as exc:
            assert "connect" in str(exc)
        else:
            raise AssertionError("reading before connect() must raise DeviceNotConnectedError")
    got = []
    for _round in range(2):  # connect, read, disconnect, and again
        drv.connect()
        drv.connect()  # idempotent
        try:
            assert drv.is_connected
            last_seq, last_t = -1, 0
            for _ in range(samples):
                s = drv.get_sample(timeout_s)
                assert _KIND[type(s)] in spec.kinds, f"{type(s).__name__} not announced in sample_spec.kinds"
                assert s.capture_ns > 0 and s.capture_ns >= last_t, "capture_ns must be monotonic"
                assert s.seq > last_seq, "seq must increase"
                assert s.capture_ns <= time.monotonic_ns() + 1_000_000_000, "capture_ns is on time.monotonic_ns()"
                sample_to_json(s, spec.channel_names)  # printable by `teleop drivers echo --json`
                last_seq, last_t = s.seq, s.capture_ns
                got.append(s)
            latest = drv.read_latest(max_age_s=timeout_s)
            assert latest.seq >= last_seq
            try:
                time.sleep(0.05)
                drv.read_latest(max_age_s=0.0)
            except DeviceTimeoutError:
                pass
            h = drv.health()
            assert h.connected and h.samples >= samples
        finally:
            drv.disconnect()
        drv.disconnect()  # idempotent
        assert not drv.is_connected
    return got
