"""PolicyServer and PolicyClient over real ZeroMQ REQ/REP on loopback (ports 7641..7660)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from policy_fakes import ArrayPolicy, IndexPolicy, free_policy_port

from teleop.bus import Bus, Reply, Request
from teleop.bus.messages import PolicyAction, PolicyObservation
from teleop.errors import ConfigError, LinkTimeoutError
from teleop.policy import PolicyClient, PolicyServer

N, B = 4, 1
POSES = np.array([[0.4, 0.0, 0.8, 1.0, 0.0, 0.0, 0.0]])


class Served:
    def __init__(self, server: PolicyServer, thread: threading.Thread, stop: threading.Event) -> None:
        self.server, self.thread, self.stop = server, thread, stop

    @property
    def endpoint(self) -> str:
        return self.server.endpoint


@pytest.fixture
def serve() -> Iterator:
    """serve(policy) -> Served: a PolicyServer on a free port in its own thread, stopped after the test."""
    running: list[Served] = []

    def start(policy) -> Served:
        server = PolicyServer(policy, f"tcp://127.0.0.1:{free_policy_port()}")
        server.open()  # bound before the client connects: the port is taken now
        stop = threading.Event()
        thread = threading.Thread(target=server.serve, kwargs={"stop_event": stop}, daemon=True)
        thread.start()
        served = Served(server, thread, stop)
        running.append(served)
        return served

    yield start
    for s in running:
        s.stop.set()
        s.thread.join(timeout=5)
        s.server.close()


def _observe(client: PolicyClient, t_ns: int, value: float = 0.0) -> None:
    q = np.full(N, value)
    client.observe(t_ns, 0.0, q, np.zeros(N), q, POSES)


def _wait(cond, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.002)


def test_server_answers_observations_info_and_reset(serve):
    policy = IndexPolicy(n_joints=N, chunk=5, dt_s=0.02, start_s=0.01)
    s = serve(policy)
    with Bus("test") as bus:
        rpc = bus.rpc_client(s.endpoint, timeout_s=2.0)
        obs = PolicyObservation(obs_id=41, t_ns=123, episode_time_s=0.5, q=np.zeros(N), dq=np.zeros(N),
                                command=np.zeros(N), object_poses=POSES)
        answer = rpc.call(obs)
        assert isinstance(answer, PolicyAction)
        assert answer.obs_id == 41 and answer.dt_s == 0.02 and answer.start_s == 0.01
        np.testing.assert_array_equal(answer.q, policy.rows)
        info = rpc.call(Request(op="info"))
        assert isinstance(info, Reply) and info.ok
        assert info.values == {"name": "index", "n_joints": N, "chunk": 5, "dt_s": 0.02}
        assert rpc.call(Request(op="reset", args={"task": "pour"})).ok and policy.tasks == ["pour"]
        bad = rpc.call(Request(op="fly"))
        assert not bad.ok and "info" in bad.error and "reset" in bad.error
    assert s.server.stats["answers"] == 1


def test_bare_array_is_wrapped_with_the_policy_dt(serve):
    s = serve(ArrayPolicy(n_joints=3, value=0.25))
    with Bus("test") as bus:
        obs = PolicyObservation(obs_id=7, t_ns=1, episode_time_s=0.0, q=np.zeros(3), dq=np.zeros(3),
                                command=np.zeros(3), object_poses=np.zeros((0, 7)))
        answer = bus.rpc_client(s.endpoint, timeout_s=2.0).call(obs)
    assert isinstance(answer, PolicyAction) and answer.obs_id == 7 and answer.dt_s == 0.02
    np.testing.assert_array_equal(answer.q, np.full((1, 3), 0.25))


def test_client_rows_follow_the_chunk_timing_exactly(serve):
    dt_ns, start_ns, rows = 20_000_000, 10_000_000, 5
    s = serve(IndexPolicy(n_joints=N, chunk=rows, dt_s=dt_ns / 1e9, start_s=start_ns / 1e9))
    client = PolicyClient(s.endpoint, N, B, rate_hz=200, timeout_s=0.5, max_hold_s=0.2)
    out = np.full(N, -1.0)
    with client:
        assert not client.action_at(10**12, out) and (out == -1.0).all()  # nothing yet: out untouched
        t_obs = 10**12  # the loop's clock; action_at only compares times, so any origin works
        _observe(client, t_obs)
        _wait(lambda: client.answers >= 1)

        def row(t_ns: int) -> int | None:
            out[:] = -1.0
            if not client.action_at(t_ns, out):
                assert (out == -1.0).all()
                return None
            k = int(round(out[0]))
            np.testing.assert_allclose(out, k + 0.001 * np.arange(N))
            return k

        t0 = t_obs + start_ns
        assert row(t_obs) == 0  # before row 0 applies: row 0
        for k in range(rows):
            assert row(t0 + k * dt_ns) == k
            assert row(t0 + (k + 1) * dt_ns - 1) == k
        end = t0 + rows * dt_ns  # the last row's time is over; it is held for max_hold_s
        assert row(end) == rows - 1
        assert row(end + 200_000_000 - 1) == rows - 1
        assert row(end + 200_000_000) is None
        assert client.stats["no_action"] == 2  # before the first answer, and after the hold


def test_action_at_repeats_exactly(serve):
    s = serve(IndexPolicy(n_joints=N, chunk=8))
    client = PolicyClient(s.endpoint, N, B, rate_hz=200, timeout_s=0.5)
    with client:
        _observe(client, 10**12)
        _wait(lambda: client.answers >= 1)
        client.stop()  # freeze the chunk
        times = [10**12 + i * 3_000_000 for i in range(60)]
        first = np.zeros((len(times), N))
        oks = [client.action_at(t, first[i]) for i, t in enumerate(times)]
        out = np.zeros(N)
        for rep in range(1000):
            i = rep % len(times)
            assert client.action_at(times[i], out) is oks[i]
            assert np.array_equal(out, first[i])


def test_late_policy_is_counted_held_then_recovers(serve):
    policy = IndexPolicy(n_joints=N, chunk=2, dt_s=0.02)
    s = serve(policy)
    client = PolicyClient(s.endpoint, N, B, rate_hz=100, timeout_s=0.1, max_hold_s=0.2)
    out = np.zeros(N)
    stop = threading.Event()
    results: list[tuple[int, bool]] = []

    def loop() -> None:  # a 500 Hz control loop
        while not stop.is_set():
            now = time.monotonic_ns()
            _observe(client, now)
            results.append((now, client.action_at(now, out)))
            time.sleep(0.002)

    with client:
        runner = threading.Thread(target=loop, daemon=True)
        runner.start()
        try:
            _wait(lambda: bool(results) and results[-1][1])  # answers arrive: targets available
            policy.delay_s = 0.3  # longer than timeout_s
            t_slow = time.monotonic_ns()
            _wait(lambda: client.stats["late"] >= 2 and not results[-1][1])
            first_false = next(t for t, ok in results if t > t_slow and not ok)
            # the chunk that was in force (2 rows, 20 ms) plus max_hold_s (0.2 s) covered the gap
            assert (first_false - t_slow) / 1e9 >= 0.2
            policy.delay_s = 0.0
            t_back = time.monotonic_ns()
            _wait(lambda: results[-1][1], timeout_s=5.0)
        finally:
            stop.set()
            runner.join(timeout=2)
        stats = client.stats
    assert stats["late"] >= 2 and stats["no_action"] > 0 and stats["answers"] > 0
    assert stats["latency_ms"]["p50"] > 0
    assert any(t > t_back and ok for t, ok in results)


def test_policy_exception_is_an_error_reply_and_the_server_goes_on(serve):
    policy = IndexPolicy(n_joints=N)
    policy.fail = True
    s = serve(policy)
    client = PolicyClient(s.endpoint, N, B, rate_hz=200, timeout_s=0.5)
    with client:
        for i in range(3):
            _observe(client, 10**12 + i)
            _wait(lambda i=i: client.stats["errors"] >= i + 1)
        assert not client.action_at(10**12, np.zeros(N))
        policy.fail = False
        _observe(client, 10**12 + 10)
        _wait(lambda: client.answers >= 1)
        assert client.action_at(10**12 + 10, np.zeros(N))
        assert "policy bug" in client.last_error
    assert s.server.stats["errors"] >= 3 and s.server.stats["answers"] >= 1
    assert s.thread.is_alive()


def test_joint_count_mismatch_is_refused_at_start(serve):
    s = serve(IndexPolicy(n_joints=6))
    client = PolicyClient(s.endpoint, 5, B)
    with pytest.raises(ConfigError, match=r"expects 6 joints, this robot has 5"):
        client.start()
    client.stop()  # harmless after a failed start


def test_no_server_is_a_clear_timeout():
    client = PolicyClient(f"tcp://127.0.0.1:{free_policy_port()}", N, B, connect_timeout_s=0.2)
    with pytest.raises(LinkTimeoutError, match="teleop policy serve"):
        client.start()


def test_reset_drops_the_chunk_and_reaches_the_policy(serve):
    policy = IndexPolicy(n_joints=N)
    s = serve(policy)
    client = PolicyClient(s.endpoint, N, B, rate_hz=200, timeout_s=0.5, task="stack")
    with client:
        _observe(client, 10**12)
        _wait(lambda: client.answers >= 1)
        assert client.action_at(10**12, np.zeros(N))
        client.reset("pour")
        assert not client.action_at(10**12, np.zeros(N))  # the old rollout's chunk is gone
        assert policy.tasks == ["pour"] and client.task == "pour"
        _observe(client, 2 * 10**12)
        _wait(lambda: client.answers >= 2)
        assert client.action_at(2 * 10**12, np.zeros(N))


def test_bad_client_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="n_joints"):
        PolicyClient("tcp://127.0.0.1:7641", 0, 0)
    with pytest.raises(ConfigError, match="rate_hz"):
        PolicyClient("tcp://127.0.0.1:7641", 3, 0, rate_hz=0)


def test_long_chunks_are_truncated_and_counted(serve):
    s = serve(IndexPolicy(n_joints=N, chunk=20))
    client = PolicyClient(s.endpoint, N, B, rate_hz=200, timeout_s=0.5, max_chunk=8)
    out = np.zeros(N)
    with client:
        _observe(client, 10**12)
        _wait(lambda: client.answers >= 1)
        assert client.stats["truncated"] == 1
        assert client.action_at(10**12 + 7 * 20_000_000, out) and out[0] == 7
        assert client.action_at(10**12 + 15 * 20_000_000, out) and out[0] == 7  # held
