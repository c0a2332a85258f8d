"""The loop thread's real-time settings: applied and restored on the calling thread only, reported
either way, and a refusal by the kernel (a real unprivileged child process) is a report, never an
error. The [realtime] config keys are range-checked like every other number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from teleop.errors import ConfigError
from teleop.session.config import RealtimeSettings, parse_session
from teleop.session.realtime import apply, restore

BASE = {"device": {"g": {"driver": "synthetic"}}, "input": {"right": {"hand": "g"}}}
linux_root = pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0,
                                reason="needs Linux and root (the machines this runs on)")


def _on_a_thread(fn):
    """Run ``fn`` on a fresh thread (what it changes never touches the test runner's thread)."""
    out: list = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(10)
    return out[0]


def _sched() -> tuple[int, int, set[int]]:
    return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority, os.sched_getaffinity(0)


@linux_root
def test_all_three_take_effect_on_the_calling_thread_and_are_restored():
    cpu = max(os.sched_getaffinity(0))
    main_before = _sched()

    def body():
        before = _sched()
        done = apply(priority=10, cpu=cpu, lock_memory=True)
        during = _sched()
        restore(done)
        return before, done.report, during, _sched()

    before, report, during, after = _on_a_thread(body)
    assert all(r["in_effect"] for r in report.values()), report
    assert "SCHED_FIFO priority 10" in report["priority"]["why"]
    assert during[:2] == (os.SCHED_FIFO, 10) and during[2] == {cpu}
    assert after == before
    assert _sched() == main_before  # the other thread was never touched


def test_off_changes_nothing_and_says_so():
    before = _sched()
    done = apply(priority=0, cpu=-1, lock_memory=False)
    assert _sched() == before
    assert {k: r["in_effect"] for k, r in done.report.items()} == {"priority": False, "cpu": False,
                                                                   "lock_memory": False}
    assert "off (priority = 0)" in done.report["priority"]["why"]
    restore(done)
    assert _sched() == before


@linux_root
def test_a_cpu_the_kernel_refuses_is_reported_not_raised():
    bad = max(os.sched_getaffinity(0)) + 64  # no such CPU here
    done = _on_a_thread(lambda: apply(priority=0, cpu=bad, lock_memory=False))
    assert not done.report["cpu"]["in_effect"]
    assert "EINVAL" in done.report["cpu"]["why"] and "allowed CPUs" in done.report["cpu"]["why"]


_UNPRIVILEGED = """
import json, os, resource
from teleop.session.realtime import apply, restore  # imported first: nobody may not read the interpreter's files
os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))  # whatever the test runner's thread was
resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
os.setgroups([]); os.setgid(65534); os.setuid(65534)  # nobody: no CAP_SYS_NICE, no CAP_IPC_LOCK
done = apply(priority=50, cpu=-1, lock_memory=True)
restore(done)
print(json.dumps({"report": done.report, "policy": os.sched_getscheduler(0)}))
"""


@linux_root
def test_not_permitted_is_a_report_with_how_to_grant_it():
    out = subprocess.run([sys.executable, "-c", _UNPRIVILEGED], capture_output=True, text=True, timeout=30,
                         cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    rep = res["report"]
    assert res["policy"] == os.SCHED_OTHER
    assert not rep["priority"]["in_effect"] and not rep["lock_memory"]["in_effect"]
    assert rep["priority"]["why"].startswith("not permitted (EPERM")
    assert "setcap cap_sys_nice" in rep["priority"]["why"] and "rtprio" in rep["priority"]["why"]
    assert rep["lock_memory"]["why"].startswith("not permitted (EPERM") and "memlock" in rep["lock_memory"]["why"]


def test_realtime_config_keys_are_checked():
    assert parse_session(dict(BASE)).realtime == RealtimeSettings()
    cfg = parse_session({**BASE, "realtime": {"priority": 99, "cpu": min(os.sched_getaffinity(0)),
                                              "lock_memory": True}})
    assert cfg.realtime.priority == 99 and cfg.realtime.lock_memory
    for key, value in [("priority", 100), ("priority", -1), ("priority", 1.5), ("priority", float("nan")),
                       ("cpu", -2), ("cpu", float("inf"))]:
        with pytest.raises(ConfigError, match=f"'realtime.{key}'"):
            parse_session({**BASE, "realtime": {key: value}})
    with pytest.raises(ConfigError, match=r"'realtime.cpu' = 1000 is not a CPU this process may use; allowed: \["):
        parse_session({**BASE, "realtime": {"cpu": 1000}})
    with pytest.raises(ConfigError, match="realtime"):
        parse_session({**BASE, "realtime": {"fifo": 1}})
