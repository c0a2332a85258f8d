"""Keys from the terminal the session runs in (engage, e-stop, release): a thread reads stdin in
cbreak mode when it is a terminal and queues key names ("space", "enter" or the character)."""

from __future__ import annotations

import os
import select
import sys
import threading
from collections import deque

__all__ = ["KeyReader"]


class KeyReader:
    def __init__(self) -> None:
        self.keys: deque[str] = deque(maxlen=64)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._saved = None
        self.active = False

    def start(self) -> bool:
        """Start if stdin is a terminal; returns whether keys are live."""
        if not sys.stdin.isatty():
            return False
        try:
            import termios
            import tty

            fd = sys.stdin.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except (ImportError, OSError):
            return False
        self.active = True
        self._thread = threading.Thread(target=self._run, name="keys", daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        fd = sys.stdin.fileno()
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            ch = os.read(fd, 1).decode(errors="ignore")
            if ch:
                self.keys.append({" ": "space", "\n": "enter", "\r": "enter"}.get(ch, ch.lower()))

    def drain(self) -> list[str]:
        out = list(self.keys)
        self.keys.clear()
        return out

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        if self._saved is not None:
            import termios

            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved)
            self._saved = None
        self.active = False
