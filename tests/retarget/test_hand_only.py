"""A hand without an arm (hand-only configs, `teleop retarget --hand/--config`) and dex-retargeting
key parity: the ported Ability hand config on the real URDF, the output low-pass (offline, live
loop, Python API), the Huber loss, the initial guess, the keypoint filter rule, bad keys, bad input.

The repository has no tracked keypoint file, so the keypoints are the synthetic motion set
(retarget/motions.py) at 100 Hz."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.hands import ABILITY_URDF, DEX_URDF, require_ability_hand

from retarget.bimanual import BimanualRetargeter
from retarget.config import load_hand_config, load_retarget_config
from retarget.filters import FilterConfig, KeypointFilter
from retarget.hand import HandRetargeter
from retarget.motions import keypoint_sequence
from retarget.offline import build_hand_from_config, retarget_sequence
from robots.description import bundled_description_path, load_description
from teleop.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
ABILITY = {s: ROOT / f"retarget/configs/ability_hand_{s}.toml" for s in ("left", "right")}
KP = keypoint_sequence("right")[:300]
DESC = load_description(bundled_description_path())
ROBOT_TOML = DESC.retarget_path.read_text().replace('urdf_path = "hands/',
                                                     f'urdf_path = "{DESC.model_path.parent}/hands/')


def _raw_residual_mm(hand: HandRetargeter, hc, q: np.ndarray, kp: np.ndarray) -> float:
    """Mean |robot vector - s R (human vector)| over the frames, in numpy (no pinch vectors here)."""
    vec, tree = hand.vectors, hand.tree
    scale, rot = hc.scale, np.array(hc.keypoint_rotation)
    out = []
    for qk, kk in zip(q, kp, strict=True):
        if not np.isfinite(kk).all():
            continue
        pos = tree.fk(qk).pos
        pairs = zip(vec.human_origin, vec.human_task, vec.origin_frames, vec.task_frames, strict=True)
        r = [pos[tree.frame_index(ft)] - pos[tree.frame_index(fo)] - scale * rot @ (kk[t] - kk[o])
             for o, t, fo, ft in pairs]
        out.append(np.mean(np.linalg.norm(r, axis=1)))
    return float(np.mean(out)) * 1e3


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "teleop.cli", "retarget", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)


def test_cli_retargets_the_real_ability_hand_and_reports_residuals_against_the_raw_keypoints(tmp_path):
    require_ability_hand()
    kp = KP.copy()
    kp[50:53, 8] = np.nan  # three frames with a NaN row: rejected, counted, the command held
    np.save(tmp_path / "kp.npy", kp)
    filtered = tmp_path / "filtered.toml"  # the port + a heavy keypoint filter, so filtered != raw
    filtered.write_text(ABILITY["right"].read_text() + "\n[filter.keypoints]\nmin_cutoff_hz = 1.0\nbeta = 0.0\n")
    res = _cli(["--hand", str(ABILITY_URDF["right"]), "--config", str(filtered), "--keypoints",
                str(tmp_path / "kp.npy"), "--out", str(tmp_path / "q.npy"), "--fps", "100", "--json"])
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    r = summary["results"][0]
    q = np.load(tmp_path / "q.npy")
    hc = load_hand_config(filtered, urdf=ABILITY_URDF["right"]).hand
    hand = HandRetargeter.from_config(hc)
    assert summary["side"] == "right" and r["keypoint_filter"] and r["rejected_frames"] == 3
    assert q.shape == (len(kp), 6) and np.isfinite(q).all() and r["joint_names"] == list(hand.joint_names)
    assert np.all(q >= hand.tree.lower) and np.all(q <= hand.tree.upper)
    np.testing.assert_array_equal(q[50:53], np.repeat(q[49:50], 3, axis=0))
    raw = _raw_residual_mm(hand, hc, q, kp)
    kf = KeypointFilter(FilterConfig(min_cutoff_hz=1.0, beta=0.0))
    smoothed = np.array([kf.filter(k, i / 100.0) if np.isfinite(k).all() else k for i, k in enumerate(kp)])
    assert r["residual_mm"]["mean"] == pytest.approx(raw, abs=2e-3)
    assert abs(_raw_residual_mm(hand, hc, q, smoothed) - raw) > 1.0  # so the report is not the filtered one


def test_cli_takes_the_urdf_from_an_environment_variable_and_says_when_it_is_unset(tmp_path):
    require_ability_hand()
    np.save(tmp_path / "kp.npy", KP[:100])
    env = {**os.environ, "DEX_URDF_DIR": str(DEX_URDF)}
    res = _cli(["--config", str(ABILITY["left"]), "--keypoints", str(tmp_path / "kp.npy"), "--out",
                str(tmp_path / "q.npy"), "--fps", "100", "--json"], env=env)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["side"] == "left" and not summary["results"][0]["keypoint_filter"]  # the port has no filter table
    env.pop("DEX_URDF_DIR")
    bad = _cli(["--config", str(ABILITY["left"]), "--keypoints", str(tmp_path / "kp.npy"), "--out",
                str(tmp_path / "q.npy")], env=env)
    assert bad.returncode == 2 and "${DEX_URDF_DIR}, which is not set" in bad.stderr
    both = _cli(["--robot", str(bundled_description_path()), "--config", str(ABILITY["left"]), "--keypoints",
                 str(tmp_path / "kp.npy"), "--out", str(tmp_path / "q.npy")])
    assert both.returncode == 2 and "not both" in both.stderr


def test_low_pass_offline_and_in_the_python_api_starts_from_the_first_solution():
    require_ability_hand()
    hand = build_hand_from_config(ABILITY["right"], ABILITY_URDF["right"])
    assert hand.low_pass_alpha == 0.2
    hc = load_hand_config(ABILITY["right"], urdf=ABILITY_URDF["right"]).hand
    off = HandRetargeter.from_config(dataclasses.replace(hc, low_pass_alpha=1.0))
    lp, raw = retarget_sequence(hand, KP, fps=100.0).q, retarget_sequence(off, KP, fps=100.0).q
    # the solver's warm start is the unfiltered solution (as dex-retargeting), so the two runs share it
    np.testing.assert_array_equal(lp[0], raw[0])  # no jump from the initial guess on the first frame
    np.testing.assert_allclose(lp[1:], lp[:-1] + 0.2 * (raw[1:] - lp[:-1]), atol=1e-12)
    assert np.abs(lp - raw).max() > 0.05  # observable: the commands lag and are smoother
    assert np.abs(np.diff(lp, 2, axis=0)).mean() < 0.5 * np.abs(np.diff(raw, 2, axis=0)).mean()
    for _ in range(2):  # frame by frame the same, and again from the first solution after a reset
        hand.reset()
        np.testing.assert_allclose([hand.retarget(k, per_frame=True) for k in KP[:40]], lp[:40], atol=1e-12)


def test_low_pass_in_the_live_loop(tmp_path):
    kp = np.stack([keypoint_sequence("left")[:120], keypoint_sequence("right")[:120]], axis=1)
    wp, wq = np.zeros((2, 3)), np.tile([1.0, 0, 0, 0], (2, 1))

    def run(alpha: float) -> np.ndarray:
        path = tmp_path / f"r{alpha}.toml"
        path.write_text(ROBOT_TOML.replace("low_pass_alpha = 1.0", f"low_pass_alpha = {alpha}"))
        b = BimanualRetargeter(DESC, load_retarget_config(DESC, path))
        out, qs = np.zeros(b.n_command), []
        for k in range(len(kp)):
            b.tick(k * 0.01, kp[k], wp, wq, out)
            qs.append(out[b.sides["left"].hand_slice].copy())
        return np.array(qs)

    lp, raw = run(0.3), run(1.0)
    np.testing.assert_array_equal(lp[0], raw[0])
    np.testing.assert_allclose(lp[1:], lp[:-1] + 0.3 * (raw[1:] - lp[:-1]), atol=1e-12)


def _own_fk_keypoints(hand: HandRetargeter, q: np.ndarray, scale: float) -> np.ndarray:
    tree, vec = hand.tree, hand.vectors
    pos = tree.fk(q).pos
    kp = np.zeros((21, 3))
    for o, t, fo, ft in zip(vec.human_origin, vec.human_task, vec.origin_frames, vec.task_frames, strict=True):
        kp[t] = kp[o] + (pos[tree.frame_index(ft)] - pos[tree.frame_index(fo)]) / scale
    return kp


def _huber_cost(hand: HandRetargeter, q: np.ndarray, kp: np.ndarray, scale: float, delta: float) -> float:
    """The Huber objective in numpy (cold start: no smoothness term)."""
    tree, vec = hand.tree, hand.vectors
    pos = tree.fk(q).pos
    c = 0.0
    rows = zip(vec.weights, vec.human_origin, vec.human_task, vec.origin_frames, vec.task_frames, strict=True)
    for w, o, t, fo, ft in rows:
        d = np.linalg.norm(pos[tree.frame_index(ft)] - pos[tree.frame_index(fo)] - scale * (kp[t] - kp[o]))
        c += w * (d * d if d <= delta else 2 * delta * d - delta * delta)
    return c


def test_huber_delta_changes_the_solution_on_an_outlier_frame_only():
    hc = dataclasses.replace(load_retarget_config(DESC).hands["left"], pinch_on_m=1e-9, pinch_off_m=1e-9,
                             cold_iters=200)
    ls, hu = HandRetargeter.from_config(hc), HandRetargeter.from_config(dataclasses.replace(hc, huber_delta=0.01))
    tree, vec = ls.tree, ls.vectors
    q0 = 0.5 * (tree.lower + tree.upper) + 0.3 * (tree.upper - tree.lower) * np.sin(np.arange(tree.nq))
    clean = _own_fk_keypoints(ls, q0, hc.scale)  # an exact solution exists: every residual below delta
    outlier = clean.copy()
    outlier[8] += [0.0, 0.05, 0.03]  # the index tip 6 cm off (a tracking glitch)
    q = {}
    for name, kp in (("clean", clean), ("outlier", outlier)):
        for h in (ls, hu):
            h.reset()
            q[name, h is hu] = h.retarget(kp)
    np.testing.assert_allclose(q["clean", True], q["clean", False], atol=1e-3)  # both within the solver's tol_rad
    assert np.abs(q["outlier", True] - q["outlier", False]).max() > 0.02
    # robust: the vectors that do not involve the outlier stay closer to their targets
    other = np.array([8 not in (o, t) for o, t in zip(vec.human_origin, vec.human_task, strict=True)])
    ls.reset(), hu.reset()
    ls.retarget(outlier), hu.retarget(outlier)
    assert hu.residuals_m()[other].sum() < 0.7 * ls.residuals_m()[other].sum()
    # and the IRLS solution is a stationary point of the true Huber objective (numpy, finite differences)

    def grad(qq: np.ndarray) -> float:
        cost = lambda x: _huber_cost(ls, x, outlier, hc.scale, 0.01)  # noqa: E731
        g = [(cost(qq + e) - cost(qq - e)) / 2e-6 for e in np.eye(tree.nq) * 1e-6]
        free = (qq > tree.lower + 1e-6) & (qq < tree.upper - 1e-6)
        return float(np.abs(np.array(g)[free]).max())

    assert grad(q["outlier", True]) < 1e-5 < 1e-3 < grad(q["outlier", False])


def test_initial_guess_middle_or_explicit_and_range_checked(tmp_path):
    require_ability_hand()
    hc = load_hand_config(ABILITY["right"], urdf=ABILITY_URDF["right"]).hand
    hand = HandRetargeter.from_config(hc)
    mid = 0.5 * (hand.tree.lower + hand.tree.upper)  # dex-retargeting's SeqRetargeting starts here
    np.testing.assert_array_equal(hand.q, mid)
    explicit = dataclasses.replace(hc, initial_guess="zeros", initial_qpos=(-0.5, 0.5, 0.1, 0.2, 0.3, 0.4))
    np.testing.assert_array_equal(HandRetargeter.from_config(explicit).q, explicit.initial_qpos)
    with pytest.raises(ConfigError, match=r"'hand.initial_qpos\[0\]' = 0.5 is outside the limits .* 'thumb_q1'"):
        HandRetargeter.from_config(dataclasses.replace(explicit, initial_qpos=(0.5, 0.5, 0.1, 0.2, 0.3, 0.4)))


def test_the_keypoint_filter_runs_only_when_the_config_asks(tmp_path):
    assert load_retarget_config(DESC).keypoint_filter is not None  # the bundled robot keeps filtering live
    assert BimanualRetargeter(DESC).sides["left"].hand.keypoint_filter is not None
    without = tmp_path / "without.toml"
    without.write_text(ROBOT_TOML.split("[filter.keypoints]")[0] + "[filter.wrist_position]\nmin_cutoff_hz = 2.0\n")
    assert BimanualRetargeter(DESC, load_retarget_config(DESC, without)).sides["left"].hand.keypoint_filter is None
    off = tmp_path / "off.toml"
    off.write_text(ROBOT_TOML.replace("[filter.keypoints]\n", "[filter.keypoints]\nenabled = false\n"))
    assert load_retarget_config(DESC, off).keypoint_filter is None
    hand_only = tmp_path / "hand.toml"
    hand_only.write_text(ROBOT_TOML.replace("[hand]\n", '[hand]\nside = "left"\n'))
    cfg = load_hand_config(hand_only)
    assert cfg.side == "left" and cfg.keypoint_filter == FilterConfig(min_cutoff_hz=3.0, beta=20.0, d_cutoff_hz=1.0)
    assert cfg.hand.joints == DESC.sides["left"].hand_joints and cfg.hand.wrist_frame == "left_wrist"  # from the URDF


BAD_KEYS = [
    ('type = "vector"', 'type = "position"', "position retargeting .* supported: 'vector', 'dexpilot'"),
    ("[hand]\n", '[hand]\ntarget_link_names = ["a"]\n', "'hand.target_link_names'"),
    ("[hand]\n", "[hand]\nignore_mimic_joint = true\n", "'hand.ignore_mimic_joint' = true is not supported"),
    ("[hand]\n", "[hand]\nadd_dummy_free_joint = true\n", "'hand.add_dummy_free_joint' = true"),
    ("[hand]\n", "[hand]\nhas_joint_limits = false\n", "'hand.has_joint_limits' = false is not supported"),
    ("low_pass_alpha = 1.0", "low_pass_alpha = -1", r"outside \[0, 1\] turns its filter off"),
    ("low_pass_alpha = 1.0", "low_pass_alpha = 0.0", "0 freezes its output"),
    ("[hand]\n", "[hand]\nhuber_delta = -0.01\n", "'hand.huber_delta' must be > 0"),
    ("[hand]\n", '[hand]\ninitial_guess = "random"\n', r"allowed: \['zeros', 'middle'\]"),
    ("[hand]\n", "[hand]\ninitial_qpos = [0.0]\n", "'hand.initial_qpos' must list 16 numbers"),
    ("[hand]\n", f'[hand]\ninitial_guess = "middle"\ninitial_qpos = {[0.0] * 16}\n', "both given"),
    ("[hand]\n", "[hand]\nkeypoints_to_wrist_link = [[1, 0, 0], [0, 1, 0], [0, 0, -1]]\n", "is not a rotation"),
    ('urdf_path = "', 'urdf_path = "${NO_SUCH_VARIABLE_HERE}', r"uses \$\{NO_SUCH_VARIABLE_HERE\}, which is not set"),
    ("[hand]\n", '[hand]\nfinger_tip_link_names = ["a", "b"]\n', "does not apply to type = 'vector'"),
    ('[hand]\nside = "left"\n', '[hand]\nside = "middle"\n', r"'hand.side' = 'middle'; allowed: \['left', 'right'\]"),
    ("[filter.keypoints]\n", '[filter.keypoints]\nenabled = "yes"\n', "'filter.keypoints.enabled' must be bool"),
    ("[hand]\n", "[hand]\ncolour = 1\n", "unknown key 'hand.colour'"),
    ("max_step_rad = 0.1", "max_step_rad = 0.1\nmax_jump_rad = 0.05", r"'hand.max_jump_rad' = 0.05 is below"),
    ("[hand]\n", "[hand]\nmax_jump_rad = 0\n", "'hand.max_jump_rad'"),
    ("scaling_factor = 1.15", "scaling_factor = 115",
     r"'hand.scaling_factor' must be <= 10 \(allowed: a finite number with 0 < value <= 10\), got 115"),
    ("[hand]\n", "[hand]\nlow_pass_lead_rad = 100\n", "'hand.low_pass_lead_rad'"),
    ("[hand]\n", "[hand]\nframe_iters = 0\n", "'hand.frame_iters'"),
    ("[hand]\n", "[hand]\nlow_pass_lead_rad = -1\n", "'hand.low_pass_lead_rad'"),
]


@pytest.mark.parametrize(("old", "new", "message"), BAD_KEYS, ids=[b[2][:40] for b in BAD_KEYS])
def test_bad_keys_are_clear_config_errors(tmp_path, old, new, message):
    text = ROBOT_TOML.replace("[hand]\n", '[hand]\nside = "left"\n')
    assert old in text, old
    path = tmp_path / "hand.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message) as err:
        load_hand_config(path)
    assert str(path) in str(err.value)  # names the file


def test_side_belongs_to_hand_only_configs(tmp_path):
    path = tmp_path / "robot.toml"
    path.write_text(ROBOT_TOML.replace("[hand]\n", '[hand]\nside = "left"\n'))
    with pytest.raises(ConfigError, match="'hand.side' is for hand-only configs"):
        load_retarget_config(DESC, path)


def test_dexpilot_human_indices_are_honoured_or_refused(tmp_path):
    tips = ", ".join(f'"left_{f}_tip"' for f in ("thumb", "index", "middle", "ring", "pinky"))
    base = (f'[hand]\nside = "left"\ntype = "dexpilot"\nurdf_path = "{DESC.model_path.parent}/hands/left_hand.urdf"\n'
            f"finger_tip_link_names = [{tips}]\n")
    links = ([2, 3, 4, 5, 3, 4, 5, 4, 5, 5, 0, 0, 0, 0, 0], [1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 1, 2, 3, 4, 5])
    pip = [0, 3, 6, 10, 14, 18]  # per link (wrist, tips): dex-retargeting's layout, other keypoints
    path = tmp_path / "dexpilot.toml"
    path.write_text(base + f"target_link_human_indices = {[[pip[i] for i in links[0]], [pip[i] for i in links[1]]]}\n")
    vec = load_hand_config(path).hand.vectors
    assert vec.human_task[:5] == (3, 6, 10, 14, 18) and vec.human_origin[:5] == (0,) * 5
    bad = [[pip[i] for i in links[0]], [pip[i] for i in links[1]]]
    bad[1][0] = 4  # the thumb is keypoint 3 in one vector and 4 in another
    path.write_text(base + f"target_link_human_indices = {bad}\n")
    with pytest.raises(ConfigError, match="one keypoint per link"):
        load_hand_config(path)


def test_bad_samples_are_rejected_per_frame_and_counted_never_passed_on():
    hand = HandRetargeter.from_config(load_retarget_config(DESC).hands["left"])
    kp = keypoint_sequence("left")[:20]
    q = [hand.retarget(k) for k in kp[:10]]
    nan = kp[10].copy()
    nan[12] = np.nan
    for bad in (nan, kp[10][:20], kp[10].ravel()):
        np.testing.assert_array_equal(hand.retarget(bad), q[-1])
    assert hand.rejected == 3
    assert np.isfinite(hand.retarget(kp[10])).all() and hand.rejected == 3
    # the live loop: a NaN row holds that hand's command; the other hand goes on
    b = BimanualRetargeter(DESC)
    out = np.zeros(b.n_command)
    two = np.stack([keypoint_sequence("left")[:3], keypoint_sequence("right")[:3]], axis=1)
    wp, wq = np.zeros((2, 3)), np.tile([1.0, 0, 0, 0], (2, 1))
    b.tick(0.0, two[0], wp, wq, out)
    before = out.copy()
    two[1, 0, 5] = np.nan
    b.tick(0.01, two[1], wp, wq, out)
    left, right = b.sides["left"], b.sides["right"]
    np.testing.assert_array_equal(out[left.hand_slice], before[left.hand_slice])
    assert left.hand.rejected == 1 and right.hand.rejected == 0 and np.isfinite(out).all()
