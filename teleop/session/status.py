"""The live status of a session: a snapshot the loop refreshes ~10 times a second and a printer
thread that shows it (a few terminal lines, or one JSON object per line for scripts)."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Literal

__all__ = ["StatusPrinter"]


class StatusPrinter:
    def __init__(self, mode: Literal["tty", "json", "quiet"] = "tty", interval_s: float = 0.25) -> None:
        self.mode = mode
        self.interval_s = interval_s if mode != "json" else 1.0
        self._snapshot: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lines = 0

    def publish(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            self._snapshot = snapshot

    def start(self) -> None:
        if self.mode == "quiet":
            return
        self._thread = threading.Thread(target=self._run, name="status", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self.mode == "tty" and self._lines:
            sys.stderr.write("\n")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                snap = dict(self._snapshot)
            if not snap:
                continue
            if self.mode == "json":
                print(json.dumps(snap, separators=(",", ":")), flush=True)
            else:
                self._draw(snap)

    def _draw(self, s: dict[str, Any]) -> None:
        lat = s.get("latency_ms", {})
        lines = [
            f"[{s.get('state', '?'):>9}] loop {s.get('loop_hz', 0):6.1f} Hz  misses {s.get('deadline_misses', 0)}  "
            f"jitter p99 {s.get('jitter_ms_p99', 0):.2f} ms  latency p50 {lat.get('p50', float('nan')):.2f} "
            f"p99 {lat.get('p99', float('nan')):.2f} ms  robot {s.get('robot_mode', '?')}",
            "inputs  " + "  ".join(f"{k} {v['hz']:.0f}Hz/{v['age_ms']:.0f}ms" for k, v in s.get("inputs", {}).items()),
            "faults  " + (s.get("last_fault") or "none") + f"  (total {s.get('fault_count', 0)})"
            + ("   keys: space engage  e e-stop  r release  q quit" if s.get("keys") else ""),
        ]
        out = ""
        if self._lines:
            out += f"\x1b[{self._lines}F"  # back to the first line of the block
        out += "".join(f"\x1b[2K{line}\n" for line in lines)
        sys.stderr.write(out)
        sys.stderr.flush()
        self._lines = len(lines)
