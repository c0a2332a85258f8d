"""Child processes die with their parent.

A session starts the robot server and the recorder as child processes. If the session is killed
(SIGKILL, an OOM kill, a crash) they must not live on: an orphan sim would be driven by the next
session, an orphan recorder would append the next session to the dead one's episode. A parent
puts its pid in the child's environment (``child_env``); the child calls ``follow_parent`` at
start-up, which watches ``os.getppid()`` (the kernel re-parents an orphan, on every POSIX
system) and stops the child the way SIGTERM does, so it still closes cleanly (the recorder
keeps its episode). ``PR_SET_PDEATHSIG`` is not used: it fires when the parent *thread* that
started the child exits, which is not the same as the parent process dying.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

__all__ = ["PARENT_ENV", "child_env", "follow_parent"]

logger = logging.getLogger(__name__)

PARENT_ENV = "TELEOP_PARENT_PID"
POLL_S = 0.1


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process that must die with this one."""
    out = dict(os.environ if env is None else env)
    out[PARENT_ENV] = str(os.getpid())
    return out


def follow_parent(on_orphan: Callable[[], None] | None = None, grace_s: float = 30.0) -> int | None:
    """If started by a teleop parent, stop when it dies: call ``on_orphan`` (default: send
    ourselves SIGTERM), and exit hard if still alive ``grace_s`` later. Returns the parent pid
    being watched (None when not started by one)."""
    raw = os.environ.get(PARENT_ENV, "")
    if not raw.isdigit():
        return None
    parent = int(raw)
    os.environ.pop(PARENT_ENV, None)  # our own children get their own parent's pid

    def orphaned() -> None:
        logger.warning("parent process %d is gone: stopping", parent)
        if on_orphan is not None:
            on_orphan()
        else:
            os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        logger.error("still running %.0f s after the parent died: exiting", grace_s)
        os._exit(3)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_S)
        orphaned()

    if os.getppid() != parent:  # the parent died before we got here
        threading.Thread(target=orphaned, name="lifeline", daemon=True).start()
    else:
        threading.Thread(target=watch, name="lifeline", daemon=True).start()
    return parent
