"""``teleop demo`` (what ``make demo`` runs): the real teleop session on the embedded default:
the bundled humanoid in MuJoCo (headless, its own process), synthetic hands and wrists performing
a scripted task through retargeting, safety and the bus, ending with a summary (loop rate,
latency, deadline misses, faults, whether an object was lifted, the recorded episode).
"""

from __future__ import annotations

__all__ = ["run_demo", "format_summary"]


def run_demo(port_base: int | None = None, session: str | None = None, status: str = "auto") -> dict:
    """Run the demo session (``sim_demo`` if bundled, else ``sim_synthetic``) for one pass of its
    synthetic script and summarise it. ``port_base`` None: the default ports, or free ones when
    another session holds them (said on stderr), so the demo runs whatever else is running."""
    import dataclasses
    import sys

    from teleop.bus.endpoints import DEFAULT_PORT_BASE, free_port_base

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
    scripts = {d.options.get("script", "bimanual_demo") for d in cfg.devices.values() if d.driver == "synthetic"}
    seconds = max(BimanualScript(s).duration_s for s in scripts) + 2.0 if scripts else 20.0
    if status == "auto":
        status = "tty" if sys.stderr.isatty() else "quiet"
    sess = Session(cfg, status=status, keys=False)
    peak: dict[str, float] = {}
    rest: dict[str, float] = {}

    def track(s: Session, tick: int) -> None:
        st = s.robot_state
        if st is None or s.client is None:
            return
        for i, body in enumerate(s.client.spec.body_names):
            z = float(st.body_pose[i, 2])
            rest.setdefault(body, z)
            peak[body] = max(peak.get(body, z), z)

    sess.on_tick = track
    summary = sess.run(seconds=seconds)
    lift_cm = {b: round((peak[b] - rest[b]) * 100, 1) for b in rest}
    final = summary.extra.get("final_robot_state")
    final_cm = {}
    if final is not None and sess.client is not None:
        final_cm = {b: round((float(final.body_pose[i, 2]) - rest[b]) * 100, 1) for i, b in enumerate(sess.client.spec.body_names)}
    return {
        "session": name,
        "port_base": port_base,
        "robot": summary.extra.get("robot"),
        "seconds": summary.seconds,
        "loop_hz": summary.loop_hz,
        "rate_hz": summary.rate_hz,
        "held_rate": summary.held_rate,
        "jitter_ms": summary.jitter_ms,
        "deadline_misses": summary.deadline_misses,
        "latency_ms": summary.latency_ms,
        "commands": summary.commands,
        "engaged_s": summary.engaged_s,
        "faults": {k: v for k, v in summary.faults.items() if k not in ("clamped", "rate_limited")},
        "fault_log": summary.fault_log[-5:],
        "lift_cm": lift_cm,
        "final_height_cm": final_cm,
        "lifted": any(v >= 5.0 for v in lift_cm.values()),
        "episode": (summary.extra.get("episodes") or [None])[-1],
        "robot_max_gap_ms": summary.extra.get("robot_max_gap_ms"),
        "sim_log": str(sess.sim_log) if sess.sim_log else None,
    }


def format_summary(s: dict) -> str:
    lat, jit = s["latency_ms"], s["jitter_ms"]
    lifted = ", ".join(f"{k} {v:+.1f} cm" for k, v in s["lift_cm"].items())
    faults = ", ".join(f"{k} {v}" for k, v in s["faults"].items()) or "none"
    return "\n".join(
        [
            f"demo summary ({s['robot']}, session {s['session']}, {s['seconds']} s, ports {s['port_base']}.."
            f"{s['port_base'] + 5})",
            f"  loop            {s['loop_hz']} Hz of {s['rate_hz']:.0f} Hz"
            + ("" if s["held_rate"] else " (BELOW the configured rate)")
            + f", jitter p99 {jit['p99']} ms, {s['deadline_misses']} deadline misses",
            f"  latency         device capture -> robot setpoint p50 {lat['p50']} ms, p99 {lat['p99']} ms",
            f"  engaged         {s['engaged_s']} s, {s['commands']} commands",
            f"  objects         peak lift: {lifted}",
            f"  result          {'object lifted' if s['lifted'] else 'NO object lifted'}; faults: {faults}",
            f"  episode         {s['episode'] or 'not recorded (the session has no [recorder])'}"
            + (f"  (`teleop episodes inspect {s['episode']}`)" if s["episode"] else ""),
            f"  server log      {s['sim_log']}",
        ]
    )
