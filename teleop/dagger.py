"""``teleop dagger``: HG-DAgger rounds on the bundled pick task in simulation.

* Task: the bundled humanoid's right hand picks the bottle up (lifted 5 cm or more when the
  episode ends). Every episode starts from the home keyframe with the bottle moved by a random
  (seeded) shift of up to ``shift_m`` in x and y.
* Operator: the synthetic operator (the ``pick_handover`` script's pick, shifted to where the
  bottle is), driving the robot through the whole runtime (drivers, retargeting, safety, bus).
* Round 0: the operator demonstrates; the reference behaviour-cloning policy (kNN) is trained.
* Round r: the policy drives (served by ``teleop policy serve`` in its own process); the operator
  watches and takes over when the robot's command drifts from what the operator would command
  (right arm, by more than ``drift_rad`` for 50 ms), and hands back once it has followed for
  0.5 s. Every episode is recorded (``intervention`` flags, the policy's proposals); the policy is
  retrained on all episodes so far, interventions weighted (HG-DAgger).
* Per round: success rate (task done, whoever drove), autonomous success rate (done without any
  takeover), intervention rate (the share of driven ticks the human had), and the evaluation
  success rate of the round's retrained policy driving alone from a fixed set of starts that is
  never trained on (``eval_success_rate``; round 0: the policy trained on the demonstrations), and
  the best so far (``best_eval_success_rate``, ``best``): like DAgger (Ross et al. 2011), the run
  returns the best of its policies on those starts, while each round's rollouts use the newest.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from teleop.errors import ConfigError, TeleopError

__all__ = ["run_dagger", "SESSION_TEMPLATE"]

logger = logging.getLogger(__name__)

# The pick of `pick_handover`: engage, reach, approach, grasp, squeeze, lift (about 6.6 s), then hold.
EPISODE_S = 8.0
# the kNN is conditioned on the time since the rollout started this strongly: the pick pauses (the arm
# still while the hand closes), and corrections hold poses longer than the demonstrations did
TIME_WEIGHT = 10.0
SESSION_TEMPLATE = """
[session]
rate_hz = 500

[robot]
kind = "bridge"
rpc = "{rpc}"

[device.left]
driver = "synthetic"
options = {{ side = "left", rate_hz = 250, script = "pick_handover", loop = false }}

[device.right]
driver = "synthetic"
options = {{ side = "right", rate_hz = 250, script = "pick_handover", loop = false, shift_m = [{dx}, {dy}, 0.0] }}

[input.left]
hand = "left"
wrist = "left"

[input.right]
hand = "right"
wrist = "right"

[controls]
engage = ["auto"]

[safety]
max_start_distance_rad = 3.5

[haptics]
enabled = false

[recorder]
enabled = true
dataset = "{dataset}"
task = "pick up the bottle"
preset = "ultrafast"

[policy]
enabled = {policy}
endpoint = "{policy_endpoint}"
recentre_on_takeover = false
"""


def _stop(proc: subprocess.Popen | None) -> None:
    from robots.mujoco_sim.process import stop_process

    stop_process(proc, 15.0)


class _Operator:
    """The on_tick hook: watches the policy's command against the operator's own (the session's
    retargeted target), takes over on drift and hands back once the robot follows again."""

    def __init__(self, drift_rad: float, rate_hz: float, enabled: bool) -> None:
        self.drift, self.enabled = drift_rad, enabled
        self.arm: slice | None = None
        self.over = 0
        self.under = 0
        self.take_after = max(1, int(0.05 * rate_hz))
        self.return_after = int(0.5 * rate_hz)
        self.human_ticks = 0
        self.policy_ticks = 0
        self.takeovers = 0
        self.height: dict[str, float] = {}  # the newest height of each body (success = at the end)
        self.rest: dict[str, float] = {}

    def __call__(self, s: Any, tick: int) -> None:
        st = s.robot_state
        if st is not None and s.client is not None:
            for i, body in enumerate(s.client.spec.body_names):
                self.rest.setdefault(body, float(st.body_pose[i, 2]))
                self.height[body] = float(st.body_pose[i, 2])
        if s.state in ("ramping", "engaged"):
            self.human_ticks += 1
        elif s.state in ("policy", "returning"):
            self.policy_ticks += 1
        if not self.enabled:
            return
        if self.arm is None:
            self.arm = s._retarget_sides["right"].arm_slice
        if s._recentre_pending:  # the operator's mapping is not set yet: nothing to compare with
            return
        err = float(np.max(np.abs(s.command[self.arm] - s.target[self.arm])))
        if s.state == "policy":
            self.over = self.over + 1 if err > self.drift else 0
            if self.over >= self.take_after:
                s.request("takeover")
                self.takeovers += 1
                self.over = 0
        elif s.state == "engaged" and s.intervening:
            self.under = self.under + 1 if err < self.drift / 4 else 0
            if self.under >= self.return_after:
                s.request("return")
                self.under = 0

    def lift_cm(self, body: str = "bottle") -> float:
        return round((self.height.get(body, 0.0) - self.rest.get(body, 0.0)) * 100, 2)


def _episode(rpc: str, client: Any, dataset: Path, shift: np.ndarray, policy_endpoint: str | None, drift_rad: float,
             tmp: Path, name: str, intervene: bool = True) -> dict[str, Any]:
    from teleop.session.config import load_session
    from teleop.session.session import Session

    client.reset(bottle_dx=float(shift[0]), bottle_dy=float(shift[1]))
    time.sleep(0.3)  # the bottle settles on the table
    path = tmp / f"{name}.toml"
    path.write_text(SESSION_TEMPLATE.format(rpc=rpc, dx=float(shift[0]), dy=float(shift[1]), dataset=dataset,
                                            policy="true" if policy_endpoint else "false",
                                            policy_endpoint=policy_endpoint or "tcp://127.0.0.1:7630"))
    cfg = load_session(str(path))
    sess = Session(cfg, status="quiet", keys=False)
    op = _Operator(drift_rad, cfg.rate_hz, policy_endpoint is not None and intervene)
    sess.on_tick = op
    summary = sess.run(seconds=EPISODE_S)
    lift = op.lift_cm()
    success = lift >= 5.0
    # label the episode for training and for the dataset
    if sess.episodes:
        from recorder.episode import read_meta, write_meta

        folder = Path(sess.episodes[-1])
        meta = read_meta(folder)
        meta["outcome"] = "success" if success else "failure"
        meta["dagger"] = {"shift_m": [float(shift[0]), float(shift[1])], "lift_cm": lift, "takeovers": op.takeovers}
        write_meta(folder, meta)
    driven = op.human_ticks + op.policy_ticks
    return {
        "episode": sess.episodes[-1] if sess.episodes else None,
        "shift_m": [round(float(shift[0]), 4), round(float(shift[1]), 4)],
        "lift_cm": lift,
        "success": success,
        "takeovers": op.takeovers,
        "intervention_rate": round(op.human_ticks / driven, 4) if policy_endpoint and driven else None,
        "loop_hz": summary.loop_hz,
        "policy": summary.extra.get("policy"),
    }


def run_dagger(rounds: int = 2, demos: int = 3, episodes: int = 3, *, evals: int = 3, seed: int = 0,
               shift_m: float = 0.02, out: Path | None = None, port_base: int = 7700, drift_rad: float = 0.06,
               kind: str = "knn", intervention_weight: float = 5.0) -> dict:
    from robots.mujoco_sim.process import connect_when_ready, start_sim_process
    from teleop.bus.endpoints import RobotEndpoints
    from teleop.policy.bc import train_bc

    if rounds < 1 or demos < 1 or episodes < 1:
        raise ConfigError("rounds, demos and episodes must be >= 1")
    out = Path(out or tempfile.mkdtemp(prefix="teleop-dagger-")).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "sessions"
    tmp.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    # one fixed set of evaluation starts for every round, from its own stream of the seed
    eval_shifts = np.random.default_rng([seed, 1]).uniform(-shift_m, shift_m, (evals, 2))
    rpc = RobotEndpoints.on(port_base=port_base).rpc
    policy_endpoint = f"tcp://127.0.0.1:{port_base + 20}"
    sim_log = out / "sim.log"
    sim = start_sim_process(port_base, sim_log, ["--cameras", "none"])
    report: dict[str, Any] = {"out": str(out), "seed": seed, "shift_m": shift_m, "rounds": []}
    try:
        client = connect_when_ready(rpc, sim, sim_log, source="dagger")
        t0 = time.monotonic()
        # round 0: demonstrations
        rows = [_episode(rpc, client, out / "round_00", rng.uniform(-shift_m, shift_m, 2), None, drift_rad, tmp,
                         f"demo_{i}") for i in range(demos)]
        report["rounds"].append(_round_summary(0, rows, policy=False))
        trained = _train(train_bc, out, 0, kind, seed, intervention_weight)
        report["rounds"][-1]["trained_on"] = trained
        best: dict[str, Any] | None = None
        for r in range(0, rounds + 1):
            server = subprocess.Popen([sys.executable, "-m", "teleop.cli", "policy", "serve", "--policy", "bc",
                                       "--option", f"model={out / f'policy_{r:02d}.npz'}", "--endpoint",
                                       policy_endpoint], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            try:
                time.sleep(1.0)
                if server.poll() is not None:
                    raise TeleopError(f"the policy server exited (code {server.returncode})")
                # evaluate the policy of this round alone, on the fixed starts (not used for training)
                ev = [_episode(rpc, client, out / "eval" / f"policy_{r:02d}", sh, policy_endpoint, drift_rad, tmp,
                               f"eval{r}_{i}", intervene=False) for i, sh in enumerate(eval_shifts)]
                rate = round(sum(x["success"] for x in ev) / len(ev), 3)
                report["rounds"][-1]["eval_success_rate"] = rate
                report["rounds"][-1]["eval_lift_cm"] = [x["lift_cm"] for x in ev]
                # DAgger returns the best policy of its iterations on validation (Ross et al. 2011);
                # the newest one is what the next round's rollouts use
                if best is None or rate > best["eval_success_rate"]:
                    best = {"round": r, "eval_success_rate": rate, "model": str(out / f"policy_{r:02d}.npz")}
                report["rounds"][-1]["best_eval_success_rate"] = best["eval_success_rate"]
                report["best"] = dict(best)
                if r == rounds:
                    break
                # collect: the policy drives, the operator corrects
                rows = [_episode(rpc, client, out / f"round_{r + 1:02d}", rng.uniform(-shift_m, shift_m, 2),
                                 policy_endpoint, drift_rad, tmp, f"r{r + 1}_{i}") for i in range(episodes)]
            finally:
                _stop(server)
            report["rounds"].append(_round_summary(r + 1, rows, policy=True))
            report["rounds"][-1]["trained_on"] = _train(train_bc, out, r + 1, kind, seed, intervention_weight)
        report["seconds"] = round(time.monotonic() - t0, 1)
        client.disconnect()
    finally:
        _stop(sim)
    (out / "dagger.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def _train(train_bc: Any, out: Path, r: int, kind: str, seed: int, intervention_weight: float = 5.0) -> dict[str, Any]:
    """Aggregate every recorded round so far (successful demos and all policy rounds) and retrain."""
    from recorder.episode import list_episodes

    paths = []
    for d in sorted(out.glob("round_*")):  # (eval/ rollouts are never trained on)
        for e in list_episodes(d):
            if d.name == "round_00" and e.outcome != "success":
                continue  # a failed demonstration teaches the failure
            paths.append(e.path)
    if not paths:
        raise TeleopError("no successful demonstration to train on: the scripted operator failed every pick")
    rep = train_bc(paths, out / f"policy_{r:02d}.npz", kind=kind, seed=seed, time_weight=TIME_WEIGHT,  # type: ignore[arg-type]
                   intervention_weight=intervention_weight)
    return {"episodes": len(paths), "frames": rep.get("used_frames"), "intervention_frames": rep.get("intervention_frames"),
            "model": str(out / f"policy_{r:02d}.npz")}


def _round_summary(r: int, rows: list[dict[str, Any]], policy: bool) -> dict[str, Any]:
    n = len(rows)
    out: dict[str, Any] = {
        "round": r,
        "driver": "policy+operator" if policy else "operator",
        "episodes": n,
        "success_rate": round(sum(x["success"] for x in rows) / n, 3),
        "lift_cm": [x["lift_cm"] for x in rows],
    }
    if policy:
        out["autonomous_success_rate"] = round(sum(x["success"] and x["takeovers"] == 0 for x in rows) / n, 3)
        rates = [x["intervention_rate"] or 0.0 for x in rows]
        out["intervention_rate"] = round(float(np.mean(rates)), 4)
        out["takeovers"] = [x["takeovers"] for x in rows]
    out["detail"] = rows
    return out


def main_json(args: Any) -> int:  # pragma: no cover - thin CLI wrapper
    rep = run_dagger(args.rounds, args.demos, args.episodes, evals=args.evals, seed=args.seed, shift_m=args.shift, out=args.out,
                     port_base=args.port_base, drift_rad=args.drift, kind=args.kind,
                     intervention_weight=args.intervention_weight)
    brief = {k: v for k, v in rep.items() if k != "rounds"}
    brief["rounds"] = [{k: v for k, v in r.items() if k != "detail"} for r in rep["rounds"]]
    print(json.dumps(brief if not args.verbose_json else rep, indent=None if args.json else 1))
    return 0


__all__ += ["main_json"]
