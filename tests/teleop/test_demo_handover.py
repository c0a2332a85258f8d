"""The ``teleop demo`` session end to end (sim_demo: the bundled humanoid in MuJoCo driven by the
synthetic ``pick_handover`` script through retargeting, safety and the bus): the right hand lifts
the bottle, hands it to the left hand, which holds it alone and sets it down upright.

Runs the script in real time (~26 s of session, under 40 s with the sim start-up), so marked
slow."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from support.ports import free_port_base

from robots.mujoco_sim.model import load_sim_model
from teleop.demo import format_summary, run_demo
from teleop.session.session import Session

EVERY = 10  # record every 10th tick (50 Hz at 500 Hz)


def _bottle_contacts(model: mujoco.MjModel, data: mujoco.MjData, bottle: int) -> set[str]:
    """Names of the bodies in contact with the bottle."""
    out = set()
    for c in data.contact[: data.ncon]:
        b1, b2 = model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2]
        if bottle in (b1, b2):
            out.add(model.body(b2 if b1 == bottle else b1).name)
    return out


@pytest.mark.slow
def test_sim_demo_hands_the_bottle_over_and_sets_it_down_upright(tmp_path):
    rec: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    sessions: list[Session] = []

    def track(s: Session, tick: int) -> None:
        st = s.robot_state
        if not sessions:
            sessions.append(s)
        if st is not None and tick % EVERY == 0:
            rec.append((st.q.copy(), st.body_pose.copy(), st.fingertip_force.copy()))

    # what `teleop demo` runs and judges, with its verdict checked here against the contacts
    result = run_demo(port_base=free_port_base(), dataset=str(tmp_path / "demo"), status="quiet", on_tick=track)
    [sess] = sessions
    assert sess.client is not None and len(rec) > 100
    spec = sess.client.spec
    cfg = sess.config
    assert result["ok"], format_summary(result)
    assert [t is not None for _, t in result["task"]["stages"]] == [True] * 4
    assert not result["faults"], f"faults: {result['faults']}; log: {result['fault_log']}"

    # Rebuild each recorded state in a local copy of the sim model (the commanded joints, the DIP
    # joints from their equality coupling, the free bodies) to see who touches the bottle.
    model = load_sim_model(cfg.robot_description).model
    data = mujoco.MjData(model)
    jadr = np.array([model.jnt_qposadr[model.joint(n).id] for n in spec.joint_names])
    badr = [model.jnt_qposadr[model.joint(b).id] for b in spec.body_names]
    couple = [(model.jnt_qposadr[model.eq_obj1id[i]], model.jnt_qposadr[model.eq_obj2id[i]], model.eq_data[i][:2])
              for i in range(model.neq) if model.eq_type[i] == mujoco.mjtEq.mjEQ_JOINT]
    bottle_body = model.body("bottle").id
    bi = list(spec.body_names).index("bottle")
    right_tips = [i for i, n in enumerate(spec.fingertip_names) if n.startswith("right")]

    z, tilt_deg, right_touch, left_touch = [], [], [], []
    mat = np.empty(9)
    for q, bodies, tip_force in rec:
        data.qpos[jadr] = q
        for adr, pose in zip(badr, bodies, strict=True):
            data.qpos[adr:adr + 7] = pose[:7]
        for a1, a2, (c0, c1) in couple:
            data.qpos[a1] = c0 + c1 * data.qpos[a2]
        mujoco.mj_forward(model, data)
        touching = _bottle_contacts(model, data, bottle_body)
        z.append(float(bodies[bi, 2]))
        mujoco.mju_quat2Mat(mat, bodies[bi, 3:7] / np.linalg.norm(bodies[bi, 3:7]))
        tilt_deg.append(float(np.degrees(np.arccos(np.clip(mat[8], -1.0, 1.0)))))
        right_force = bool(np.abs(tip_force[right_tips]).sum() > 0)
        right_touch.append(right_force or any(n.startswith("right_") for n in touching))
        left_touch.append(any(n.startswith("left_") for n in touching))
    z_arr = np.array(z)
    rest = z_arr[0]

    # 1. the right hand lifts it (>= 5 cm while touching it)
    lifted_by_right = max((zz - rest for zz, r in zip(z, right_touch, strict=True) if r), default=0.0)
    assert lifted_by_right >= 0.05, f"right-hand lift {lifted_by_right * 100:.1f} cm"

    # 2. the left hand alone holds it >= 5 cm above its resting height for >= 1 s
    dt = EVERY / cfg.rate_hz
    best = run = 0.0
    for zz, r, lt in zip(z, right_touch, left_touch, strict=True):
        run = run + dt if (lt and not r and zz >= rest + 0.05) else 0.0
        best = max(best, run)
    assert best >= 1.0, f"left hand alone held the bottle >= 5 cm up for only {best:.2f} s"

    # 3. set down upright on the table (not fallen over, not on the floor)
    assert abs(z_arr[-1] - rest) <= 0.01, f"final bottle height {z_arr[-1]:.3f} m, rest {rest:.3f} m"
    assert tilt_deg[-1] < 10.0, f"final bottle tilt {tilt_deg[-1]:.1f} deg"
    assert not any(left_touch[-10:]) and not any(right_touch[-10:]), "a hand still touches the bottle at the end"

    # the demo is recorded: one complete episode with the head camera's video
    from recorder.episode import list_episodes

    [ep] = list_episodes(tmp_path / "demo")
    assert ep.status == "complete" and ep.frames.get("head_cam", 0) > 50, ep
    assert result["episode"] == ep.path
