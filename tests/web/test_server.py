"""`teleop web`'s server on a real port with real TLS: the token gates every page, asset and
socket; only static/ is served; garbage and floods are counted and the server goes on."""

from __future__ import annotations

import http.client
import json
import os
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from xr_frames import client_ssl, frame, open_socket

from teleop.errors import ConfigError
from teleop.web.server import COOKIE, WebConfig, WebServer


def get(server, path: str, cookie: str | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPSConnection("localhost", server.port, context=client_ssl(server.cert.cert_path), timeout=3)
    conn.request("GET", path, headers={"Cookie": f"{server.cookie}={cookie}"} if cookie else {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


@pytest.mark.parametrize("path", ["/", "/xr.html", "/xr.js", "/ws", "/nothing"])
def test_every_path_without_the_token_is_forbidden(server, path):
    assert get(server, path).status == 403
    assert get(server, path + "?token=wrong").status == 403
    assert get(server, path, cookie="wrong" * 8).status == 403
    assert server.stats()["refused_token"] == 3


def test_the_token_once_then_a_strict_httponly_cookie(server):
    resp = get(server, f"/xr.html?token={server.token}")
    assert resp.status == 303 and resp.headers["Location"] == "/xr.html"  # the token leaves the address bar
    cookie = resp.headers["Set-Cookie"]
    assert f"{COOKIE}_{server.port}={server.token}" in cookie  # per port: another server on this host keeps its own
    assert all(flag in cookie for flag in ("HttpOnly", "Secure", "SameSite=Strict"))
    page = get(server, "/xr.html", cookie=server.token)
    assert page.status == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]  # no CDN, no other site
    assert get(server, "/xr.js", cookie=server.token).status == 200


def test_only_static_files_are_served(server):
    for path in ("/..%2Fserver.py", "/.hidden", "/%2e%2e/protocol.py", "/static/xr.js"):
        assert get(server, path, cookie=server.token).status == 404, path


def test_a_socket_without_the_token_is_refused(server):
    cert = server.cert.cert_path
    for token in (None, "wrong", server.token[:-1]):
        with pytest.raises(InvalidStatus) as err:
            open_socket(server.port, token, cert)
        assert err.value.response.status_code == 403
    with open_socket(server.port, server.token, cert) as ws:
        ws.send(frame(0))
    assert server.stats()["refused_token"] == 3


def test_a_socket_from_another_origin_is_refused(server):
    with pytest.raises(InvalidStatus):
        open_socket(server.port, server.token, server.cert.cert_path, origin="https://evil.example")
    assert server.stats()["refused_origin"] == 1


def wait_for(cond, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_garbage_is_counted_and_the_server_goes_on(server):
    garbage = ["", "{", "[]", "null", '{"type":"frame"}', '{"type":"nope"}', b"\x00\xff" * 10,
               json.dumps({"type": "frame", "seq": 1, "t_ms": 0, "hands": {"left": {"joints": [1e999] * 75,
                                                                                   "wrist": [0] * 7}},
                           "controllers": {}, "head": None}).replace("Infinity", "1e999"),
               frame(1).replace('"seq": 1', '"seq": -1')]
    with open_socket(server.port, server.token, server.cert.cert_path) as ws:
        for g in garbage:
            ws.send(g)
        ws.send(frame(2))
        wait_for(lambda: server.stats().get("frames", 0) == 1)
    assert server.stats()["rejected"] == len(garbage)
    with open_socket(server.port, server.token, server.cert.cert_path) as ws:
        ws.send(frame(3))
        wait_for(lambda: server.stats().get("frames", 0) == 2)


def test_an_oversized_message_closes_that_socket_only(server):
    with open_socket(server.port, server.token, server.cert.cert_path, max_size=None) as ws:
        with pytest.raises(ConnectionClosed):  # the server may close it while the send is still writing
            ws.send("x" * 100_000)
            for _ in range(100):
                ws.recv(timeout=1)
    wait_for(lambda: server.stats().get("too_large", 0) == 1)
    with open_socket(server.port, server.token, server.cert.cert_path) as ws:
        ws.send(frame(0))
        wait_for(lambda: server.stats().get("frames", 0) == 1)


def test_a_flood_is_rate_limited_and_counted(server):
    with open_socket(server.port, server.token, server.cert.cert_path) as ws:
        msg = frame(0)
        for _ in range(3000):
            ws.send(msg)
        wait_for(lambda: server.stats().get("frames", 0) + server.stats().get("rate_limited", 0) >= 3000, 10)
    stats = server.stats()
    assert stats["rate_limited"] > 1000  # 250 messages/s per socket get through, the rest are counted


def test_the_certificate_is_generated_once_and_kept(tmp_path):
    cfg = WebConfig(host="127.0.0.1", port=0, config_dir=tmp_path)
    with WebServer(cfg) as first:
        pass
    with WebServer(cfg) as second:
        pass
    assert first.cert.generated and not second.cert.generated
    assert first.cert.sha256 == second.cert.sha256 and len(first.cert.sha256) == 95  # 32 bytes "AB:..."
    assert first.token == second.token  # kept: the headset's bookmark survives a restart
    assert "127.0.0.1" in first.cert.names and "localhost" in first.cert.names
    for secret in ("key.pem", "token"):
        assert os.stat(tmp_path / secret).st_mode & 0o777 == 0o600
    with WebServer(WebConfig(host="127.0.0.1", port=0, config_dir=tmp_path, new_cert=True, new_token=True)) as third:
        pass
    assert third.cert.sha256 != first.cert.sha256 and third.token != first.token


def test_the_labs_own_certificate(tmp_path, server):
    cfg = WebConfig(host="127.0.0.1", port=0, config_dir=tmp_path / "other", cert=server.cert.cert_path,
                    key=server.cert.key_path)
    with WebServer(cfg) as s:
        assert s.cert.sha256 == server.cert.sha256 and not s.cert.generated
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="PEM"):
        WebServer(WebConfig(port=0, config_dir=tmp_path, cert=tmp_path / "bad.pem", key=tmp_path / "bad.pem")).start()


@pytest.mark.parametrize("kw, match", [({"port": 70000}, "port"), ({"port": True}, "port"),
                                       ({"cert": "c.pem"}, "together"), ({"max_rate_hz": 0.0}, "max_rate_hz"),
                                       ({"max_sockets": 0}, "max_sockets"), ({"host": ""}, "host")])
def test_config_numbers_are_checked(kw, match):
    with pytest.raises(ConfigError, match=match):
        WebConfig(**kw)


def test_a_port_in_use_says_so(server, tmp_path):
    with pytest.raises(ConfigError, match="another"):
        WebServer(WebConfig(host="127.0.0.1", port=server.port, config_dir=tmp_path)).start()


def test_the_newest_page_drives_and_the_older_is_told(server):
    cert = server.cert.cert_path
    with open_socket(server.port, server.token, cert) as old, open_socket(server.port, server.token, cert) as new:
        new.send(frame(0))
        wait_for(lambda: server.stats().get("frames", 0) == 1)
        with pytest.raises(ConnectionClosed) as closed:
            old.recv(timeout=2)
        assert closed.value.rcvd.code == 4001
        new.send(frame(1))
        wait_for(lambda: server.stats().get("frames", 0) == 2)
    assert server.stats()["replaced"] == 1
