"""The recorder's intake: one thread empties the lossless subscriber sockets into a queue whose
size is bounded in bytes, so the recorder's memory stays bounded whatever arrives.

ZeroMQ bounds its queues in messages, not bytes: a lossless subscriber with a million-message
high-water mark would hold gigabytes if its messages grew large and the writer fell behind.
Here the sockets are drained as fast as messages arrive (a receive is a copy, no decoding), into
a queue of at most ``budget_bytes``; past that a message is dropped and counted per topic (the
episode says so in ``dropped.overload``), never queued. The writer (the recorder's own thread)
takes batches with ``take``. The ZeroMQ receive queues stay short because they are emptied
continuously; their high-water mark (``hwm`` messages) bounds them while this thread waits.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import zmq

__all__ = ["Intake"]

_TOPIC_MAX = 256


def _topic(frame: bytes) -> str:
    cut = frame.find(b"\0", 0, _TOPIC_MAX)
    return frame[:cut].decode(errors="replace") if cut >= 0 else "?"


class Intake:
    """Receives from ``sockets`` (already subscribed; owned by this thread while it runs) into a
    queue of at most ``budget_bytes``."""

    def __init__(self, sockets: list[zmq.Socket], budget_bytes: int) -> None:
        self.sockets = sockets
        self.budget_bytes = int(budget_bytes)
        self._queue: deque[tuple[bytes, int]] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.queued_bytes = 0
        self.peak_bytes = 0  # the most the queue ever held
        self.received = 0
        self.dropped: Counter[str] = Counter()  # by topic: messages dropped because the queue was full
        self.dropped_bytes = 0
        self.error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="recorder-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Receive what is still queued in the sockets, then stop (``take`` still returns it)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._thread = None

    def take(self, max_items: int, timeout_s: float) -> list[tuple[bytes, int]]:
        """Up to ``max_items`` (frame, recv_ns) in arrival order; waits up to ``timeout_s`` for
        the first one."""
        with self._cond:
            if not self._queue and timeout_s > 0:
                self._cond.wait(timeout_s)
            out = []
            q = self._queue
            while q and len(out) < max_items:
                item = q.popleft()
                self.queued_bytes -= len(item[0])
                out.append(item)
            return out

    def __len__(self) -> int:
        return len(self._queue)

    def _run(self) -> None:
        poller = zmq.Poller()
        for sock in self.sockets:
            poller.register(sock, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(20):
                    self._receive(sock, 1000)
            for sock in self.sockets:  # what is still queued belongs to the episode too
                self._receive(sock, 1_000_000)
        except zmq.ZMQError as exc:  # the context went away under us (shutdown)
            self.error = str(exc)

    def _receive(self, sock: zmq.Socket, limit: int) -> None:
        for _ in range(limit):
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            item = (frame, time.monotonic_ns())
            n = len(frame)
            with self._cond:  # one at a time: the writer sees each message as soon as it is here
                self.received += 1
                if self.queued_bytes + n > self.budget_bytes:
                    self.dropped[_topic(frame)] += 1
                    self.dropped_bytes += n
                    continue
                self._queue.append(item)
                self.queued_bytes += n
                self.peak_bytes = max(self.peak_bytes, self.queued_bytes)
                self._cond.notify()
