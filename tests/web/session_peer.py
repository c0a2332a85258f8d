"""A peer of a session under test (a console, a page, a browser) in its own thread, since the
session's loop has the main one: it waits for the session's web server and devices, does its
part, and stops the session when done or failed; ``run_session`` runs both and reports."""

from __future__ import annotations

import threading
import time


class SessionPeer(threading.Thread):
    def __init__(self, session) -> None:
        super().__init__(daemon=True)
        self.session = session
        self.error: BaseException | None = None

    def act(self, server) -> None:  # what the peer does, with the session's running web server
        raise NotImplementedError

    def run(self) -> None:
        try:
            deadline = time.monotonic() + 60
            s = self.session
            while s.web is None or s.web.server is None or not s.web.server.port or not s.devices:
                if time.monotonic() > deadline:
                    raise TimeoutError("the session's web server never came up")
                time.sleep(0.05)
            self.act(s.web.server)
        except BaseException as exc:  # reported by run_session
            self.error = exc
        finally:
            time.sleep(0.2)  # the session's last ticks see what the peer did last
            self.session.stop()


def run_session(session, peer: SessionPeer, seconds: float = 90.0):
    """The session's summary once it and ``peer`` are done; the peer's error fails the test."""
    peer.start()
    summary = session.run(seconds=seconds)
    peer.join(10)
    assert peer.error is None, f"{peer.error!r}; {summary.fault_log}"
    return summary
