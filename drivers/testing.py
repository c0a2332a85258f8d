"""Test helpers for driver authors, shipped with the runtime so a plugin package's tests import
them the same way ours do::

    from drivers.testing import FakeSerialDevice, check_driver

    def test_conformance():
        with FakeSerialDevice(lambda k: b"0.1,0.5,0.5,0.5,0.5\\n", rate_hz=200) as device:
            check_driver(lambda: MyGloveDriver(MyGloveConfig(port=device.path)), kinds=("hand",))

``check_driver`` is the contract every driver (built-in or plugin) passes with its fake device;
``FakeSerialDevice`` is a serial device on a real pseudo-terminal. Fake the hardware, never the
driver: the driver under test opens the pty path exactly as it opens ``/dev/ttyUSB0``.
"""

from __future__ import annotations

import os
import threading
import time
import tty
from collections.abc import Callable

from drivers.base import _KINDS, Driver
from drivers.config import DriverConfig
from drivers.samples import HandSample, SampleSpec, hand_sample_problem, sample_to_json
from teleop.errors import DeviceNotConnectedError, DeviceTimeoutError

__all__ = ["check_driver", "FakeSerialDevice", "HAND_CONTRACT_HINT"]

#: What a hand driver that breaks the contract is told to do.
HAND_CONTRACT_HINT = (
    "a hand driver must fill HandSample.keypoints, (21, 3) metres in the wrist frame: the session retargets from "
    "keypoints only. From finger curls: `keypoints, angles = drivers.hands.GloveHand(side).from_curls(curls)`; from "
    "20 joint angles: `GloveHand(side).keypoints(angles)` (docs/adding-a-driver.md, docs/hand-keypoints.md)"
)


def _require(ok: bool, message: str) -> None:
    if not ok:  # not `assert`: this runs in plugin test suites, with or without pytest's rewriting or -O
        raise AssertionError(message)


def check_driver(make: Callable[[], Driver], kinds: tuple[str, ...], samples: int = 5, timeout_s: float = 5.0) -> list:
    """Exercise the lifecycle and the reading contract; returns the samples read. Raises
    ``AssertionError`` saying what is wrong and what to do.

    Checks: no I/O in ``__init__``, ``sample_spec`` while disconnected and announcing ``kinds``,
    reading before ``connect()`` raises ``DeviceNotConnectedError``, connect/disconnect idempotent
    and repeatable, monotonic ``capture_ns`` on ``time.monotonic_ns()``, increasing ``seq``,
    ``read_latest`` with an age limit, ``health()``, every sample printable by ``teleop drivers
    echo --json``, and every ``HandSample`` able to drive a hand (``drivers.samples.hand_sample_problem``).
    """
    drv = make()  # construction does no I/O: it must not fail or open anything
    _require(bool(drv.name), f"{type(drv).__name__}: class attribute `name` (== the entry-point name) is empty")
    _require(issubclass(drv.config_class, DriverConfig), f"{drv.name}: config_class must subclass DriverConfig")
    spec = drv.sample_spec  # works while disconnected
    _require(isinstance(spec, SampleSpec) and set(kinds) <= set(spec.kinds),
             f"{drv.name}: sample_spec {spec!r} must be a SampleSpec whose kinds include {kinds}")
    _require(not drv.is_connected, f"{drv.name}: connected before connect() (no I/O in __init__)")
    for call in (lambda: drv.get_sample(0.01), lambda: drv.read_latest()):
        try:
            call()
        except DeviceNotConnectedError as exc:
            _require("connect" in str(exc), f"{drv.name}: DeviceNotConnectedError should say to connect(): {exc}")
        else:
            raise AssertionError(f"{drv.name}: reading before connect() must raise DeviceNotConnectedError")
    got = []
    for _round in range(2):  # connect, read, disconnect, and again
        drv.connect()
        drv.connect()  # idempotent
        try:
            _require(drv.is_connected, f"{drv.name}: is_connected is False after connect()")
            last_seq, last_t = -1, 0
            for _ in range(samples):
                s = drv.get_sample(timeout_s)
                name = type(s).__name__
                _require(type(s) in _KINDS and _KINDS[type(s)] in spec.kinds,
                         f"{drv.name}: got a {name}, not announced in sample_spec.kinds {spec.kinds}")
                _require(s.capture_ns > 0 and s.capture_ns >= last_t, f"{drv.name}: capture_ns must be monotonic")
                _require(s.seq > last_seq, f"{drv.name}: seq must increase (self.next_seq())")
                _require(s.capture_ns <= time.monotonic_ns() + 1_000_000_000,
                         f"{drv.name}: capture_ns must be on time.monotonic_ns()")
                if isinstance(s, HandSample):
                    problem = hand_sample_problem(s, drv.name)
                    _require(problem is None, f"{drv.name}: hand samples {problem}: {HAND_CONTRACT_HINT}")
                sample_to_json(s, spec.channel_names)  # printable by `teleop drivers echo --json`
                last_seq, last_t = s.seq, s.capture_ns
                got.append(s)
            latest = drv.read_latest(max_age_s=timeout_s)
            _require(latest.seq >= last_seq, f"{drv.name}: read_latest returned an older sample than get_sample")
            try:
                time.sleep(0.05)
                drv.read_latest(max_age_s=0.0)
            except DeviceTimeoutError:
                pass
            h = drv.health()
            _require(h.connected and h.samples >= samples, f"{drv.name}: health() {h} after {samples} samples")
        finally:
            drv.disconnect()
        drv.disconnect()  # idempotent
        _require(not drv.is_connected, f"{drv.name}: is_connected is True after disconnect()")
    return got


class FakeSerialDevice:
    """A serial device on a real pseudo-terminal, for a serial driver's tests. ``path`` is the port
    to give the driver (pyserial opens it like ``/dev/ttyUSB0``); a thread writes ``line(k)`` for
    k = 0, 1, ... at ``rate_hz`` (``line`` may return ``b""`` to send nothing that period, or any
    bytes: noise, a half line); lines nobody reads are dropped, as by a UART. ``received()`` is what
    the driver wrote. ``unplug()`` closes the pty: the driver's next read fails, like a USB serial
    adapter pulled out.
    """

    def __init__(self, line: Callable[[int], bytes], rate_hz: float = 200.0) -> None:
        if not 0 < rate_hz <= 10_000:
            raise ValueError(f"rate_hz={rate_hz}: must be within (0, 10000]")
        self.line = line
        self.rate_hz = rate_hz
        self.path = ""
        self.sent = 0  # lines written so far
        self._master = self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rx = bytearray()

    def start(self) -> FakeSerialDevice:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo or line editing before the driver configures the port
        os.set_blocking(master, False)
        # the slave stays open here too, so the master never sees a hang-up between two connects
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fake-serial-device", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_t = time.monotonic()
        k = 0
        while not self._stop.is_set():
            data = self.line(k)
            k += 1
            try:
                if data:
                    os.write(self._master, data)
                    self.sent += 1
            except BlockingIOError:  # nobody reads (the driver is disconnected): dropped, as by a UART
                pass
            except OSError:  # unplugged under us
                return
            try:
                self._rx += os.read(self._master, 4096)
            except BlockingIOError:
                pass
            except OSError:
                return
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def received(self) -> bytes:
        """Everything the driver has written to the device so far."""
        return bytes(self._rx)

    def unplug(self) -> None:
        """Stop writing and close both ends of the pty."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> FakeSerialDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.unplug()
