"""Compose one MuJoCo model from parts: a scene (table, objects, cameras) and a left and a right
model (URDF or MJCF, each an arm + hand assembly) mounted on a base at given poses, with name
prefixes. The result is written once as a plain MJCF file in a cache folder (keyed by everything
that went into it), so every consumer (the simulator, the kinematics compiler, the viewer) loads
one ordinary model file and needs no change.

What the parts get on the way in:
- URDF meshes are resolved relative to each URDF file (MuJoCo's own URDF import keeps only the
  file name); links attached by fixed joints stay bodies (fingertip and wrist frames live there);
  visual meshes are kept for cameras and the viewer (group 1, no contacts); ``<mimic>`` joints
  become joint equality constraints, which the kinematics compiler reads as couplings.
- Bodies of a mount get gravity compensation unless the mount says otherwise: a real arm's
  controller holds its own weight, and a bare position servo would sag.
- A ``home`` keyframe from the description's ``[home]`` joint values, for the sim's reset, the
  scripted plans and the arm IK's posture.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from teleop.errors import ConfigError

__all__ = ["Site", "Mount", "Composition", "compose", "compile_quietly", "cache_dir", "expand_path"]

#: Bump when the composed output changes for the same inputs.
_VERSION = 4


@dataclass(frozen=True)
class Site:
    """A frame the model lacks (a wrist frame in the hand-keypoint convention, a fingertip on the
    distal link's surface), added to one of its bodies."""

    name: str
    body: str
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]


@dataclass(frozen=True)
class Mount:
    """One model on the base: ``pos`` [m] and ``quat`` (w, x, y, z) of its root in the base frame."""

    side: str
    model: Path
    prefix: str
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]
    gravity_compensation: bool = True
    sites: tuple[Site, ...] = ()  # frames added to the model's bodies (names before the prefix)


@dataclass(frozen=True)
class Composition:
    """Everything a composed model is made of (parsed from a description; see
    ``robots.description``)."""

    name: str
    scene: Path | None
    base_frame: str
    base_pos: tuple[float, float, float]
    mounts: tuple[Mount, ...]
    home: tuple[tuple[str, float], ...] = ()
    armature: tuple[tuple[str, float], ...] = ()  # (glob, kg m^2) for the mounts' joints
    where: str = "<robot config>"


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_path(value: str, base: Path, where: str, key: str) -> Path:
    """``value`` with ``~`` and ``${VAR}`` expanded, relative to ``base``. An unset variable is a
    ConfigError saying which one, so a missing model checkout is said plainly."""
    for m in _VAR.finditer(value):
        var = m.group(1) or m.group(2)
        if not os.environ.get(var):
            raise ConfigError(f"{where}: key '{key}' = {value!r} uses ${{{var}}}, which is not set; set {var} to "
                              "the folder it names (the robot's model files are not shipped with teleop)")
    return (base / os.path.expanduser(os.path.expandvars(value))).resolve()


def cache_dir() -> Path:
    """Where composed models are kept: ``$TELEOP_CACHE_DIR`` or ``~/.cache/teleop``."""
    root = os.environ.get("TELEOP_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "teleop")
    return Path(root).expanduser() / "robots"


def _fingerprint(c: Composition) -> str:
    """Hash of the inputs: the composition itself and each input file's path, size and mtime."""
    files = [p for p in [c.scene, *(m.model for m in c.mounts)] if p is not None]
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    blob = json.dumps([_VERSION, repr(c), stats], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def compose(c: Composition) -> Path:
    """The composed model's MJCF path (built now unless an identical one is cached)."""
    for p in [c.scene, *(m.model for m in c.mounts)]:
        if p is not None and not p.is_file():
            raise ConfigError(f"{c.where}: model file {p} does not exist")
    out = cache_dir() / f"{c.name}-{_fingerprint(c)}" / f"{c.name}.xml"
    if out.is_file():
        return out
    xml = _build(c).to_xml()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(xml, encoding="utf-8")
    os.replace(tmp, out)  # concurrent composers write the same bytes; the last rename wins
    return out


def _build(c: Composition):
    import mujoco

    spec = _load_scene(c)
    base = spec.body(c.base_frame) if c.scene is not None else None
    if base is None:
        base = spec.worldbody.add_body(name=c.base_frame, pos=list(c.base_pos))
    for mount in c.mounts:
        child = load_part(mount.model, c.where)
        if mount.gravity_compensation:
            for body in child.bodies:
                body.gravcomp = 1.0
        _add_sites(child, mount, c.where)
        _clean_meshes(child, c)
        frame = base.add_frame(pos=list(mount.pos), quat=list(mount.quat))
        try:
            spec.attach(child, prefix=mount.prefix, frame=frame)
        except Exception as exc:
            raise ConfigError(f"{c.where}: cannot mount {mount.model} ({mount.side}): {exc}") from None
    _add_armature(spec, c)
    if c.home:
        model = _compile(spec, c.where)
        qpos = model.qpos0.copy()
        for joint, value in c.home:
            jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint)
            if jid < 0:
                raise ConfigError(f"{c.where}: key 'home.{joint}' names no joint of the composed model")
            qpos[model.jnt_qposadr[jid]] = value
        _follow_couplings(model, qpos)
        spec.add_key(name="home", qpos=qpos.tolist())
    _compile(spec, c.where)
    return spec


def _clean_meshes(spec, c: Composition) -> None:
    """OBJ files whose texture coordinates MuJoCo rejects (it warns on every load, in every process)
    are copied into the cache without them; visual meshes here are untextured anyway."""
    folder = cache_dir() / "meshes"
    for mesh in spec.meshes:
        src = Path(mesh.file)
        if src.suffix.lower() != ".obj" or not _bad_texcoords(src):
            continue
        out = folder / f"{hashlib.sha256(str(src).encode()).hexdigest()[:12]}_{src.name}"
        if not out.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            _write_obj_without_texcoords(src, out)
        mesh.file = str(out)


def _bad_texcoords(path: Path) -> bool:
    """Texture coordinates on some faces and not others, or indices past the end."""
    n_vt, with_vt, without_vt = 0, False, False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("vt "):
                n_vt += 1
            elif line.startswith("f "):
                for corner in line.split()[1:]:
                    parts = corner.split("/")
                    if len(parts) > 1 and parts[1]:
                        with_vt = True
                        if not parts[1].lstrip("-").isdigit() or abs(int(parts[1])) > n_vt:
                            return True
                    else:
                        without_vt = True
    return (with_vt and without_vt) or (n_vt > 0 and not with_vt)


def _write_obj_without_texcoords(src: Path, out: Path) -> None:
    lines = []
    for line in src.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("vt "):
            continue
        if line.startswith("f "):
            corners = [v.split("/") for v in line.split()[1:]]
            line = "f " + " ".join(v[0] if len(v) < 3 or not v[2] else f"{v[0]}//{v[2]}" for v in corners)
        lines.append(line)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, out)


def _load_scene(c: Composition):
    import mujoco

    if c.scene is None:
        spec = mujoco.MjSpec()
        spec.modelname = c.name
        spec.option.timestep = 0.002
        spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST  # servo damping, implicitly
        return spec
    try:
        spec = mujoco.MjSpec.from_file(str(c.scene))
    except Exception as exc:
        raise ConfigError(f"{c.where}: MuJoCo cannot load the scene {c.scene}: {exc}") from None
    for attr in ("meshdir", "texturedir"):  # the composed file lives elsewhere: make asset paths absolute
        setattr(spec, attr, str((c.scene.parent / (getattr(spec, attr) or "")).resolve()) + os.sep)
    spec.modelname = c.name
    return spec


def load_part(path: Path, where: str):
    """One mounted model as an ``MjSpec``: URDF through ``_urdf_for_mujoco``, MJCF as it is."""
    import mujoco

    try:
        if path.suffix.lower() == ".urdf":
            return mujoco.MjSpec.from_string(_urdf_for_mujoco(path, where))
        spec = mujoco.MjSpec.from_file(str(path))
        _absolute_assets(spec, path, where)
        return spec
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"{where}: MuJoCo cannot load {path}: {exc}") from None


def _absolute_assets(spec, path: Path, where: str) -> None:
    """Mesh and texture files of an MJCF part as absolute paths (the composed file lives
    elsewhere; each part has its own meshdir)."""
    for items, folder in ((spec.meshes, spec.meshdir), (spec.textures, spec.texturedir)):
        for item in items:
            if not item.file:
                continue  # a builtin texture, or vertices given inline
            file = Path(item.file)
            if not file.is_absolute():
                file = (path.parent / (folder or "") / file).resolve()
            if not file.is_file():
                what = repr(item.name) if item.name else "an asset"
                raise ConfigError(f"{where}: {path}: {what} file {item.file!r} does not exist at {file}")
            item.file = str(file)


def _urdf_for_mujoco(path: Path, where: str) -> str:
    """The URDF's text with absolute mesh paths and the MuJoCo compiler options stated."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"{where}: {path} is not readable URDF: {exc}") from None
    for mesh in root.iter("mesh"):
        name = mesh.get("filename", "")
        if name.startswith("package://"):
            raise ConfigError(f"{where}: {path}: mesh {name!r} uses package://, which needs a ROS package path; "
                              "rewrite it relative to the URDF file")
        file = (path.parent / name).resolve()
        if not file.is_file():
            link = _link_of(root, mesh)
            raise ConfigError(f"{where}: {path}: mesh {name!r} (link {link!r}) does not exist at {file}")
        mesh.set("filename", str(file))
    _check_mimic(root, path, where)
    for old in root.findall("mujoco"):
        root.remove(old)
    extra = ET.SubElement(root, "mujoco")
    ET.SubElement(extra, "compiler", strippath="false", fusestatic="false", discardvisual="false",
                  balanceinertia="true")
    return ET.tostring(root, encoding="unicode")


def _link_of(root: ET.Element, mesh: ET.Element) -> str:
    for link in root.iter("link"):
        if any(m is mesh for m in link.iter("mesh")):
            return link.get("name", "?")
    return "?"


def _check_mimic(root: ET.Element, path: Path, where: str) -> None:
    """A mimic must name an existing joint and chains must end (MuJoCo would accept a loop and
    the constraint solver would fight it)."""
    joints = {j.get("name"): j for j in root.iter("joint")}
    source = {name: j.find("mimic").get("joint") for name, j in joints.items() if j.find("mimic") is not None}
    for name, src in source.items():
        if src not in joints:
            raise ConfigError(f"{where}: {path}: joint {name!r} mimics {src!r}, which is not a joint of this URDF")
        seen, at = {name}, src
        while at in source:
            if at in seen:
                raise ConfigError(f"{where}: {path}: joint {name!r} is in a mimic loop ({' -> '.join([*seen, at])})")
            seen.add(at)
            at = source[at]


def _add_sites(spec, mount: Mount, where: str) -> None:
    for site in mount.sites:
        body = spec.body(site.body)
        if body is None:
            names = [b.name for b in spec.bodies if b.name]
            raise ConfigError(f"{where}: key 'mount.{mount.side}.sites.{site.name}.body' = {site.body!r} is not a body "
                              f"of {mount.model.name}; its bodies: {names}")
        body.add_site(name=site.name, pos=list(site.pos), quat=list(site.quat), size=[0.005, 0.005, 0.005],
                      group=4)


def compile_quietly(spec):
    """``spec.compile()`` without MuJoCo's per-file warnings about OBJ texture coordinates
    (harmless: the meshes are drawn untextured)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return spec.compile()


def _compile(spec, where: str):
    try:
        return compile_quietly(spec)
    except Exception as exc:
        raise ConfigError(f"{where}: the composed model does not compile: {exc}") from None


def _add_armature(spec, c: Composition) -> None:
    """Rotor inertia on the mounts' joints (first matching glob): a finger link of a few grams on a
    stiff servo is otherwise too fast for the sim's time step."""
    import fnmatch

    if not c.armature:
        return
    for joint in spec.joints:
        for pattern, value in c.armature:
            if fnmatch.fnmatchcase(joint.name, pattern):
                joint.armature = max(float(joint.armature), value)
                break


def _follow_couplings(model, qpos: np.ndarray) -> None:
    """Set joints coupled by equality constraints (``j1 = offset + mult * j2``) from their source."""
    import mujoco

    for e in range(model.neq):
        if model.eq_type[e] != mujoco.mjtEq.mjEQ_JOINT or model.eq_obj2id[e] < 0:
            continue
        a, b = model.jnt_qposadr[model.eq_obj1id[e]], model.jnt_qposadr[model.eq_obj2id[e]]
        poly = model.eq_data[e]
        qpos[a] = poly[0] + poly[1] * qpos[b]
