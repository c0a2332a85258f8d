"""Sockets with the options a control link needs, and typed send/receive on top of them.

* every socket: LINGER 0 (never block exit on unsent data), MAXMSGSIZE on receivers;
* ``Subscriber(mode="latest")``: ZMQ_CONFLATE, so the socket holds only the newest message
  whatever the sender queued; ``latest()`` returns it (control consumers: a stale command is
  worse than none). One topic per latest-mode socket, since conflation is across topics;
* ``Subscriber(mode="lossless")``: large high-water marks, ``recv()`` returns every message in
  order (recorder taps); sequence gaps are counted in ``stats.gaps``;
* request/reply with a timeout; a client whose request timed out rebuilds its socket
  (a REQ socket is stuck otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple

import zmq

from teleop.bus.codec import MAX_MESSAGE_BYTES, Decoder, DecodeStats, Encoder, Header, Message
from teleop.bus.endpoints import require_secure
from teleop.bus.messages import Reply, Request
from teleop.bus.security import CurveKeys, stop_authenticator
from teleop.errors import DecodeError, LinkError, LinkTimeoutError, RobotError

__all__ = ["Bus", "Publisher", "Subscriber", "RpcServer", "RpcClient", "Received"]

logger = logging.getLogger(__name__)

LOSSLESS_HWM = 1_000_000


class Received(NamedTuple):
    header: Header
    msg: Message
    recv_ns: int


class Bus:
    """Makes sockets. Holds the ZeroMQ context and, for links that leave the host, CURVE keys."""

    def __init__(self, source: str, keys: CurveKeys | None = None, context: zmq.Context | None = None) -> None:
        self.source = source
        self.keys = keys
        self._own_context = context is None
        self.context = context if context is not None else zmq.Context()
        self._sockets: list[zmq.Socket] = []

    def _socket(self, kind: int, endpoint: str, bind: bool, options: dict[int, int] | None = None) -> zmq.Socket:
        require_secure(endpoint, self.keys is not None)
        sock = self.context.socket(kind)
        sock.linger = 0
        for opt, value in (options or {}).items():  # before bind/connect: some only apply then
            sock.setsockopt(opt, value)
        if self.keys is not None:
            self.keys.apply(sock, bind)
        try:
            if bind:
                sock.bind(endpoint)
            else:
                sock.connect(endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            hint = "is another server already running there? pick another --port-base" if bind else "check the address"
            raise LinkError(f"cannot {'bind' if bind else 'connect'} {endpoint}: {exc}; {hint}") from None
        self._sockets.append(sock)
        return sock

    def publisher(self, endpoint: str, *, bind: bool = True, sndhwm: int = 10_000, immediate: bool = False) -> Publisher:
        return Publisher(self, endpoint, bind=bind, sndhwm=sndhwm, immediate=immediate)

    def subscriber(
        self,
        endpoint: str | Iterable[str],
        topics: Iterable[str] = ("",),
        *,
        accept: tuple[type[Message], ...] | None = None,
        bind: bool = False,
        mode: Literal["latest", "lossless"] = "latest",
        shapes: dict[str, int] | None = None,
        max_bytes: int = MAX_MESSAGE_BYTES,
        hwm: int = LOSSLESS_HWM,
    ) -> Subscriber:
        return Subscriber(self, endpoint, topics, accept=accept, bind=bind, mode=mode, shapes=shapes, max_bytes=max_bytes,
                          hwm=hwm)

    def rpc_server(self, endpoint: str, accept: tuple[type[Message], ...] = (Request,)) -> RpcServer:
        return RpcServer(self, endpoint, accept)

    def rpc_client(self, endpoint: str, timeout_s: float = 1.0) -> RpcClient:
        return RpcClient(self, endpoint, timeout_s)

    def forget(self, sock: zmq.Socket) -> None:
        if sock in self._sockets:
            self._sockets.remove(sock)
        sock.close(0)

    def close(self) -> None:
        for sock in self._sockets:
            sock.close(0)
        self._sockets.clear()
        if self._own_context:
            stop_authenticator(self.context)
            self.context.destroy(linger=0)  # also closes sockets made outside this class

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Publisher:
    def __init__(self, bus: Bus, endpoint: str, *, bind: bool, sndhwm: int, immediate: bool = False) -> None:
        self.endpoint = endpoint
        self._encoder = Encoder(bus.source)
        # ZMQ_IMMEDIATE: queue only to live connections (what is sent while the peer is away is dropped)
        self.sock = bus._socket(zmq.PUB, endpoint, bind, {zmq.SNDHWM: sndhwm, zmq.IMMEDIATE: int(immediate)})
        self.sent = 0

    def publish(self, msg: Message, topic: str, capture_ns: int | None = None) -> int:
        """Send ``msg`` on ``topic``; never blocks (a full queue drops, as PUB does)."""
        frame = self._encoder.encode(msg, topic, capture_ns)
        # zero-copy only pays off for large frames (camera images); small ones are cheaper copied
        self.sock.send(frame, copy=len(frame) < 65536)
        self.sent += 1
        return self._encoder.last_seq(topic)

    def send_raw(self, frames: list[bytes]) -> None:
        """Send arbitrary frames (fault injection in tests and ``teleop robot check``)."""
        self.sock.send_multipart(frames)


class Subscriber:
    def __init__(
        self,
        bus: Bus,
        endpoint: str | Iterable[str],
        topics: Iterable[str],
        *,
        accept: tuple[type[Message], ...] | None,
        bind: bool,
        mode: Literal["latest", "lossless"],
        shapes: dict[str, int] | None,
        max_bytes: int,
        hwm: int = LOSSLESS_HWM,
    ) -> None:
        if mode not in ("latest", "lossless"):
            raise ValueError(f"mode must be 'latest' or 'lossless', got {mode!r}")
        self.mode = mode
        endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        topics = list(topics)
        # ZeroMQ filters by prefix; the decoder takes exactly these topics (or "ns/" namespaces)
        self.decoder = Decoder(accept, shapes, max_bytes, topics=topics)
        options = {zmq.MAXMSGSIZE: max_bytes}
        if mode == "latest":
            if len(topics) != 1:
                raise ValueError(f"a latest-mode subscriber takes one topic (conflation spans topics), got {topics}")
            options[zmq.CONFLATE] = 1
        else:
            options[zmq.RCVHWM] = hwm
        self.sock = bus._socket(zmq.SUB, endpoints[0], bind, options)
        for extra in endpoints[1:]:
            require_secure(extra, bus.keys is not None)
            self.sock.bind(extra) if bind else self.sock.connect(extra)
        for topic in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._poller = zmq.Poller()
        self._poller.register(self.sock, zmq.POLLIN)

    @property
    def stats(self) -> DecodeStats:
        return self.decoder.stats

    def _try_decode(self, frames: list[bytes]) -> Received | None:
        try:
            header, msg = self.decoder.decode(frames)
        except DecodeError as err:
            logger.debug("rejected message: %s", err)
            return None
        return Received(header, msg, time.monotonic_ns())

    def latest(self) -> Received | None:
        """Drain everything queued; return the newest valid message or None. Never blocks."""
        newest = None
        sock = self.sock
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # cheaper than raising zmq.Again
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return newest
            got = self._try_decode(frames)
            if got is not None:
                newest = got
        return newest

    def recv(self, timeout_s: float | None = None) -> Received:
        """Next valid message in order; invalid ones are counted and skipped.
        Raises ``LinkTimeoutError`` after ``timeout_s`` (None waits forever)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if not self.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:  # nothing queued: wait
                wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
                if not self._poller.poll(wait_ms):
                    raise LinkTimeoutError(f"no message within {timeout_s} s")
            got = self._try_decode(self.sock.recv_multipart())
            if got is not None:
                return got
            if deadline is not None and time.monotonic() >= deadline:
                raise LinkTimeoutError(f"no valid message within {timeout_s} s")

    def wait(self, timeout_s: float) -> bool:
        """Block until something is queued (or timeout)."""
        return bool(self._poller.poll(int(timeout_s * 1000)))


class RpcServer:
    """REP socket polled by its owner's loop; a bad request gets an error reply, never a crash."""

    def __init__(self, bus: Bus, endpoint: str, accept: tuple[type[Message], ...]) -> None:
        self.endpoint = endpoint
        self.decoder = Decoder(accept, topics=("rpc",))
        self._encoder = Encoder(bus.source)
        self.sock = bus._socket(zmq.REP, endpoint, True, {zmq.MAXMSGSIZE: 1 << 20})

    def serve_one(self, handler: Callable[[Header, Message], Message], timeout_s: float = 0.0) -> bool:
        """Answer at most one request. Returns True if one was handled."""
        if not self.sock.poll(int(timeout_s * 1000), zmq.POLLIN):
            return False
        frames = self.sock.recv_multipart()
        try:
            header, msg = self.decoder.decode(frames)
        except DecodeError as err:
            reply: Message = Reply(op="?", ok=False, error=f"rejected request: {err}")
        else:
            try:
                reply = handler(header, msg)
            except Exception as exc:  # a handler bug must not take the server down
                logger.exception("rpc handler failed on %s", msg)
                reply = Reply(op=getattr(msg, "op", "?"), ok=False, error=f"{type(exc).__name__}: {exc}")
        self.sock.send(self._encoder.encode(reply, "rpc"))
        return True


class RpcClient:
    """REQ socket with a timeout (the lazy-pirate pattern: rebuild the socket after a timeout)."""

    def __init__(self, bus: Bus, endpoint: str, timeout_s: float) -> None:
        self.bus = bus
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._encoder = Encoder(bus.source)
        self.decoder = Decoder(topics=("rpc",))
        self.sock = self._open()

    def _open(self) -> zmq.Socket:
        return self.bus._socket(zmq.REQ, self.endpoint, False, {zmq.MAXMSGSIZE: MAX_MESSAGE_BYTES})

    def call(self, req: Message, timeout_s: float | None = None) -> Message:
        """Send ``req`` and return the decoded reply; raises ``LinkTimeoutError``."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        self.sock.send(self._encoder.encode(req, "rpc"))
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            self.bus.forget(self.sock)
            self.sock = self._open()
            raise LinkTimeoutError(
                f"no reply from {self.endpoint} within {timeout:.1f} s; is the robot server running "
                "(`teleop sim`), and are the endpoint and keys right? `teleop robot check` diagnoses it"
            )
        frames = self.sock.recv_multipart()
        try:
            _, msg = self.decoder.decode(frames)
        except DecodeError as err:
            raise LinkError(f"bad reply from {self.endpoint}: {err}") from None
        return msg

    def request(self, op: str, timeout_s: float | None = None, **args: object) -> Message:
        """Call ``op``; raise ``RobotError`` if the server answered with an error."""
        reply = self.call(Request(op=op, args=dict(args)), timeout_s)
        if isinstance(reply, Reply) and not reply.ok:
            raise RobotError(f"{op} refused by {self.endpoint}: {reply.error}")
        return reply

    def close(self) -> None:
        self.bus.forget(self.sock)
