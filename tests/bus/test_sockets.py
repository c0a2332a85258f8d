"""Real ZeroMQ sockets on loopback: latest-wins, lossless taps, request/reply, CURVE."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from teleop.bus import Bus, CurveKeys, JointCommand, Reply, generate_keys
from teleop.errors import ConfigError, LinkTimeoutError, RobotError, SecurityError


def _settle(sub, pub, topic="t"):
    """PUB/SUB joins asynchronously; publish until the subscriber sees something."""
    for _ in range(200):
        pub.publish(JointCommand(q=np.zeros(2)), topic)
        if sub.wait(0.01):
            sub.latest()
            return
    raise AssertionError("subscriber never joined")


def test_latest_returns_newest_and_drains(bus, port_base):
    ep = f"tcp://127.0.0.1:{port_base}"
    pub = bus.publisher(ep)
    sub = bus.subscriber(ep, ["t"], mode="latest")
    _settle(sub, pub)
    for i in range(20_000):  # far more than any queue holds: conflation keeps only the newest
        pub.publish(JointCommand(q=np.full(2, float(i))), "t")
    time.sleep(0.3)
    got = sub.latest()
    assert got is not None and got.msg.q[0] == 19_999.0
    assert sub.latest() is None


def test_lossless_sees_every_message_in_order(bus, port_base):
    ep = f"tcp://127.0.0.1:{port_base}"
    pub = bus.publisher(ep)
    sub = bus.subscriber(ep, ["t"], mode="lossless")
    _settle(sub, pub)
    first = pub.publish(JointCommand(q=np.zeros(2)), "t")
    for i in range(5000):
        pub.publish(JointCommand(q=np.full(2, float(i))), "t")
    seqs = [sub.recv(timeout_s=2).header.seq for _ in range(5001)]
    assert seqs == list(range(first, first + 5001))
    assert sub.stats.gaps == 0


def test_garbage_on_a_topic_is_counted_and_subscriber_survives(bus, port_base):
    ep = f"tcp://127.0.0.1:{port_base}"
    pub = bus.publisher(ep)
    sub = bus.subscriber(ep, ["t"], accept=(JointCommand,), shapes={"n": 2}, mode="lossless")
    _settle(sub, pub)
    pub.send_raw([b"t\0\xff\xfe garbage"])
    pub.send_raw([b"t\0", b"two frames"])
    pub.publish(JointCommand(q=np.zeros(3)), "t")  # wrong joint count
    pub.publish(JointCommand(q=np.ones(2)), "t")
    got = sub.recv(timeout_s=2)
    assert got.msg.q[0] == 1.0
    assert sub.stats.rejected == {"bad_msgpack": 1, "bad_frames": 1, "bad_shape": 1}


def _serve(bus, ep, stop):
    server = bus.rpc_server(ep)

    def handler(header, msg):
        if msg.op == "boom":
            raise RuntimeError("handler bug")
        return Reply(op=msg.op, ok=True, values={"echo": msg.args.get("x", 0)})

    while not stop.is_set():
        server.serve_one(handler, timeout_s=0.01)


def test_request_reply_timeout_and_recovery(port_base):
    ep = f"tcp://127.0.0.1:{port_base}"
    with Bus("client") as cbus:
        client = cbus.rpc_client(ep, timeout_s=0.2)
        with pytest.raises(LinkTimeoutError, match="teleop sim"):
            client.request("ping")
        with Bus("server") as sbus:
            stop = threading.Event()
            t = threading.Thread(target=_serve, args=(sbus, ep, stop))
            t.start()
            try:
                reply = client.request("ping", timeout_s=2, x=3)  # the client rebuilt its socket
                assert reply.values == {"echo": 3}
                with pytest.raises(RobotError, match="handler bug"):
                    client.request("boom", timeout_s=2)
                # raw garbage to the REP socket gets an error reply; the server lives on
                import zmq

                raw = cbus.context.socket(zmq.REQ)
                raw.linger = 0
                raw.connect(ep)
                raw.send(b"not msgpack at all")
                assert raw.poll(2000)
                _, bad = client.decoder.decode(raw.recv_multipart())
                assert isinstance(bad, Reply) and not bad.ok and "rejected" in bad.error
                raw.close(0)
                assert client.request("ping", timeout_s=2).ok
            finally:
                stop.set()
                t.join()


def test_non_loopback_needs_keys(bus):
    with pytest.raises(SecurityError, match="teleop keys generate"):
        bus.publisher("tcp://0.0.0.0:7999")
    with pytest.raises(SecurityError):
        bus.subscriber("tcp://10.1.2.3:7999")


def test_curve_accepts_authorised_peer_and_refuses_others(tmp_path, port_base):
    generate_keys(tmp_path / "keys")
    generate_keys(tmp_path / "other")  # a valid key pair the server never authorised
    with pytest.raises(ConfigError, match="--force"):
        generate_keys(tmp_path / "keys")
    good = CurveKeys.load(tmp_path / "keys")
    intruder = CurveKeys.load(tmp_path / "other")
    intruder = CurveKeys(good.directory, good.server_public, None, intruder.client_public, intruder.client_secret)
    ep = f"tcp://127.0.0.1:{port_base}"
    with Bus("server", keys=good) as sbus, Bus("ok", keys=good) as okbus, Bus("bad", keys=intruder) as badbus, Bus(
        "plain"
    ) as plainbus:
        stop = threading.Event()
        t = threading.Thread(target=_serve, args=(sbus, ep, stop))
        t.start()
        try:
            assert okbus.rpc_client(ep).request("ping", timeout_s=3, x=1).values == {"echo": 1}
            with pytest.raises(LinkTimeoutError):
                badbus.rpc_client(ep).request("ping", timeout_s=0.5)
            with pytest.raises(LinkTimeoutError):
                plainbus.rpc_client(ep).request("ping", timeout_s=0.5)
        finally:
            stop.set()
            t.join()
