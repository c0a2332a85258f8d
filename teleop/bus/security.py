"""ZeroMQ CURVE keys: encryption and authentication for endpoints that leave the host.

Layout of a keys directory (made by ``teleop keys generate --dir KEYS``)::

    KEYS/server.key, KEYS/server.key_secret   the binding side (robot server) identity
    KEYS/client.key, KEYS/client.key_secret   the connecting side (teleop session) identity
    KEYS/authorized/*.key                     client public keys the server accepts

Copy the folder to both hosts (or only the public halves a side needs). A peer whose public key
is not in ``authorized/`` is refused during the handshake and never gets a message.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from teleop.errors import ConfigError

__all__ = ["CurveKeys", "generate_keys"]


def generate_keys(directory: str | Path, client_name: str = "client", force: bool = False) -> dict[str, Path]:
    """Create a server and a client key pair and authorise the client. Never overwrites keys
    unless ``force``."""
    directory = Path(directory)
    existing = [p for p in (directory / "server.key_secret", directory / f"{client_name}.key_secret") if p.exists()]
    if existing and not force:
        raise ConfigError(f"keys already exist: {[str(p) for p in existing]}; pass --force to replace them")
    if not zmq.has("curve"):
        raise ConfigError("this libzmq was built without CURVE support; reinstall pyzmq from PyPI wheels")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "authorized").mkdir(exist_ok=True)
    server_pub, server_sec = zmq.auth.create_certificates(directory, "server")
    client_pub, client_sec = zmq.auth.create_certificates(directory, client_name)
    shutil.copy(client_pub, directory / "authorized" / f"{client_name}.key")
    for secret in (server_sec, client_sec):
        Path(secret).chmod(0o600)
    return {
        "server_public": Path(server_pub),
        "server_secret": Path(server_sec),
        "client_public": Path(client_pub),
        "client_secret": Path(client_sec),
    }


@dataclass(frozen=True)
class CurveKeys:
    """Keys loaded from a keys directory. Binding sockets act as CURVE servers, connecting
    sockets as CURVE clients."""

    directory: Path
    server_public: bytes
    server_secret: bytes | None
    client_public: bytes | None
    client_secret: bytes | None
    client_name: str = "client"

    @classmethod
    def load(cls, directory: str | Path, client_name: str = "client") -> CurveKeys:
        directory = Path(directory)
        server_file = directory / "server.key"
        if not server_file.is_file():
            raise ConfigError(f"no {server_file}; create keys with `teleop keys generate --dir {directory}`")
        server_pub, _ = zmq.auth.load_certificate(server_file)
        server_sec = None
        if (directory / "server.key_secret").is_file():
            _, server_sec = zmq.auth.load_certificate(directory / "server.key_secret")
        client_pub = client_sec = None
        if (directory / f"{client_name}.key_secret").is_file():
            client_pub, client_sec = zmq.auth.load_certificate(directory / f"{client_name}.key_secret")
        return cls(directory, server_pub, server_sec, client_pub, client_sec, client_name)

    @property
    def authorized_dir(self) -> Path:
        return self.directory / "authorized"

    def apply(self, sock: zmq.Socket, bind: bool) -> None:
        """Configure ``sock`` before bind/connect."""
        if bind:
            if self.server_secret is None:
                raise ConfigError(f"binding needs {self.directory / 'server.key_secret'}; it is missing")
            _ensure_authenticator(sock.context, self.authorized_dir)
            sock.curve_secretkey = self.server_secret
            sock.curve_publickey = self.server_public
            sock.curve_server = True
        else:
            if self.client_secret is None or self.client_public is None:
                raise ConfigError(
                    f"connecting needs {self.directory / (self.client_name + '.key_secret')}; it is missing"
                )
            sock.curve_secretkey = self.client_secret
            sock.curve_publickey = self.client_public
            sock.curve_serverkey = self.server_public


_auth_lock = threading.Lock()
_authenticators: dict[int, ThreadAuthenticator] = {}


def _ensure_authenticator(ctx: zmq.Context, authorized: Path) -> None:
    # One ZAP handler per context; it checks client public keys against ``authorized``.
    with _auth_lock:
        if id(ctx) in _authenticators:
            return
        if not authorized.is_dir():
            raise ConfigError(f"no authorized clients folder {authorized}; run `teleop keys generate`")
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(authorized))
        _authenticators[id(ctx)] = auth


def stop_authenticator(ctx: zmq.Context) -> None:
    with _auth_lock:
        auth = _authenticators.pop(id(ctx), None)
    if auth is not None:
        auth.stop()
