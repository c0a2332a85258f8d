"""A fake LucidGloves firmware on a real pseudo-terminal, for driver tests.

Behaves like the LucidVR firmware (lucidgloves-firmware): it writes one record (Alpha or
legacy) and then waits up to ``reply_timeout_s`` (1 s, the Arduino Stream timeout) for a line
from the host, exactly like ``readBytesUntil('\\n', ...)`` after each send; then it sleeps
``loop_s`` (LOOP_TIME, 1 ms). Host lines shorter than 5 characters are ignored (the bare ``\\n``
reply); longer ones are parsed the way the firmware does (``atoi`` after the first occurrence of
each of A..E, absent fingers = 0) and recorded in ``ffb``; ``F``/``G``/``H`` floats in
``haptics``.

``inject(data)`` sends ``data`` as the next record; ``silent = True`` stops the records (replies
are still consumed) so ``write_raw(data)`` can put any bytes on the line (noise, a built stream).

The driver gets ``fake.path``, a stable symlink to the pty slave. ``unplug()`` closes the master
(the slave then fails with EIO, like a USB serial device that vanished) and removes the symlink;
``replug()`` makes a NEW pty and re-points the symlink, so a driver configured with ``fake.path``
reconnects to the same path.

Usage (tests in ``tests/drivers/`` import it as ``fake_lucidglove``: pytest puts that folder on
``sys.path``; ``drivers`` itself is the runtime package)::

    from fake_lucidglove import FakeLucidGlove

    with FakeLucidGlove(tmp_path / "glove") as fake:
        fake.set_state(curl=(1, 1, 1, 1, 1))
        drv = OpenGlovesDriver(OpenGlovesConfig(port=fake.path))
"""

from __future__ import annotations

import errno
import os
import re
import select
import threading
import time
import tty
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drivers.opengloves.protocol_opengloves import FLAG_BUTTONS, encode_input_alpha, encode_input_legacy

__all__ = ["FakeGloveState", "FakeLucidGlove"]

_FLAG_OF = {name: key for key, name in FLAG_BUTTONS.items()}
_GESTURES = ("trigger", "grab", "pinch")
_RX_LIMIT = 4096


@dataclass(frozen=True)
class FakeGloveState:
    """What the glove measures. ``curl`` 0..1 thumb..pinky; ``splay`` 0..1 (0.5 neutral) or None
    (firmware without USING_SPLAY); ``joints`` (finger, joint) -> 0..1 sent as ``(xAy)`` keys;
    ``joystick`` -1..1; ``buttons`` names held (joystick_click, a, b, menu, calibrate, and
    trigger/grab/pinch which are also derived from the curls when ``gestures``)."""

    curl: tuple[float, ...] = (0.0,) * 5
    splay: tuple[float, ...] | None = None
    joints: Mapping[tuple[int, int], float] = field(default_factory=dict)
    joystick: tuple[float, float] = (0.0, 0.0)
    buttons: frozenset[str] = frozenset()
    gestures: bool = True


def _atoi(s: bytes) -> int:
    m = re.match(rb"\s*([+-]?\d+)", s)
    return int(m.group(1)) if m else 0


def _atof(s: bytes) -> float:
    m = re.match(rb"\s*([+-]?(\d+\.?\d*|\.\d+))", s)
    return float(m.group(1)) if m else 0.0


class FakeLucidGlove:
    """See the module docstring. Counters (``lines_sent``, ``replies``, ``reply_timeouts``,
    ``short_lines``) are plain ints updated by the firmware thread."""

    def __init__(
        self,
        link_path: str | os.PathLike[str],
        *,
        encoding: str = "alpha",
        analog_max: int = 4095,
        loop_s: float = 0.001,
        reply_timeout_s: float = 1.0,
        state: FakeGloveState | None = None,
        script: Callable[[float], FakeGloveState] | None = None,
    ) -> None:
        if encoding not in ("alpha", "legacy"):
            raise ValueError(f"encoding={encoding!r}: 'alpha' or 'legacy'")
        self.link = Path(link_path)
        self.encoding = encoding
        self.analog_max = analog_max
        self.loop_s = loop_s
        self.reply_timeout_s = reply_timeout_s
        self.state = state or FakeGloveState()
        self.script = script
        self._inject: deque[bytes] = deque()
        self._master = -1
        self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._t0 = time.monotonic()
        self.plugged = False
        self.slave_name = ""
        self.ffb: deque[tuple[int, ...]] = deque(maxlen=10_000)
        self.haptics: deque[tuple[float, float, float]] = deque(maxlen=10_000)
        self.commands: deque[bytes] = deque(maxlen=100)
        self.host_lines: deque[bytes] = deque(maxlen=100)
        #: While True the firmware sends no records of its own (``inject`` still goes out) and
        #: only consumes the host's replies, so ``write_raw`` owns the line.
        self.silent = False
        self.reset_stats()

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return str(self.link)

    def start(self) -> FakeLucidGlove:
        self.replug()
        return self

    def close(self) -> None:
        self.unplug()

    def __enter__(self) -> FakeLucidGlove:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def replug(self) -> None:
        """A new pty (new slave name), the symlink re-pointed at it, the firmware thread started."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo/line editing before the host configures the port
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        tmp = self.link.with_name(self.link.name + ".tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(self.slave_name)
        os.replace(tmp, self.link)
        self._wake_r, self._wake_w = os.pipe()
        self._stop.clear()
        self._rx = bytearray()
        self.plugged = True
        self._thread = threading.Thread(target=self._run, name="fake-lucidglove", daemon=True)
        self._thread.start()

    def unplug(self) -> None:
        """Stop the firmware, close the pty (the host's fd then fails) and remove the symlink."""
        if not self.plugged:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                raise RuntimeError("fake glove thread did not stop")
        self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1
        if self.link.is_symlink():
            self.link.unlink()
        self.plugged = False

    # -- control -----------------------------------------------------------------------------------
    def set_state(self, **changes: Any) -> None:
        """Change what the glove measures, e.g. ``set_state(curl=(1,) * 5, buttons={"a"})``."""
        if "buttons" in changes:
            changes["buttons"] = frozenset(changes["buttons"])
        self.state = replace(self.state, **changes)

    def write_raw(self, data: bytes, chunk: int = 4096) -> None:
        """Write ``data`` to the pty master from the caller's thread, all of it (waiting while
        the host is slow): line noise, or a hand-built stream. Use with ``silent`` so the
        firmware's own records do not interleave."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._master, view[:chunk]) :]
            except BlockingIOError:
                select.select([], [self._master], [], 0.01)

    def inject(self, data: bytes) -> None:
        """Send ``data`` as the next record instead of a measured line (garbage, an over-long or
        unknown-key line). If it ends with a newline the firmware waits for a reply as usual."""
        self._inject.append(bytes(data))

    def reset_stats(self) -> None:
        self.lines_sent = 0
        self.replies = 0
        self.reply_timeouts = 0
        self.short_lines = 0
        self.dropped_writes = 0

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.002)
        return predicate()

    # -- the firmware ------------------------------------------------------------------------------
    def record(self, state: FakeGloveState) -> bytes:
        """The line the firmware sends for ``state`` (LucidVR emission order)."""
        m = self.analog_max
        half = m // 2
        curl = [round(min(max(c, 0.0), 1.0) * m) for c in state.curl]
        joy = (int((state.joystick[0] + 1.0) * m / 2), int((state.joystick[1] + 1.0) * m / 2))
        held = set(state.buttons)
        if state.gestures:  # Gesture.cpp, integer division throughout
            if curl[1] > half:
                held.add("trigger")
            if sum(curl[1:]) // 4 > half:
                held.add("grab")
            if (curl[0] + curl[1]) // 2 > half:
                held.add("pinch")
        if self.encoding == "legacy":
            return encode_input_legacy(curl, joy, held - {"menu", "calibrate"})
        trigger = (curl[1] - half) * 2 if curl[1] > half else 0
        splay = None if state.splay is None else [round(min(max(s, 0.0), 1.0) * m) for s in state.splay]
        joints = {k: round(min(max(v, 0.0), 1.0) * m) for k, v in state.joints.items()}
        return encode_input_alpha(curl, joy, trigger, [_FLAG_OF[b] for b in held], splay, joints)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._inject:
                    data = self._inject.popleft()
                elif self.silent:
                    self._drain_replies()
                    self._stop.wait(self.loop_s or 0.001)
                    continue
                else:
                    state = self.script(time.monotonic() - self._t0) if self.script else self.state
                    data = self.record(state)
                if not self._write(data):
                    if self._stop.is_set():
                        return
                    self.dropped_writes += 1
                else:
                    self.lines_sent += data.count(b"\n")
                if data.endswith(b"\n"):
                    self._wait_reply()
                if self.loop_s > 0:
                    self._stop.wait(self.loop_s)
        except OSError as exc:
            if not self._stop.is_set():
                raise RuntimeError(f"fake glove I/O failed: {exc}") from exc

    def _write(self, data: bytes) -> bool:
        view = memoryview(data)
        deadline = time.monotonic() + 0.2
        while view:
            try:
                n = os.write(self._master, view)
                view = view[n:]
            except BlockingIOError:
                if time.monotonic() > deadline or self._stop.is_set():
                    return False  # nobody reads the slave: the bytes are lost, like a full UART FIFO
                select.select([], [self._master], [], 0.01)
        return True

    def _wait_reply(self) -> bool:
        """``readBytesUntil('\\n', buf, 100)`` with the Stream timeout."""
        deadline = time.monotonic() + self.reply_timeout_s
        while True:
            nl = self._rx.find(b"\n")
            if nl >= 0:
                line = bytes(self._rx[:nl])
                del self._rx[: nl + 1]
                self.replies += 1
                self._on_host_line(line)
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self._stop.is_set():
                if not self._stop.is_set():
                    self.reply_timeouts += 1
                return False
            ready, _, _ = select.select([self._master, self._wake_r], [], [], left)
            if self._master in ready:
                try:
                    chunk = os.read(self._master, 4096)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno == errno.EIO:  # no slave open: nothing to read
                        self._stop.wait(0.01)
                        continue
                    raise
                self._rx += chunk
                if len(self._rx) > _RX_LIMIT and b"\n" not in self._rx:
                    self._rx.clear()

    def _drain_replies(self) -> None:
        """Consume whatever the host wrote (while ``silent``), line by line, without waiting."""
        try:
            self._rx += os.read(self._master, 65536)
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
        while (nl := self._rx.find(b"\n")) >= 0:
            line = bytes(self._rx[:nl])
            del self._rx[: nl + 1]
            self.replies += 1
            self._on_host_line(line)
        if len(self._rx) > _RX_LIMIT:
            self._rx.clear()

    def _on_host_line(self, line: bytes) -> None:
        if len(line) < 5:  # Main.cpp ignores short lines (the bare "\n" reply)
            self.short_lines += 1
            return
        self.host_lines.append(line)
        if b"Z" in line:
            self.commands.append(line)
            return
        if self.encoding == "legacy":
            parts = line.split(b"&")
            self.ffb.append(tuple(_atoi(p) for p in (parts + [b""] * 5)[:5]))
            return
        values = []
        for key in b"ABCDE":
            i = line.find(bytes([key]))
            v = _atoi(line[i + 1 :]) if i >= 0 else -1
            values.append(0 if v == -1 else v)  # absent fingers keep the zero-initialised value
        self.ffb.append(tuple(values))
        if b"F" in line:
            f, g, h = (_atof(line[line.find(k) + 1 :]) if k in line else 0.0 for k in (b"F", b"G", b"H"))
            self.haptics.append((f, g, h))
