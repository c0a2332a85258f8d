"""load_policy, the shipped replay and bc policies on real episode folders, and `teleop policy`."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from policy_fakes import IndexPolicy, free_policy_port, make_episode

from teleop.bus.messages import PolicyAction, PolicyObservation
from teleop.cli import main
from teleop.errors import ConfigError
from teleop.policy import PolicyClient, PolicyServer, load_policy
from teleop.policy.base import PolicyError, to_action
from teleop.policy.bc import BCPolicy, build_samples, train_bc
from teleop.policy.cli import parse_options
from teleop.policy.replay import ReplayPolicy

N = 4


def _obs(q: np.ndarray, poses: np.ndarray, episode_time_s: float = 0.0, obs_id: int = 0) -> PolicyObservation:
    return PolicyObservation(obs_id=obs_id, t_ns=1, episode_time_s=episode_time_s, q=q, dq=np.zeros(len(q)),
                             command=q, object_poses=poses)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Three 1.5 s episodes with different phases and object positions; the last one has a policy
    driving, corrected by a human between 0.5 s and 1.0 s."""
    root = tmp_path_factory.mktemp("dataset")
    truths = [make_episode(root, i, seconds=1.5, phase=1.3 * i, object_xyz=(0.4 + 0.1 * i, 0.0, 0.8)) for i in (0, 1)]
    truths.append(make_episode(root, 2, seconds=1.5, phase=2.6, object_xyz=(0.6, 0.0, 0.8),
                               interventions=((0.5, 1.0),), policy=True))
    return root, truths


# -- loading ---------------------------------------------------------------------------------------

def test_load_policy_by_entry_point_and_module_attr(dataset):
    root, truths = dataset
    by_name = load_policy("replay", {"episode": str(truths[0].path), "chunk": 4})
    assert isinstance(by_name, ReplayPolicy) and by_name.chunk == 4 and by_name.n_joints == N
    by_path = load_policy("teleop.policy.replay:ReplayPolicy", {"episode": str(truths[0].path)})
    assert isinstance(by_path, ReplayPolicy)
    factory = load_policy("policy_fakes:make_index_policy", {"n_joints": 3})
    assert isinstance(factory, IndexPolicy) and factory.info()["n_joints"] == 3


@pytest.mark.parametrize(
    ("spec", "options", "match"),
    [
        ("nope", {}, r"no policy named 'nope'.*\['bc', 'replay'\]"),
        ("repaly", {}, r"Did you mean \['replay'\]"),
        ("no_such_module_xyz:Thing", {}, r"cannot import module 'no_such_module_xyz'"),
        ("policy_fakes:Missing", {}, r"has no attribute 'Missing'"),
        ("policy_fakes:not_a_policy", {}, r"not a teleop.policy.Policy subclass"),
        ("policy_fakes:IndexPolicy", {"bogus": 1}, r"options \['bogus'\] do not fit IndexPolicy"),
        ("replay", {"episode": "/nonexistent/episode"}, r"not an episode folder"),
        ("bc", {"model": "/nonexistent/model.npz"}, r"no model file"),
    ],
)
def test_bad_policy_specs_say_what_is_wrong(spec, options, match):
    with pytest.raises(ConfigError, match=match):
        load_policy(spec, options)


def test_to_action_checks_shapes_and_values():
    obs = _obs(np.zeros(3), np.zeros((0, 7)), obs_id=5)
    a = to_action(np.ones(3), obs, 0.05)
    assert a.obs_id == 5 and a.q.shape == (1, 3) and a.dt_s == 0.05
    a = to_action(PolicyAction(obs_id=99, q=np.zeros((2, 3)), dt_s=0.1), obs, 0.05)
    assert a.obs_id == 5 and a.dt_s == 0.1  # the observation's id is echoed
    with pytest.raises(PolicyError, match=r"shape \(1, 4\)"):
        to_action(np.ones(4), obs, 0.05)
    with pytest.raises(PolicyError, match="non-finite"):
        to_action(np.array([0.0, np.nan, 0.0]), obs, 0.05)
    with pytest.raises(PolicyError, match="dt_s"):
        to_action(np.ones((2, 3)), obs, 0.0)


def test_parse_options_converts_numbers_and_bools():
    assert parse_options(["k=3", "x=1.5", "fast=true", "slow=False", "model=m.npz", "e=1e-3"]) == {
        "k": 3, "x": 1.5, "fast": True, "slow": False, "model": "m.npz", "e": 1e-3}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_options(["novalue"])


# -- replay ----------------------------------------------------------------------------------------

def test_replay_returns_the_logged_commands(dataset):
    _, truths = dataset
    truth = truths[1]
    policy = ReplayPolicy(truth.path, chunk=6, dt_s=0.02)
    rel = (truth.t_cmd - truth.start_ns) / 1e9
    for t in (0.0, 0.1234, 0.5, 1.49, 3.0):
        action = policy.act(_obs(np.zeros(N), np.zeros((1, 7)), episode_time_s=t))
        want = [truth.cmd[max(0, np.flatnonzero(rel <= t + 0.02 * k)[-1])] for k in range(6)]
        np.testing.assert_array_equal(action.q, np.array(want))
        assert action.dt_s == 0.02 and action.done == (t >= rel[-1])
    again = policy.answer(_obs(np.zeros(N), np.zeros((1, 7)), episode_time_s=0.5))
    for _ in range(1000):
        assert np.array_equal(policy.answer(_obs(np.zeros(N), np.zeros((1, 7)), episode_time_s=0.5)).q, again.q)


# -- behaviour cloning -------------------------------------------------------------------------------

def test_samples_are_zero_order_hold_chunks_of_the_commands(dataset):
    root, truths = dataset
    s = build_samples([truths[0].path], fps=50, chunk=5)
    truth = truths[0]
    t0 = max(truth.t_state[0], truth.t_cmd[0])
    for i in (0, 10, 40):
        tau = t0 + round(i * 1e9 / 50)
        i_state = np.flatnonzero(truth.t_state <= tau)[-1]
        np.testing.assert_array_equal(s.features[i, :-1], np.concatenate([truth.q[i_state], truth.body_pose[i_state, :, :3]
                                                                     .ravel()]))
        for j in range(5):
            i_cmd = np.flatnonzero(truth.t_cmd <= tau + round(j * 1e9 / 50))[-1]
            np.testing.assert_array_equal(s.targets[i, j], truth.cmd[i_cmd])
    assert s.n_joints == N and s.n_bodies == 1 and s.weight.min() == 1.0
    # the last column: time since the first command, on the grid
    assert s.features[1, -1] - s.features[0, -1] == pytest.approx(0.02, abs=1e-6)


def test_intervention_and_policy_frames_are_weighted(dataset):
    root, _ = dataset
    s = build_samples([root], fps=50, chunk=5, intervention_weight=4.0, policy_weight=0.0)
    per_episode = len(s.weight) // 3
    last = slice(2 * per_episode, None)
    assert set(np.unique(s.weight[last])) == {0.0, 4.0}  # policy-authored frames drop out, corrections weigh 4
    assert (s.weight[last] == 4.0).sum() == s.intervention.sum() == 25  # 0.5 s at 50 fps
    only = build_samples([root], fps=50, chunk=5, only_interventions=True)
    assert (only.weight > 0).sum() == 25


def test_knn_reproduces_training_actions_exactly(dataset, tmp_path):
    root, _ = dataset
    report = train_bc([root], tmp_path / "knn.npz", kind="knn", chunk=5, k=3)
    assert report["train_max_err_rad"] == 0.0 and report["used_frames"] == report["frames"] - 50
    policy = load_policy("bc", {"model": str(tmp_path / "knn.npz")})
    s = build_samples([root], fps=50, chunk=5)
    used = np.flatnonzero(s.weight > 0)
    poses = np.zeros((1, 7))
    for i in used[::7]:
        poses[0, :3] = s.features[i, N:-1]
        action = policy.answer(_obs(s.q[i], poses))
        np.testing.assert_allclose(action.q, s.targets[i], rtol=0, atol=1e-12)
        assert action.dt_s == 0.02
    info = policy.info()
    assert info == {"name": "bc", "n_joints": N, "chunk": 5, "dt_s": 0.02, "kind": "knn", "model": str(tmp_path /
                                                                                                        "knn.npz")}


def test_knn_on_interventions_only(dataset, tmp_path):
    root, truths = dataset
    report = train_bc([root], tmp_path / "iv.npz", kind="knn", chunk=5, only_interventions=True)
    assert report["used_frames"] == report["intervention_frames"] == 25


def test_mlp_reproduces_training_actions_within_tolerance(dataset, tmp_path):
    root, _ = dataset
    report = train_bc([root], tmp_path / "mlp.npz", kind="mlp", chunk=5, epochs=150, batch=32, hidden=64, seed=3)
    again = train_bc([root], tmp_path / "mlp2.npz", kind="mlp", chunk=5, epochs=150, batch=32, hidden=64, seed=3)
    assert again["train_rmse_rad"] == report["train_rmse_rad"]  # deterministic with the seed
    s = build_samples([root], fps=50, chunk=5)
    used = s.weight > 0
    hold_rmse = np.sqrt(np.mean((s.targets[used] - s.q[used][:, None, :]) ** 2))  # "repeat the state" baseline
    assert report["train_rmse_rad"] < 0.01 and report["train_rmse_rad"] < 0.25 * hold_rmse
    policy = BCPolicy(tmp_path / "mlp.npz")
    poses = np.zeros((1, 7))
    errs = []
    for i in np.flatnonzero(used)[::5]:
        poses[0, :3] = s.features[i, N:-1]
        errs.append(np.abs(policy.act(_obs(s.q[i], poses)).q - s.targets[i]).max())
    assert max(errs) < 0.05
    q, first = s.q[0], policy.act(_obs(s.q[0], poses)).q
    for _ in range(1000):
        assert np.array_equal(policy.act(_obs(q, poses)).q, first)


def test_bc_refuses_an_observation_of_another_robot(dataset, tmp_path):
    root, _ = dataset
    train_bc([root], tmp_path / "m.npz", kind="knn", chunk=2)
    with pytest.raises(PolicyError, match="trained on 4 joints and 1 bodies"):
        BCPolicy(tmp_path / "m.npz").act(_obs(np.zeros(5), np.zeros((1, 7))))


def test_training_without_usable_frames_is_a_clear_error(tmp_path):
    make_episode(tmp_path, 0, seconds=0.5, policy=True)  # only policy-authored frames
    with pytest.raises(ConfigError, match="no training frames"):
        train_bc([tmp_path], tmp_path / "m.npz")
    with pytest.raises(ConfigError, match="kind"):
        train_bc([tmp_path], tmp_path / "m.npz", kind="forest")  # type: ignore[arg-type]


# -- end to end: CLI train, serve, client -------------------------------------------------------------

def test_cli_train_then_serve_bc_to_a_client(dataset, tmp_path, capsys):
    root, truths = dataset
    model = tmp_path / "model.npz"
    assert main(["policy", "train", str(root), "--out", str(model), "--chunk", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "knn" and report["episodes"] == 3 and model.is_file()

    endpoint = f"tcp://127.0.0.1:{free_policy_port()}"
    server = PolicyServer(load_policy("bc", {"model": str(model)}), endpoint)
    server.open()
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, kwargs={"stop_event": stop}, daemon=True)
    thread.start()
    try:
        assert main(["policy", "info", "--endpoint", endpoint, "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["name"] == "bc" and info["n_joints"] == N and info["chunk"] == 5
        truth = truths[0]
        i = 200  # state 200 is training frame 20 (0.4 s): the answer is that frame's command chunk
        t_ns = int(truth.t_state[i])
        out = np.zeros(N)
        with PolicyClient(endpoint, N, 1, rate_hz=200, timeout_s=0.5) as client:
            client.observe(t_ns, 0.4, truth.q[i], np.zeros(N), truth.q[i], truth.body_pose[i])
            end = time.monotonic() + 3
            while client.answers < 1 and time.monotonic() < end:
                time.sleep(0.002)
            assert client.action_at(t_ns, out)
        np.testing.assert_allclose(out, truth.cmd[np.flatnonzero(truth.t_cmd <= t_ns)[-1]], rtol=0, atol=1e-12)
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_cli_info_without_a_server_fails_clearly(capsys):
    assert main(["policy", "info", "--endpoint", f"tcp://127.0.0.1:{free_policy_port()}", "--timeout", "0.2"]) == 2
    assert "no policy server answered" in capsys.readouterr().err


def test_cli_serve_runs_for_the_given_seconds(dataset, capsys):
    _, truths = dataset
    endpoint = f"tcp://127.0.0.1:{free_policy_port()}"
    assert main(["policy", "serve", "--policy", "replay", "--option", f"episode={truths[0].path}", "--option",
                 "chunk=3", "--endpoint", endpoint, "--seconds", "0.3"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["observations"] == 0 and stats["errors"] == 0


# -- offline evaluation ------------------------------------------------------------------------------

def test_offline_evaluation_of_a_policy_on_a_recorded_episode(dataset):
    """`teleop replay EP --policy ENDPOINT`: the episode's states go to a served policy; a replay of
    the same episode answers with the executed commands (error ~0), another episode's does not."""
    import threading

    from policy_fakes import free_policy_port

    from recorder.replay import evaluate_policy
    from teleop.policy.server import PolicyServer

    _, truths = dataset
    results = []
    for source in (truths[0], truths[1]):
        endpoint = f"tcp://127.0.0.1:{free_policy_port()}"
        server = PolicyServer(ReplayPolicy(source.path, chunk=1, dt_s=0.02), endpoint)
        server.open()
        stop = threading.Event()
        t = threading.Thread(target=server.serve, kwargs={"stop_event": stop}, daemon=True)
        t.start()
        try:
            results.append(evaluate_policy(truths[0].path, endpoint, rate_hz=20))
        finally:
            stop.set()
            t.join(5)
            server.close()
    same, other = results
    assert same["answered"] == same["observations"] >= 25 and same["failed"] == 0
    assert same["error_rad_all"]["mean"] < 0.02 < other["error_rad_all"]["mean"], (same, other)
