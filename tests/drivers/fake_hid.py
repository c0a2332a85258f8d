"""A fake of the cython-hidapi ``hid`` module at the lowest level the HID drivers touch.

It implements exactly the subset drivers/hid/hid.py uses, with hidapi 0.14/0.15 semantics:

* module level: ``enumerate(vendor_id=0, product_id=0)`` -> list of dicts with the keys hidapi
  gives (path as bytes, vendor_id, product_id, serial_number, release_number,
  manufacturer_string, product_string, usage_page, usage, interface_number);
* ``device()`` -> a handle with ``open(vendor_id, product_id, serial_number=None)``,
  ``open_path(path: bytes)`` (``OSError('open failed')`` like hidapi), ``set_nonblocking(v)``,
  ``read(max_length, timeout_ms=0)`` (a list of ints; ``[]`` on timeout; ``OSError('read
  error')`` once the device is unplugged; ``read(n, 0)`` on a *blocking* handle would wait forever
  in hidapi, so the fake raises AssertionError instead of hanging), ``write(buff)`` (-1 on failure,
  like hidapi, which does not raise), ``close()``.

Install it through the drivers' one seam: ``monkeypatch.setattr(drivers.hid.hid, "hidapi", backend)``.
Devices are fed raw report bytes (hex strings or bytes), can repeat a report cycle, and can be
unplugged (reads raise, or with ``silent=True`` just return nothing, and ``enumerate`` stops listing
the device) and replugged (optionally at a new path; handles from before stay dead).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


def report(hexstr: str | bytes) -> bytes:
    """``"01 5e 01"`` -> ``b"\\x01\\x5e\\x01"``."""
    return bytes.fromhex(hexstr) if isinstance(hexstr, str) else bytes(hexstr)


class FakeHidDevice:
    """One physical device on the fake bus."""

    def __init__(self, backend: FakeHidBackend, *, vendor_id: int, product_id: int, path: str,
                 interface_number: int = 0, usage_page: int = 0x01, usage: int = 0x08,
                 product_string: str = "", manufacturer_string: str = "", serial_number: str = "",
                 accepts_output: bool = True, deny_open: bool = False) -> None:
        self.backend = backend
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.path = path
        self.interface_number = interface_number
        self.usage_page = usage_page
        self.usage = usage
        self.product_string = product_string
        self.manufacturer_string = manufacturer_string
        self.serial_number = serial_number
        self.accepts_output = accepts_output
        self.deny_open = deny_open
        self.plugged = True
        self.silent_unplug = False
        self.generation = 0  # bumped on replug; handles of an older generation are dead
        self.opens = 0
        self.writes: list[bytes] = []
        self._queue: deque[bytes] = deque()
        self._repeat: list[bytes] = []
        self._repeat_i = 0
        self._repeat_interval = 0.0
        self._next_repeat = 0.0

    def info(self) -> dict[str, Any]:
        return {
            "path": self.path.encode(), "vendor_id": self.vendor_id, "product_id": self.product_id,
            "serial_number": self.serial_number, "release_number": 0x0100,
            "manufacturer_string": self.manufacturer_string, "product_string": self.product_string,
            "usage_page": self.usage_page, "usage": self.usage, "interface_number": self.interface_number,
        }

    def feed(self, *reports: str | bytes) -> None:
        """Queue input reports (hex strings like ``"01 5e 01 ..."`` or bytes)."""
        with self.backend.cond:
            self._queue.extend(report(r) for r in reports)
            self.backend.cond.notify_all()

    def repeat(self, reports: list[str | bytes], interval_s: float) -> None:
        """When the queue is empty, send these reports in a cycle, one per ``interval_s``."""
        with self.backend.cond:
            self._repeat = [report(r) for r in reports]
            self._repeat_i = 0
            self._repeat_interval = interval_s
            self._next_repeat = time.monotonic()
            self.backend.cond.notify_all()

    def unplug(self, silent: bool = False) -> None:
        """Gone: ``enumerate`` no longer lists it; reads raise OSError (``silent``: return nothing)."""
        with self.backend.cond:
            self.plugged = False
            self.silent_unplug = silent
            self._queue.clear()
            self.backend.cond.notify_all()

    def replug(self, path: str | None = None) -> None:
        with self.backend.cond:
            self.plugged = True
            self.generation += 1
            if path is not None:
                self.path = path
            self._queue.clear()
            self._next_repeat = time.monotonic()
            self.backend.cond.notify_all()

    # called by FakeHidHandle with backend.cond held
    def _next_report(self, now: float) -> bytes | None:
        if self._queue:
            return self._queue.popleft()
        if self._repeat and now >= self._next_repeat:
            r = self._repeat[self._repeat_i % len(self._repeat)]
            self._repeat_i += 1
            self._next_repeat = now + self._repeat_interval
            return r
        return None

    def _wake_at(self) -> float | None:
        return self._next_repeat if self._repeat else None


class FakeHidHandle:
    """What ``hid.device()`` returns."""

    def __init__(self, backend: FakeHidBackend) -> None:
        self.backend = backend
        self.dev: FakeHidDevice | None = None
        self.generation = -1
        self.nonblocking = False
        self.closed = False

    def _attach(self, dev: FakeHidDevice | None) -> None:
        if dev is None or dev.deny_open:
            raise OSError("open failed")
        self.dev = dev
        self.generation = dev.generation
        dev.opens += 1

    def open(self, vendor_id: int = 0, product_id: int = 0, serial_number: str | None = None) -> None:
        with self.backend.cond:
            self._attach(next((d for d in self.backend.devices if d.plugged and d.vendor_id == vendor_id
                               and d.product_id == product_id
                               and (serial_number is None or d.serial_number == serial_number)), None))

    def open_path(self, path: bytes) -> None:
        if not isinstance(path, bytes):
            raise TypeError(f"open_path takes bytes, got {type(path).__name__}")  # as cython-hidapi
        with self.backend.cond:
            self._attach(next((d for d in self.backend.devices if d.plugged and d.path.encode() == path), None))

    def _live(self) -> FakeHidDevice:
        if self.dev is None or self.closed:
            raise ValueError("not open")
        return self.dev

    def set_nonblocking(self, v: int) -> int:
        self._live()
        self.nonblocking = bool(v)
        return 0

    def read(self, max_length: int, timeout_ms: int = 0) -> list[int]:
        dev = self._live()
        if timeout_ms <= 0 and not self.nonblocking:
            raise AssertionError("read(n, 0) on a blocking hidapi handle waits forever; pass a timeout")
        deadline = time.monotonic() + timeout_ms / 1000.0
        with self.backend.cond:
            while True:
                dead = not dev.plugged or dev.generation != self.generation
                if dead and not (dev.silent_unplug and not dev.plugged):
                    raise OSError("read error")
                now = time.monotonic()
                if not dead:
                    r = dev._next_report(now)
                    if r is not None:
                        return list(r[:max_length])
                if timeout_ms <= 0 or now >= deadline:
                    return []
                wake = dev._wake_at() if not dead else None
                until = deadline if wake is None else min(deadline, max(wake, now))
                self.backend.cond.wait(max(until - now, 0.0005))

    def write(self, buff: Any) -> int:
        dev = self._live()
        data = bytes(buff)
        if not dev.plugged or dev.generation != self.generation or not dev.accepts_output:
            return -1
        dev.writes.append(data)
        return len(data)

    def close(self) -> None:
        self.closed = True


class FakeHidBackend:
    """Stands in for the ``hid`` module: ``enumerate`` and ``device``."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.devices: list[FakeHidDevice] = []
        self.handles: list[FakeHidHandle] = []
        self.enumerations = 0

    def add(self, **kwargs: Any) -> FakeHidDevice:
        dev = FakeHidDevice(self, **kwargs)
        with self.cond:
            self.devices.append(dev)
        return dev

    def enumerate(self, vendor_id: int = 0, product_id: int = 0) -> list[dict[str, Any]]:
        with self.cond:
            self.enumerations += 1
            return [d.info() for d in self.devices if d.plugged
                    and vendor_id in (0, d.vendor_id) and product_id in (0, d.product_id)]

    def device(self) -> FakeHidHandle:
        h = FakeHidHandle(self)
        self.handles.append(h)
        return h

    @property
    def open_handles(self) -> list[FakeHidHandle]:
        return [h for h in self.handles if h.dev is not None and not h.closed]
