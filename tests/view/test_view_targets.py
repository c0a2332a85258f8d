"""Where the view goes: `--rerun` values are checked before anything starts, a viewer window
without a display is refused in words, and the web viewer is served on loopback only."""

from __future__ import annotations

import urllib.request
import uuid

import pytest

from teleop.cli import main
from teleop.errors import TeleopError
from teleop.view.sink import ViewTarget, check_target, open_sink, parse_target


@pytest.mark.parametrize("text, kind", [("spawn", "spawn"), ("web", "web"), ("out/run.rrd", "save"),
                                        ("~/x.RRD", "save")])
def test_the_three_targets(text, kind):
    assert parse_target(text).kind == kind


@pytest.mark.parametrize("text", ["", "viewer", "out.rrdx", ".rrd", "web:9090", "run.mp4"])
def test_anything_else_is_a_usage_error_that_lists_the_choices(text, capsys):
    assert main(["run", "sim_synthetic", "--rerun", text]) == 2
    err = capsys.readouterr().err
    assert "--rerun" in err and "spawn" in err and "web" in err and ".rrd" in err


def test_spawn_without_a_display_says_what_to_use_instead(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(TeleopError, match="no display") as info:
        check_target(ViewTarget("spawn"))
    assert "--rerun web" in str(info.value) and ".rrd" in str(info.value)


def test_a_folder_is_refused_and_missing_folders_are_made(tmp_path):
    with pytest.raises(TeleopError, match="folder"):
        check_target(ViewTarget("save", tmp_path))
    check_target(ViewTarget("save", tmp_path / "new" / "deeper" / "x.rrd"))
    assert (tmp_path / "new" / "deeper").is_dir()


def test_the_web_viewer_is_served_on_loopback_only(tmp_path):
    import rerun as rr

    rec = rr.RecordingStream("teleop-test", recording_id=uuid.uuid4())
    sink = open_sink(ViewTarget("web"), rec, tmp_path / "rerun.log")
    try:
        assert sink.url.startswith("http://127.0.0.1:") and "url=rerun%2Bhttp%3A%2F%2Flocalhost%3A" in sink.url
        page = urllib.request.urlopen(sink.url, timeout=5).read().decode(errors="replace")
        assert "<html" in page.lower()
        port = int(sink.url.split(":")[2].split("/")[0])
        listening = [addr for addr in _tcp_listeners() if addr.endswith(f":{port:04X}")]
        assert listening and all(addr.startswith("0100007F:") for addr in listening), listening  # 127.0.0.1
    finally:
        sink.close()
    assert sink.server.poll() is not None  # the web server stops with the view


def _tcp_listeners() -> list[str]:
    """Local addresses (hex ``ADDR:PORT``) of the IPv4 sockets in LISTEN state."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.read().splitlines()[1:]]
    return [r[1] for r in rows if r[3] == "0A"]
