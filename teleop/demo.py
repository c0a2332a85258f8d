"""``teleop demo`` (what ``make demo`` runs): the real teleop session on the embedded default:
the bundled humanoid in MuJoCo (headless, its own process), synthetic hands and wrists performing
a scripted task through retargeting, safety and the bus, ending with a summary (loop rate,
latency, deadline misses, faults, whether an object was lifted, the recorded episode).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["run_demo", "format_summary"]


def run_demo(port_base: int | None = None, session: str | None = None, status: str = "auto",
             on_tick: Callable[[Any, int], None] | None = None, dataset: str | None = None) -> dict:
    """Run the demo session (``sim_demo`` if bundled, else ``sim_synthetic``) for one pass of its
    synthetic script and summarise it; ``ok`` only when the whole scripted task happened and no
    fault occurred. ``port_base`` None: the default ports, or free ones when another session holds
    them (said on stderr), so the demo runs whatever else is running. ``on_tick`` also sees every
    tick (tests); ``dataset`` overrides where the episode is recorded."""
    import dataclasses
    import os
    import sys
    import time

    from teleop.bus.endpoints import DEFAULT_PORT_BASE, free_port_base
    from teleop.demo_task import task_judge
    from teleop.session.safety import LIMITS_APPLIED

    if port_base is None:
        port_base = free_port_base(DEFAULT_PORT_BASE)
        if port_base != DEFAULT_PORT_BASE:
            print(f"teleop demo: ports {DEFAULT_PORT_BASE}..{DEFAULT_PORT_BASE + 5} are in use (another session?); "
                  f"using {port_base}..{port_base + 5}", file=sys.stderr, flush=True)

    from drivers.synthetic.script import BimanualScript
    from teleop.session.config import BUNDLED_SESSIONS_DIR, load_session
    from teleop.session.session import Session

    name = session or ("sim_demo" if (BUNDLED_SESSIONS_DIR / "sim_demo.toml").is_file() else "sim_synthetic")
    cfg = load_session(name)
    cfg = dataclasses.replace(cfg, robot=dataclasses.replace(cfg.robot, port_base=port_base))
    if dataset is not None:
        cfg = dataclasses.replace(cfg, recorder=dataclasses.replace(cfg.recorder, dataset=dataset))
    scripts = {d.options.get("script", "bimanual_demo") for d in cfg.devices.values() if d.driver == "synthetic"}
    seconds = max(BimanualScript(s).duration_s for s in scripts) + 2.0 if scripts else 20.0
    if status == "auto":
        status = "tty" if sys.stderr.isatty() else "quiet"
    sess = Session(cfg, status=status, keys=False)
    script = next(iter(scripts)) if len(scripts) == 1 else None
    judge = None
    t0 = [0.0]

    def track(s: Session, tick: int) -> None:
        nonlocal judge
        st = s.robot_state
        if st is None or s.client is None:
            return
        if judge is None:
            judge = task_judge(script, tuple(s.client.spec.body_names))
            t0[0] = time.monotonic()
        judge.update(time.monotonic() - t0[0], st.body_pose)
        if on_tick is not None:
            on_tick(s, tick)

    sess.on_tick = track
    load_before, cores = os.getloadavg()[0], os.cpu_count() or 1
    summary = sess.run(seconds=seconds)
    final = summary.extra.get("final_robot_state")
    verdict = judge.verdict(final.body_pose if final is not None else None) if judge else None
    faults = {k: v for k, v in summary.faults.items() if k not in LIMITS_APPLIED}
    robot_stats = summary.extra.get("robot_stats") or {}
    failures = []
    if verdict is None:
        failures.append("no robot state reached the session")
    elif not verdict.complete:
        failures.append(f"task {verdict.task}: {verdict.problem}")
    if faults:
        failures.append("faults: " + ", ".join(f"{k} x{v}" for k, v in faults.items()))
    warnings = []
    if failures and load_before > cores:  # the 1-min average lags: named only as a likely cause
        warnings.append(f"the machine was busy before the demo started (load {load_before:.1f} on {cores} cores)")
    if not summary.held_rate:
        warnings.append(f"the loop ran at {summary.loop_hz} Hz of {summary.rate_hz:.0f} Hz: the machine is loaded")
    overruns, ticks = robot_stats.get("overruns", 0), max(1, robot_stats.get("ticks", 1))
    if overruns and (failures or overruns > 0.05 * ticks):  # a few late ticks are harmless; named when it matters
        warnings.append(f"the sim fell behind real time on {overruns} of {ticks} ticks (a loaded machine makes the "
                        "physics late and the hands miss: close other programs and run again)")
    return {
        "session": name,
        "port_base": port_base,
        "robot": summary.extra.get("robot"),
        "ok": not failures,
        "failures": failures,
        "warnings": warnings,
        "task": dataclasses.asdict(verdict) if verdict else None,
        "seconds": summary.seconds,
        "loop_hz": summary.loop_hz,
        "rate_hz": summary.rate_hz,
        "held_rate": summary.held_rate,
        "jitter_ms": summary.jitter_ms,
        "deadline_misses": summary.deadline_misses,
        "latency_ms": summary.latency_ms,
        "commands": summary.commands,
        "engaged_s": summary.engaged_s,
        "faults": faults,
        "limits_applied": {k: v for k, v in summary.faults.items() if k in LIMITS_APPLIED},
        "fault_log": summary.fault_log[-5:],
        "lift_cm": verdict.lift_cm if verdict else {},
        "episode": (summary.extra.get("episodes") or [None])[-1],
        "robot_max_gap_ms": summary.extra.get("robot_max_gap_ms"),
        "loop_mode": summary.extra.get("loop_mode"),
        "stages_ms": summary.extra.get("stages_ms"),
        "robot_overruns": robot_stats.get("overruns", 0),
        "sim_log": str(sess.sim_log) if sess.sim_log else None,
    }


def format_summary(s: dict) -> str:
    from teleop.session.trace import format_stages

    lat, jit = s["latency_ms"], s["jitter_ms"]
    lifted = ", ".join(f"{k} {v:+.1f} cm" for k, v in s["lift_cm"].items()) or "no object seen"
    latency = (f"p50 {lat['p50']} ms, p99 {lat['p99']} ms" if lat.get("p50") == lat.get("p50")  # nan: no samples
               else "n/a (no input carried capture times)")
    lines = [
        f"demo summary ({s['robot']}, session {s['session']}, {s['seconds']} s, ports {s['port_base']}.."
        f"{s['port_base'] + 5})",
        f"  loop            {s['loop_hz']} Hz of {s['rate_hz']:.0f} Hz"
        + ("" if s["held_rate"] else " (BELOW the configured rate)")
        + f", jitter p99 {jit['p99']} ms, {s['deadline_misses']} deadline misses",
        f"  latency         device capture -> robot setpoint {latency}",
        *[f"  per stage       {line}" for line in [format_stages(s.get("stages_ms") or {}, s.get("loop_mode") or "")]
          if line],
        f"  engaged         {s['engaged_s']} s, {s['commands']} commands",
        f"  objects         peak lift: {lifted}",
    ]
    task = s.get("task")
    if task:
        lines.append(f"  task            {task['task']}:")
        lines += [f"    {'ok ' if t is not None else '-- '} {what}" + (f"  ({t:.1f} s)" if t is not None else "")
                  for what, t in task["stages"]]
    lines.append(f"  faults          {', '.join(f'{k} x{v}' for k, v in s['faults'].items()) or 'none'}")
    lines += [f"    {line}" for line in s["fault_log"]]
    lines += [f"  warning         {w}" for w in s["warnings"]]
    lines.append("  result          " + ("TASK COMPLETE" if s["ok"] else "FAILED: " + "; ".join(s["failures"])))
    lines += [
        f"  episode         {s['episode'] or 'not recorded (the session has no [recorder])'}"
        + (f"  (`teleop episodes inspect {s['episode']}`)" if s["episode"] else ""),
        f"  server log      {s['sim_log']}",
    ]
    return "\n".join(lines)
