"""Real-time settings for the control loop's thread: a SCHED_FIFO priority, a CPU to pin it to, and
locked memory (mlockall). Each is applied only where the OS permits it and reported either way
("in effect", or why not and how to grant it); nothing here ever fails a session. ``restore`` puts
back exactly what ``apply`` changed (sessions also run inside test processes and benchmarks).

Only the calling thread is changed: on Linux ``sched_setscheduler(0, ...)`` and
``sched_setaffinity(0, ...)`` act on the calling thread, so call ``apply`` from the loop's thread,
after the driver threads are started (a thread inherits its creator's policy). mlockall is per
process by nature."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Applied", "apply", "restore", "GRANT_PRIORITY", "GRANT_MEMLOCK"]

MCL_CURRENT, MCL_FUTURE = 1, 2

GRANT_PRIORITY = ("grant with `setcap cap_sys_nice+ep $(readlink -f $(which python3))`, or an rtprio limit "
                  "(`ulimit -r 99`; /etc/security/limits.conf: `<user> - rtprio 99`)")
GRANT_MEMLOCK = ("grant with `ulimit -l unlimited` (/etc/security/limits.conf: `<user> - memlock unlimited`) "
                 "or `setcap cap_ipc_lock+ep` on the interpreter")


@dataclass
class Applied:
    """What ``apply`` changed (for ``restore``) and the report for the session summary."""

    report: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy: tuple[int, int] | None = None  # the thread's previous (policy, priority)
    affinity: set[int] | None = None  # the thread's previous CPU set
    locked: bool = False


def _refusal(e: OSError, hint: str) -> str:
    """'not permitted (EPERM: ...): grant with ...', or 'refused (EINVAL: ...): <hint>'."""
    name = errno.errorcode.get(e.errno or 0, str(e.errno))
    kind = "not permitted" if e.errno in (errno.EPERM, errno.ENOMEM) else "refused"
    return f"{kind} ({name}: {os.strerror(e.errno or 0)}): {hint}"


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def apply(priority: int, cpu: int, lock_memory: bool) -> Applied:
    """``priority`` 1..99: SCHED_FIFO at that priority (0: leave the scheduler alone); ``cpu`` >= 0:
    pin the calling thread to that CPU (-1: leave it); ``lock_memory``: mlockall(current | future)."""
    done = Applied()
    rep = done.report
    if not sys.platform.startswith("linux"):
        why = f"not available on {sys.platform} (Linux only)"
        for key in ("priority", "cpu", "lock_memory"):
            rep[key] = {"in_effect": False, "why": why}
        return done

    if priority <= 0:
        rep["priority"] = {"in_effect": False, "why": "off (priority = 0)"}
    else:
        before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except OSError as e:
            rep["priority"] = {"in_effect": False, "why": _refusal(e, GRANT_PRIORITY)}
        else:
            done.policy = before
            rep["priority"] = {"in_effect": True, "why": f"SCHED_FIFO priority {priority} on the loop thread"}

    if cpu < 0:
        rep["cpu"] = {"in_effect": False, "why": "off (cpu = -1: any CPU)"}
    else:
        before_cpus = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError as e:
            rep["cpu"] = {"in_effect": False, "why": _refusal(e, f"allowed CPUs: {sorted(before_cpus)}")}
        else:
            done.affinity = before_cpus
            rep["cpu"] = {"in_effect": True, "why": f"loop thread pinned to CPU {cpu}"}

    if not lock_memory:
        rep["lock_memory"] = {"in_effect": False, "why": "off (lock_memory = false)"}
    else:
        libc = _libc()
        if libc.mlockall(MCL_CURRENT | MCL_FUTURE) != 0:
            err = ctypes.get_errno()
            rep["lock_memory"] = {"in_effect": False, "why": _refusal(OSError(err, os.strerror(err)), GRANT_MEMLOCK)}
        else:
            done.locked = True
            rep["lock_memory"] = {"in_effect": True, "why": "mlockall(MCL_CURRENT | MCL_FUTURE): no page faults"}
    return done


def restore(done: Applied) -> None:
    """Undo what ``apply`` did, on the same thread that called it (best effort: never raises)."""
    if done.locked:
        _libc().munlockall()
        done.locked = False
    if done.affinity is not None:
        try:
            os.sched_setaffinity(0, done.affinity)
        except OSError:
            pass
        done.affinity = None
    if done.policy is not None:
        policy, prio = done.policy
        try:
            os.sched_setscheduler(0, policy, os.sched_param(prio))
        except OSError:
            pass
        done.policy = None
