"""[web] in a session config: checked as the server checks it, webxr devices serve on the
session's server (their server options come from [web] alone), and its port is one the session
binds (checked free before start, moved with --port-base)."""

from __future__ import annotations

import pytest

from teleop.errors import ConfigError
from teleop.session.config import bound_endpoints, parse_session, with_port_base


def raw(web: dict | None = None, xr_options: dict | None = None) -> dict:
    out = {"device": {"xr": {"driver": "webxr", "options": xr_options or {}}},
           "input": {"right": {"hand": "xr", "wrist": "xr"}}}
    if web is not None:
        out["web"] = web
    return out


def test_webxr_devices_take_the_server_options_of_web(tmp_path):
    cfg = parse_session(raw({"enabled": True, "port": 9443, "config_dir": "web"}, {"stale_timeout_s": 0.2}),
                        source=tmp_path / "s.toml")
    opts = cfg.devices["xr"].options
    assert opts["port"] == 9443 and opts["stale_timeout_s"] == 0.2 and opts["config_dir"] == str(tmp_path / "web")
    assert bound_endpoints(cfg)["web (console, XR page)"] == "tcp://0.0.0.0:9443"
    moved = with_port_base(cfg, cfg.robot.port_base + 100)
    assert moved.web.port == 9543 and moved.devices["xr"].options["port"] == 9543


def test_without_web_the_device_runs_its_own_server():
    cfg = parse_session(raw(None, {"port": 9444}))
    assert not cfg.web.enabled and cfg.devices["xr"].options == {"port": 9444}
    assert bound_endpoints(cfg)["device xr (XR page)"] == "tcp://0.0.0.0:9444"


@pytest.mark.parametrize("web, xr, words", [
    ({"enabled": True}, {"port": 9443}, "set these in [web]"),
    ({"enabled": True, "cert": "lab.pem"}, {}, "go together"),
    ({"enabled": True, "cameras": ["a", "b", "c"]}, {}, "one or two camera names"),
    ({"enabled": True, "cameras": ["auto", "head_cam"]}, {}, "one or two camera names"),
    ({"enabled": True, "port": 70000}, {}, "web.port"),
    ({"enabled": True, "camera_hz": float("nan")}, {}, "web.camera_hz"),
    ({"enabled": True, "max_rate_hz": 0}, {}, "web.max_rate_hz"),
    ({"enabled": True, "host": ""}, {}, "host"),
    ({"enabled": True, "secret": 1}, {}, "web.secret"),
])
def test_bad_web_settings_are_refused_with_what_to_do(web, xr, words):
    with pytest.raises(ConfigError) as err:
        parse_session(raw(web, xr))
    assert words in str(err.value)
