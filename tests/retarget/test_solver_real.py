"""The hand solver on real human keypoints: the right hand tracked (unfiltered) in the project's real
video, retargeted like for like with dex-retargeting (unit weights, no pinch, Huber 0.02 m, the
config's smoothing) onto the bundled hand and the PSYONIC Ability hand. dex-retargeting is not
needed except by the slow test at the end: the others check invariants on the first 150 frames,
and that the adaptive solver beats the fixed trust region it replaced, in the same process
(docs/retargeting.md has the figures against dex-retargeting itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.hands import ABILITY_URDF, DEX_URDF, HAND_VIDEO, require_ability_hand, require_hand_models

from retarget.kinematics import compile_tree
from retarget.offline import retarget_sequence
from robots.description import bundled_description_path
from teleop.bench.retarget_compare import (
    DEX_HUBER_DELTA,
    compare_on_keypoints,
    fixed_trust_region,
    like_for_like_hand,
    load_compare_hand,
    residuals_mm,
    tree_to_urdf,
    video_keypoints,
)

ROOT = Path(__file__).resolve().parents[2]
ABILITY_CONFIG = ROOT / "retarget/configs/ability_hand_right.toml"
PREFIX = 150


@pytest.fixture(scope="module")
def keypoints() -> np.ndarray:
    """The first 150 frames of the real video's right hand, as tracked (no filter), wrist frame."""
    if not HAND_VIDEO.is_file():
        pytest.skip(f"the real hand video is not at {HAND_VIDEO}")
    require_hand_models()
    kp, info = video_keypoints(HAND_VIDEO, max_frames=PREFIX)
    assert kp.shape == (PREFIX, 21, 3) and info["found"] == PREFIX  # one right hand, in every frame
    return kp


def _hands() -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = [(str(bundled_description_path()), None)]
    if all(p.is_file() for p in ABILITY_URDF.values()):
        out.append((str(ABILITY_CONFIG), str(ABILITY_URDF["right"])))
    return out


def _setup(config: str, urdf: str | None):
    hc, overrides, _ = load_compare_hand(config, urdf)
    tree = compile_tree(hc.model_path, hc.wrist_frame, hc.frames, hc.joints, overrides)
    return hc, tree


def test_the_reference_urdf_written_from_our_tree_has_our_kinematics(tmp_path, monkeypatch):
    """dex-retargeting sees the hand as ``tree_to_urdf`` writes it: pinocchio's parse of that URDF
    (mimic joints as couplings) gives every frame where ours does, on random configurations."""
    configs = [(str(bundled_description_path()), None)]
    if (DEX_URDF / "robots/assembly/xarm7_ability").is_dir():
        monkeypatch.setenv("DEX_URDF", str(DEX_URDF))  # the composed xArm7 + Ability (an MJCF hand)
        configs.append((str(ROOT / "robots/xarm7_ability/xarm7_ability.toml"), None))
    for config, urdf in configs:
        hc, tree = _setup(config, urdf)
        path = tree_to_urdf(tree, tmp_path / "hand.urdf")
        again = compile_tree(path, tree.base_frame, tree.frame_names, tree.joint_names)
        assert again.joint_names == tree.joint_names
        np.testing.assert_array_equal(again.lower, tree.lower)
        np.testing.assert_array_equal(again.upper, tree.upper)
        rng = np.random.default_rng(1)
        for _ in range(20):
            q = rng.uniform(tree.lower, tree.upper)
            np.testing.assert_allclose(again.fk(q).pos, tree.fk(q).pos, atol=1e-12)
            np.testing.assert_allclose(again.fk(q).rot, tree.fk(q).rot, atol=1e-12)


@pytest.mark.parametrize("config, urdf", _hands(), ids=[Path(c).stem for c, _ in _hands()])
def test_real_keypoints_limits_exact_jumps_bounded_and_better_than_the_fixed_trust_region(keypoints, config, urdf):
    hc, tree = _setup(config, urdf)
    delta = hc.huber_delta or DEX_HUBER_DELTA
    for alpha in (1.0, 0.2):
        hand = like_for_like_hand(tree, hc, delta, alpha)
        res = retarget_sequence(hand, keypoints)
        q = res.q
        assert np.isfinite(q).all() and res.rejected_frames == 0
        assert np.all(q >= tree.lower) and np.all(q <= tree.upper)  # exactly: no slack
        jump = np.abs(np.diff(q, axis=0)).max()
        # a frame moves a joint by at most the trust radius's ceiling; through the low-pass by alpha * lead
        assert jump <= (hc.max_jump_rad if alpha == 1.0 else alpha * hc.low_pass_lead_rad) + 1e-12
        assert res.iterations is not None and res.iterations[1:].max() <= hc.frame_iters
        # the solver this replaced (one live tick per frame: max_iters, radius max_step_rad) fits worse
        fixed = fixed_trust_region(hand, keypoints)
        assert np.abs(np.diff(fixed, axis=0)).max() <= hc.max_step_rad + 1e-12
        ours, old = residuals_mm(tree, hc, q, keypoints).mean(), residuals_mm(tree, hc, fixed, keypoints).mean()
        assert ours < 0.95 * old, (ours, old)
        if alpha == 1.0:
            np.testing.assert_allclose(res.residual_m * 1e3, residuals_mm(tree, hc, q, keypoints), atol=1e-9)


def _objective(tree, hc, q, q_prev, kp, delta):
    """The frame's objective in numpy: unit-weight Huber losses (scaled to r^2 below delta) + smoothness."""
    v = hc.vectors
    pos = tree.fk(q).pos
    c = hc.smooth * float(np.sum((q - q_prev) ** 2))
    for o, t, fo, ft in zip(v.human_origin, v.human_task, v.origin_frames, v.task_frames, strict=True):
        d = np.linalg.norm(pos[tree.frame_index(ft)] - pos[tree.frame_index(fo)] - hc.scale * (kp[t] - kp[o]))
        c += d * d if d <= delta else 2 * delta * d - delta * delta
    return c


def test_a_fast_frame_is_solved_to_a_minimum_inside_a_trust_box_grown_by_its_error(keypoints):
    """numpy check of one whole-frame solve (the fastest finger motion of the prefix): the trust
    radius is max_step_rad + (largest vector error at the warm start) / 0.1 m, capped at
    max_jump_rad; the solution lies in that box and the joint limits, and no feasible nearby
    point has a lower objective."""
    hc, tree = _setup(str(bundled_description_path()), None)
    motion = np.linalg.norm(np.diff(keypoints[:, [4, 8, 12, 16, 20]], axis=0), axis=2).max(axis=1)
    k = int(np.argmax(motion)) + 1
    hand = like_for_like_hand(tree, hc, DEX_HUBER_DELTA, 1.0)
    q_prev = retarget_sequence(hand, keypoints[:k]).q[-1].copy()
    q = hand.retarget(keypoints[k], k / 30.0, per_frame=True)
    v = hc.vectors
    pos = tree.fk(q_prev).pos
    err = max(np.linalg.norm(pos[tree.frame_index(ft)] - pos[tree.frame_index(fo)] - hc.scale * (keypoints[k, t] -
                             keypoints[k, o])) for o, t, fo, ft in zip(v.human_origin, v.human_task, v.origin_frames,
                                                                       v.task_frames, strict=True))
    radius = min(hc.max_jump_rad, hc.max_step_rad + err / 0.1)
    assert radius > 2 * hc.max_step_rad  # a fast frame: the box grew
    lo, hi = np.maximum(tree.lower, q_prev - radius), np.minimum(tree.upper, q_prev + radius)
    assert np.all(q >= lo - 1e-12) and np.all(q <= hi + 1e-12)
    best = _objective(tree, hc, q, q_prev, keypoints[k], DEX_HUBER_DELTA)
    rng = np.random.default_rng(3)
    for _ in range(200):
        near = np.clip(q + rng.uniform(-0.02, 0.02, tree.nq), lo, hi)
        assert best <= _objective(tree, hc, near, q_prev, keypoints[k], DEX_HUBER_DELTA) + 1e-7


def test_iterations_go_where_the_error_is(keypoints):
    """Frames where the fingertips moved most (so the warm start is far off) get more iterations
    than the quiet half; a converged frame stops early."""
    hc, tree = _setup(str(bundled_description_path()), None)
    res = retarget_sequence(like_for_like_hand(tree, hc, DEX_HUBER_DELTA, 1.0), keypoints)
    assert res.iterations is not None
    motion = np.linalg.norm(np.diff(keypoints[:, [4, 8, 12, 16, 20]], axis=0), axis=2).max(axis=1)
    its = res.iterations[1:]
    fast, quiet = its[motion >= np.percentile(motion, 90)], its[motion <= np.median(motion)]
    assert fast.mean() > 1.5 * quiet.mean(), (fast.mean(), quiet.mean())
    assert quiet.mean() < 0.5 * hc.frame_iters


def test_bad_frames_are_rejected_counted_and_never_reach_the_command(keypoints):
    hc, tree = _setup(str(bundled_description_path()), None)
    kp = keypoints.copy()
    kp[40, 8] = np.nan  # a NaN row (a keypoint not found)
    kp[41:43] = np.nan  # whole frames without the hand
    kp[90, 3, 2] = np.inf
    hand = like_for_like_hand(tree, hc, DEX_HUBER_DELTA, 1.0)
    res = retarget_sequence(hand, kp)
    assert res.rejected_frames == 4 and np.isfinite(res.q).all()
    np.testing.assert_array_equal(res.q[40:43], np.repeat(res.q[39:40], 3, axis=0))  # the command held
    np.testing.assert_array_equal(res.q[90], res.q[89])
    assert np.isnan(res.residual_m[[40, 41, 42, 90]]).all() and res.iterations is not None
    assert (res.iterations[[40, 41, 42, 90]] == -1).all()
    # live/Python API: a wrong shape is rejected per frame the same way
    hand.reset()
    before = hand.retarget(keypoints[0], per_frame=True)
    held = hand.retarget(keypoints[1, :20], per_frame=True)
    np.testing.assert_array_equal(held, before)
    assert hand.rejected == 1
    # the comparison leaves rejected frames out of both solvers' figures and says how many
    report = compare_on_keypoints(kp[:100], bundled_description_path(), reference=False, min_seconds=0.0)
    assert report["keypoints"] == {"source": "keypoints", "frames": 100, "rejected_frames": 4}
    assert report["unfiltered"]["ours"]["rejected_frames"] == 4


def test_bench_retarget_on_keypoints_prints_both_passes_in_one_json(keypoints, tmp_path):
    np.save(tmp_path / "kp.npy", keypoints[:60])
    res = subprocess.run([sys.executable, "-m", "teleop.cli", "bench", "retarget", "--keypoints",
                          str(tmp_path / "kp.npy"), "--robot", str(bundled_description_path()), "--no-reference",
                          "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["hand"] == "dexhumanoid, right hand" and report["objective"]["huber_delta_m"] == DEX_HUBER_DELTA
    for name, alpha in (("unfiltered", None), ("low_pass", 0.1)):
        run = report[name]
        assert run["low_pass_alpha"] == alpha and run["reference"]["skipped"]
        ours = run["ours"]
        assert set(ours) >= {"residual_mm", "joint_jump_rad", "limit_violations", "frames_per_s",
                             "iterations_per_frame", "trust_box_bound_fraction"}
        assert ours["limit_violations"] == {"frames": 0, "max_rad": 0.0} and ours["frames_per_s"] > 0
    bad = subprocess.run([sys.executable, "-m", "teleop.cli", "bench", "retarget", "--hand", "x.urdf"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert bad.returncode != 0 and "--robot/--hand need --keypoints" in bad.stderr


REFERENCE_PYTHON = ROOT / ".venv-bench/bin/python"


@pytest.mark.slow
def test_beats_dex_retargeting_on_the_whole_video(monkeypatch):
    """The issue's bar, measured against dex-retargeting 0.5.0 itself (``.venv-bench``): on the
    whole video, for both hands, unfiltered and low-passed: residual and largest jump not worse,
    limits exact, at least 100x its speed (a ratio in the same run; the speed check gets a factor
    2 of slack here for a loaded machine, the benchmark reports the ratio itself)."""
    if not REFERENCE_PYTHON.exists():
        pytest.skip(f"no {REFERENCE_PYTHON} (make bench-setup)")
    if not HAND_VIDEO.is_file():
        pytest.skip(f"the real hand video is not at {HAND_VIDEO}")
    require_hand_models()
    require_ability_hand()
    monkeypatch.setenv("TELEOP_BENCH_PYTHON", str(REFERENCE_PYTHON))
    kp, _ = video_keypoints(HAND_VIDEO)
    for config, urdf in _hands():
        report = compare_on_keypoints(kp, config, hand_urdf=urdf)
        for name in ("unfiltered", "low_pass"):
            run = report[name]
            assert "error" not in run["reference"], run["reference"]
            verdict = run["ours_not_worse"]
            assert verdict["residual"] and verdict["max_jump"] and verdict["limits"], (report["hand"], name, run)
            assert run["speed_ratio"] >= 50, (report["hand"], name, run["speed_ratio"])
