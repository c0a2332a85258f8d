"""The driver API: one small base class every device implements.

Lifecycle: ``Driver(config)`` does no I/O; ``connect()`` opens the device (and undoes a partial
open if it fails); ``disconnect()`` releases it. Reading:

* ``get_sample(timeout_s)``: the next fresh sample, blocking up to ``timeout_s``, else
  ``DeviceTimeoutError``;
* ``read_latest(max_age_s)``: the newest sample without blocking, ``DeviceTimeoutError`` if there
  is none younger than ``max_age_s`` (the control loop uses this: latest-sample semantics);
* ``send_feedback(HapticFeedback)`` for devices that take output;
* ``add_waker(fn)``: ``fn()`` is called as soon as a new hand or pose sample is there (the session
  acts on a sample when it arrives, not at its next tick); ``delivered_ns(kind)`` says when the
  newest one was (per-stage latency tracing).

Most devices fit ``ThreadedDriver``: implement ``_open``, ``_read`` (one blocking read with a
short timeout, returning a sample, a list of samples or None) and ``_close``; the base runs the
reader thread, keeps the newest sample, counts errors, re-raises the reader's exception from the
next ``get_sample``/``read_latest``, and reconnects after an unplug when ``config.reconnect``.

A hand driver's ``HandSample``s carry ``keypoints`` (the hand contract, ``drivers.samples``);
``drivers.testing.check_driver`` checks a driver against all of this (docs/adding-a-driver.md).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from drivers.config import DriverConfig
from teleop.types import Side
from drivers.samples import (
    ButtonEvent,
    HandSample,
    HapticFeedback,
    PoseSample,
    Sample,
    SampleKind,
    SampleSpec,
    TactileSample,
)
from teleop.errors import DeviceError, DeviceNotConnectedError, DeviceTimeoutError

__all__ = ["Driver", "ThreadedDriver", "DriverHealth", "requires_connected"]

logger = logging.getLogger(__name__)

_KINDS: dict[type, str] = {HandSample: "hand", PoseSample: "pose", TactileSample: "tactile", ButtonEvent: "buttons"}


def requires_connected(method):
    """Raise ``DeviceNotConnectedError`` (saying what to do) unless the driver is connected."""

    @functools.wraps(method)
    def wrapper(self: Driver, *args: Any, **kwargs: Any) -> Any:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self.name}: not connected; call connect() first")
        return method(self, *args, **kwargs)

    return wrapper


@dataclass
class DriverHealth:
    connected: bool
    samples: int = 0
    rate_hz: float = 0.0  # device reads per second, measured over the last second
    errors: dict[str, int] = field(default_factory=dict)  # reason -> count (bad_line, reconnect, ...)
    last_error: str | None = None
    last_sample_age_s: float | None = None


class Driver(ABC):
    """Base class. Subclasses set ``name`` (== entry-point name) and ``config_class``."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type[DriverConfig]] = DriverConfig
    description: ClassVar[str] = ""

    def __init__(self, config: DriverConfig | None = None) -> None:
        config = config if config is not None else self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config

    @abstractmethod
    def connect(self) -> None: ...

    @abstractmethod
    def disconnect(self) -> None: ...

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @property
    @abstractmethod
    def sample_spec(self) -> SampleSpec:
        """What this driver produces; works while disconnected."""

    @abstractmethod
    def get_sample(self, timeout_s: float = 1.0) -> Sample: ...

    @abstractmethod
    def read_latest(self, max_age_s: float | None = None, kind: SampleKind | None = None,
                    side: Side | None = None) -> Sample:
        """The newest sample (of ``kind``, for drivers that emit several kinds; of ``side``, for a
        device that sees both hands, whose ``sample_spec.side`` is None: a camera)."""

    def calibrate(self) -> dict[str, Any]:
        """Interactive or automatic calibration; returns what to store in an operator profile.
        Devices that need none return an empty dict."""
        return {}

    def send_feedback(self, feedback: HapticFeedback) -> None:
        raise DeviceError(f"{self.name}: this device takes no feedback (sample_spec.feedback is False)")

    def drain_events(self) -> list[ButtonEvent]:
        """ButtonEvents since the last call (drivers without buttons return none)."""
        return []

    def add_tap(self, fn: Callable[[Sample], None]) -> None:
        """Call ``fn(sample)`` for every sample and event, in the driver's thread, as it arrives
        (the session publishes them for the recorder this way). ``fn`` must be quick."""
        taps = self.__dict__.setdefault("_taps", [])
        taps.append(fn)

    def add_waker(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` (no arguments, must be quick: e.g. ``threading.Event.set``) whenever a new
        hand or pose sample can be read. A driver that never calls it is read at the loop's tick."""
        self.__dict__.setdefault("_wakers", []).append(fn)

    def delivered_ns(self, kind: SampleKind) -> int:
        """When (``time.monotonic_ns``) the newest sample of ``kind`` was handed to readers; 0 when
        the driver does not know (then the trace counts from the sample's capture time)."""
        return 0

    def health(self) -> DriverHealth:
        return DriverHealth(connected=self.is_connected)

    def __enter__(self) -> Driver:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


class ThreadedDriver(Driver):
    """A driver whose device is read by a background thread (see the module docstring)."""

    #: How many recent samples ``get_sample`` may hand out in order (older ones are dropped).
    queue_size: ClassVar[int] = 256

    def __init__(self, config: DriverConfig | None = None) -> None:
        super().__init__(config)
        self._lock = threading.Condition()
        self._queue: deque[Sample] = deque(maxlen=self.queue_size)
        self._events: deque[ButtonEvent] = deque(maxlen=self.queue_size)  # for drain_events()
        self._latest: Sample | None = None
        self._latest_t = 0.0
        self._latest_kind: dict[str, tuple[Sample, float]] = {}
        self._delivered_ns: dict[str, int] = {}  # kind -> monotonic ns its newest sample was delivered
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._connected = False
        self._device_open = False
        self._seq = 0
        self._counts: dict[str, int] = {}
        self._last_error: str | None = None
        self._times: deque[float] = deque(maxlen=200)

    # -- what subclasses implement --------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None:
        """Open the device; raise ``DeviceError`` with what to check if it is not there."""

    @abstractmethod
    def _read(self) -> Sample | list[Sample] | None:
        """One blocking read, at most ~0.1 s; None if nothing arrived. Raise ``DeviceError``
        (or OSError) when the device is gone."""

    @abstractmethod
    def _close(self) -> None: ...

    # -- helpers for subclasses -------------------------------------------------------------------
    def next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def count(self, reason: str, detail: str | None = None) -> None:
        """Count a recoverable problem (a bad line, a dropped report) without stopping."""
        self._counts[reason] = self._counts.get(reason, 0) + 1
        if detail:
            self._last_error = f"{reason}: {detail}"

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if self._connected:
            return
        self._error = None
        self._stop.clear()
        with self._lock:  # nothing from before a disconnect may come out as fresh
            self._queue.clear()
            self._events.clear()
            self._latest = None
            self._latest_kind.clear()
        try:
            self._open()
        except BaseException:
            try:
                self._close()
            except Exception:  # the partial open is undone as far as possible
                logger.debug("%s: close after a failed open also failed", self.name, exc_info=True)
            raise
        self._device_open = True
        self._connected = True
        self._thread = threading.Thread(target=self._run, name=f"driver-{self.name}", daemon=True)
        self._thread.start()

    def disconnect(self) -> None:
        if not self._connected:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None
        if self._device_open:
            try:
                self._close()
            finally:
                self._device_open = False
        self._connected = False
        with self._lock:
            self._lock.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self._read()
            except Exception as exc:  # unplugged, I/O error, protocol bug
                if self._stop.is_set():
                    return
                self.count("device_lost", f"{type(exc).__name__}: {exc}")
                logger.warning("%s: device lost (%s)", self.name, exc)
                if not self._reopen():
                    with self._lock:
                        self._error = exc
                        self._lock.notify_all()
                    return
                continue
            if got is None:
                continue
            now_ns = time.monotonic_ns()
            now = now_ns / 1e9
            wake = False
            with self._lock:
                for sample in got if isinstance(got, list) else (got,):
                    self._queue.append(sample)
                    self._latest = sample
                    self._latest_t = now
                    kind = _KINDS[type(sample)]
                    self._latest_kind[kind] = (sample, now)
                    side = getattr(sample, "side", None)
                    if side:
                        self._latest_kind[f"{kind}:{side}"] = (sample, now)
                    if type(sample) is ButtonEvent:
                        self._events.append(sample)
                    elif kind in ("hand", "pose"):
                        self._delivered_ns[kind] = now_ns
                        wake = True
                self._times.append(now)  # one per device read: the rate is reads per second
                self._lock.notify_all()
            for fn in self.__dict__.get("_taps", ()):
                for sample in got if isinstance(got, list) else (got,):
                    try:
                        fn(sample)
                    except Exception:  # an observer's bug must not stop the device
                        logger.exception("%s: a sample tap failed", self.name)
            if wake:  # last: this thread goes back to its blocking read (and lets go of the GIL) next
                for fn in self.__dict__.get("_wakers", ()):
                    fn()

    def _reopen(self) -> bool:
        """After an unplug: close, then retry ``_open`` until it works or we are stopped."""
        try:
            self._close()
        except Exception:
            logger.debug("%s: close after loss failed", self.name, exc_info=True)
        self._device_open = False
        if not self.config.reconnect:
            return False
        while not self._stop.wait(self.config.reconnect_interval_s):
            try:
                self._open()
            except Exception as exc:
                self._last_error = f"reconnect: {exc}"
                continue
            self._device_open = True
            self.count("reconnect")
            logger.warning("%s: device back", self.name)
            return True
        return False

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            err = self._error
            raise DeviceError(f"{self.name}: the device stopped: {type(err).__name__}: {err}") from err

    # -- reading --------------------------------------------------------------------------------
    @requires_connected
    def get_sample(self, timeout_s: float = 1.0) -> Sample:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not self._queue:
                self._raise_if_failed()
                left = deadline - time.monotonic()
                if left <= 0 or not self._connected:
                    raise DeviceTimeoutError(
                        f"{self.name}: no sample within {timeout_s} s (last error: {self._last_error or 'none'}); "
                        "is the device plugged in and streaming? `teleop drivers echo` shows what arrives"
                    )
                self._lock.wait(left)
            return self._queue.popleft()

    @requires_connected
    def read_latest(self, max_age_s: float | None = None, kind: SampleKind | None = None,
                    side: Side | None = None) -> Sample:
        """Newest sample (of ``kind``, of ``side``) without blocking; also drops the queue
        ``get_sample`` reads from (a latest-sample consumer does not want the backlog)."""
        with self._lock:
            self._raise_if_failed()
            if kind is None:
                found = None if self._latest is None else (self._latest, self._latest_t)
            else:
                found = self._latest_kind.get(f"{kind}:{side}") if side else None
                newest = self._latest_kind.get(kind)
                if found is None and (not side or (newest is not None and not getattr(newest[0], "side", None))):
                    found = newest  # unsided samples serve any side
            if found is None:
                what = f"{kind or ''} {side or ''}".strip()
                raise DeviceTimeoutError(f"{self.name}: no {what} sample yet".replace("  ", " "))
            sample, t = found
            age = time.monotonic() - t
            if max_age_s is not None and age > max_age_s:
                raise DeviceTimeoutError(f"{self.name}: newest sample is {age * 1e3:.0f} ms old (limit {max_age_s * 1e3:.0f} ms)")
            self._queue.clear()
            return sample

    def delivered_ns(self, kind: SampleKind) -> int:
        return self._delivered_ns.get(kind, 0)

    def drain_events(self) -> list[ButtonEvent]:
        """Every ButtonEvent since the last call, in order, without blocking. Independent of
        ``get_sample``/``read_latest``, so a loop that reads the newest hand sample still sees
        every press and release."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    def health(self) -> DriverHealth:
        with self._lock:
            times = list(self._times)
            latest_t = self._latest_t if self._latest is not None else None
        now = time.monotonic()
        recent = [t for t in times if now - t < 1.0]
        rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 and recent[-1] > recent[0] else 0.0
        return DriverHealth(
            connected=self._connected and self._error is None,
            samples=self._seq,
            rate_hz=rate,
            errors=dict(self._counts),
            last_error=self._last_error,
            last_sample_age_s=None if latest_t is None else now - latest_t,
        )
