"""Reference side of ``teleop bench retarget``: dex-retargeting's vector retargeting, run on the
same hand URDF, vector set and keypoints as our numba retargeter.

Setup
-----
dex-retargeting 0.5.0 (PyPI ``dex-retargeting``, dexsuite/dex-retargeting) needs torch, which is
NOT in its wheel metadata (its ``__init__`` raises ImportError without it), and its vendored
``yourdfpy.py`` imports ``six``, also undeclared. Pin torch so pip takes the local CPU wheel::

    python3.11 -m venv .venv-bench
    .venv-bench/bin/python -m pip install -q --upgrade pip
    .venv-bench/bin/python -m pip install "torch==2.13.0" "dex-retargeting==0.5.0" six

(~75 s here, venv ~1.6 GB, mostly torch). It resolves to numpy 2.4 / pin 4.1, so
``pip install --dry-run`` into the project venv downgrades nothing, but it would add ~1.2 GB
(torch, scipy, matplotlib via pytransform3d, sympy) to it; the separate venv keeps the project
venv lean and keeps torch's threads out of the process that times numba. Both ways work:

* in-process (dex-retargeting importable): ``run_reference(request) -> dict``;
* separate venv: ``run_reference_subprocess(request, python=".venv-bench/bin/python")``, which
  runs ``python -m teleop.bench.retarget_reference --request REQ.json --out OUT.npz`` with the
  repo root as working directory (this module imports only numpy and the standard library at
  top level, so ``teleop`` need not be installed in that venv) and reads the result back with
  ``load_result``.

Request (dict / JSON)
---------------------
``urdf_path``                  hand URDF whose ROOT link is the wrist frame (keypoints' frame)
``wrist_link_name``            passed through (dex-retargeting uses it only for dexpilot)
``target_joint_names``         OUR joint order; mimic joints may be listed (their values are
                               computed by dex-retargeting's mimic adaptor) but are not optimised
``target_origin_link_names``   m link names
``target_task_link_names``     m link names
``target_link_human_indices``  2 x m MediaPipe indices (row 0 origin, row 1 task)
``scaling_factor``, ``normal_delta``, ``huber_delta``
``low_pass_alpha``             -1 (default) = no output filter; dex-retargeting filters whenever
                               0 <= alpha <= 1 (alpha = 1 is a pass-through filter)
``keypoints_path``             .npy, (T, 21, 3), MediaPipe order, wrist frame, metres
                               (in-process callers may pass ``keypoints`` as an array instead)
optional: ``warmup_frames`` (20), ``torch_num_threads`` (leave torch's default when absent)

Response (dict; the .npz holds the same keys)
---------------------------------------------
``q``            (T, n) float64, joint values in ``target_joint_names`` order
``times_ns``     (T,) int64, ``time.perf_counter_ns()`` around ``SeqRetargeting.retarget`` only
``version``      dex-retargeting version (``dex_retargeting.__version__`` when it exists; 0.5.0
                 has none, so the installed distribution's metadata)
``optimizer``    {"class": "VectorOptimizer", "algorithm": "LD_SLSQP", "algorithm_name": ...,
                 "ftol_abs": 1e-06}
``nlopt_result`` (T,) int: NLopt's result code per frame (1..4 success, <0 failure/held)
``n_evals``      (T,) int: objective+gradient evaluations per frame
``meta``         dict: versions, joint orders, mimic/fixed joints, torch threads, warm-up, ...
In the .npz, ``version`` is a 0-d str array and ``optimizer`` / ``meta`` are JSON strings, so
``np.load(path)`` needs no pickle; ``load_result`` returns the dict above.

What is run (as dex-retargeting's own teleop example does)
----------------------------------------------------------
``RetargetingConfig.from_dict({"type": "vector", ...}).build()`` -> ``SeqRetargeting``; per frame
``ref_value = kp[task] - kp[origin]`` with the indices from
``retargeting.optimizer.target_link_human_indices`` (unscaled: the optimizer multiplies by
``scaling_factor``; SeqRetargeting casts it to float32), then ``retargeting.retarget(ref_value)``,
warm-started from the previous solution; the first frame starts at the middle of the joint
limits (``SeqRetargeting``'s own initial state). The first ``warmup_frames`` frames are solved
once untimed, then ``retargeting.reset()`` and the whole sequence is solved and timed, so ``q``
equals a fresh run's. Quirks handled here:

* ``retarget`` returns pinocchio's dof order (``retargeting.joint_names``, mimic joints
  included), which need not be the URDF's: for the bundled hands it is index, middle, pinky,
  ring, thumb. It is mapped to ``target_joint_names`` by name.
* NLopt's bounds are the URDF limits widened by 1e-3 rad (``Optimizer.set_joint_limit``), so
  ``q`` can lie up to 1e-3 rad outside the limits (``meta["lower"/"upper"]``); it is not clipped.
* Mimic joints must not be in dex-retargeting's ``target_joint_names`` (ValueError), so they are
  dropped from what it optimises; non-mimic joints not requested are held at 0 (``fixed_qpos``).
* The vector optimiser has no per-vector weights (only DexPilot has them) and runs SLSQP to
  ``ftol_abs = 1e-6`` each frame.
* SLSQP can raise ``nlopt.RoundoffLimited``, which is not a RuntimeError so dex-retargeting's own
  ``except RuntimeError`` (hold the previous solution) misses it; it is handled the same way here
  (previous solution held, ``nlopt_result`` = -4) instead of aborting the run.
* ``build()`` writes a yourdfpy-rewritten copy of the URDF into ``tempfile.mkdtemp()``; it is put
  in a temporary directory removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "REQUIRED_KEYS",
    "reference_available",
    "run_reference",
    "run_reference_subprocess",
    "save_result",
    "load_result",
    "main",
]

REQUIRED_KEYS = (
    "urdf_path",
    "wrist_link_name",
    "target_joint_names",
    "target_origin_link_names",
    "target_task_link_names",
    "target_link_human_indices",
    "scaling_factor",
    "normal_delta",
    "huber_delta",
)
DEFAULT_WARMUP_FRAMES = 20
_REPO_ROOT = Path(__file__).resolve().parents[2]


def reference_available() -> bool:
    """True when dex-retargeting (and the torch it needs) can be imported in this process."""
    from importlib.util import find_spec

    return find_spec("dex_retargeting") is not None and find_spec("torch") is not None


def _mimic_joints(urdf_path: str) -> dict[str, str]:
    """{mimic joint: source joint} from the URDF's <mimic> tags."""
    out = {}
    for joint in ET.parse(urdf_path).getroot().iter("joint"):
        mimic = joint.find("mimic")
        if mimic is not None:
            out[joint.attrib["name"]] = mimic.attrib["joint"]
    return out


def _dex_version() -> str:
    import dex_retargeting

    v = getattr(dex_retargeting, "__version__", None)
    if v:
        return str(v)
    from importlib.metadata import version

    return version("dex_retargeting")


def _nlopt_algorithm(opt: Any) -> str:
    import nlopt

    code = opt.get_algorithm()
    for name in dir(nlopt):
        if name[:3] in ("GN_", "GD_", "LN_", "LD_") and getattr(nlopt, name) == code:
            return name
    return str(code)


def reference(request: dict) -> dict:
    """dex-retargeting on ``request``: in this process when it is importable, else in
    ``$TELEOP_BENCH_PYTHON`` or the repo's ``.venv-bench`` (FileNotFoundError: neither is there)."""
    import os
    from pathlib import Path

    if reference_available():
        return run_reference(request)
    repo = Path(__file__).resolve().parents[2]
    python = os.environ.get("TELEOP_BENCH_PYTHON") or str(repo / ".venv-bench" / "bin" / "python")
    if not Path(python).exists():
        raise FileNotFoundError(f"no dex-retargeting here and no {python}; run `make bench-setup`")
    return run_reference_subprocess(request, python)


def _keypoints(request: dict) -> np.ndarray:
    if request.get("keypoints") is not None:
        kp = np.asarray(request["keypoints"], dtype=np.float64)
    else:
        kp = np.load(request["keypoints_path"], allow_pickle=False).astype(np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (21, 3) or kp.shape[0] < 1:
        raise ValueError(f"keypoints must be (T, 21, 3), got {kp.shape}")
    if not np.isfinite(kp).all():
        raise ValueError("keypoints contain NaN/inf")
    return kp


def run_reference(request: dict) -> dict:
    """Run dex-retargeting's vector retargeting over the request's keypoints (see module doc)."""
    missing = [k for k in REQUIRED_KEYS if k not in request]
    if missing:
        raise ValueError(f"request lacks {missing}")
    if request.get("keypoints") is None and "keypoints_path" not in request:
        raise ValueError("request needs keypoints_path (or keypoints)")

    import nlopt
    import torch
    from dex_retargeting.retargeting_config import RetargetingConfig

    if request.get("torch_num_threads"):
        torch.set_num_threads(int(request["torch_num_threads"]))

    urdf_path = str(Path(request["urdf_path"]).resolve())
    ours = [str(j) for j in request["target_joint_names"]]
    mimic = _mimic_joints(urdf_path)
    optimised = [j for j in ours if j not in mimic]
    indices = np.asarray(request["target_link_human_indices"], dtype=np.int64)
    alpha = float(request.get("low_pass_alpha", -1.0))
    cfg = {
        "type": "vector",
        "urdf_path": urdf_path,
        "add_dummy_free_joint": False,
        "wrist_link_name": request["wrist_link_name"],
        "target_joint_names": optimised,
        "target_origin_link_names": list(request["target_origin_link_names"]),
        "target_task_link_names": list(request["target_task_link_names"]),
        "target_link_human_indices": indices.tolist(),
        "scaling_factor": float(request["scaling_factor"]),
        "normal_delta": float(request["normal_delta"]),
        "huber_delta": float(request["huber_delta"]),
        "low_pass_alpha": alpha,
        "has_joint_limits": True,
        "ignore_mimic_joint": False,
    }
    kp = _keypoints(request)

    # build() leaves its rewritten URDF in tempfile.mkdtemp(): point that into a dir we remove.
    old_tempdir = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="retarget_reference-") as tmp:
        tempfile.tempdir = tmp
        try:
            retargeting = RetargetingConfig.from_dict(cfg).build()
        finally:
            tempfile.tempdir = old_tempdir

    optimizer = retargeting.optimizer
    dex_names = list(retargeting.joint_names)  # pinocchio dof order, mimic joints included
    unknown = [j for j in ours if j not in dex_names]
    if unknown:
        raise ValueError(f"joints {unknown} are not dof joints of {urdf_path}: {dex_names}")
    out_idx = np.array([dex_names.index(j) for j in ours], dtype=np.int64)
    fixed_names = list(optimizer.fixed_joint_names)
    fixed_qpos = np.zeros(len(fixed_names), dtype=np.float64)

    hi = np.asarray(optimizer.target_link_human_indices)
    origin, task = hi[0], hi[1]
    ref_values = np.ascontiguousarray(kp[:, task, :] - kp[:, origin, :])  # (T, m, 3), unscaled

    opt = optimizer.opt
    T = kp.shape[0]

    def solve(t: int) -> tuple[np.ndarray, int, int]:
        ref = ref_values[t]
        t0 = time.perf_counter_ns()
        try:
            qpos = retargeting.retarget(ref, fixed_qpos)
        except nlopt.RoundoffLimited:
            t1 = time.perf_counter_ns()
            # What dex-retargeting does for a RuntimeError: keep the previous solution.
            held = retargeting.get_qpos(fixed_qpos)
            if optimizer.adaptor is not None:
                held = optimizer.adaptor.forward_qpos(held)  # fill the mimic joints
            return held, t1 - t0, int(nlopt.ROUNDOFF_LIMITED)
        t1 = time.perf_counter_ns()
        return qpos, t1 - t0, int(opt.last_optimize_result())

    warmup = int(request.get("warmup_frames", DEFAULT_WARMUP_FRAMES))
    for i in range(warmup):
        solve(i % T)
    retargeting.reset()

    q = np.empty((T, len(ours)), dtype=np.float64)
    times_ns = np.empty(T, dtype=np.int64)
    results = np.empty(T, dtype=np.int64)
    n_evals = np.empty(T, dtype=np.int64)
    for t in range(T):
        qpos, dt, res = solve(t)
        times_ns[t] = dt
        results[t] = res
        n_evals[t] = opt.get_numevals()
        q[t] = np.asarray(qpos, dtype=np.float64)[out_idx]

    limits = np.asarray(optimizer.robot.joint_limits)[out_idx]
    return {
        "q": q,
        "times_ns": times_ns,
        "version": _dex_version(),
        "optimizer": {
            "class": type(optimizer).__name__,
            "algorithm": _nlopt_algorithm(opt),
            "algorithm_name": opt.get_algorithm_name(),
            "ftol_abs": float(opt.get_ftol_abs()),
        },
        "nlopt_result": results,
        "n_evals": n_evals,
        "meta": {
            "joint_names": ours,
            "dex_joint_names": dex_names,
            "dex_target_joint_names": list(optimizer.target_joint_names),
            "mimic_joints": {j: s for j, s in mimic.items() if j in dex_names},
            "fixed_joints_at_zero": fixed_names,
            "lower": limits[:, 0].tolist(),
            "upper": limits[:, 1].tolist(),
            "low_pass_alpha": alpha,
            "filter": retargeting.filter is not None,
            "warmup_frames": warmup,
            "frames": T,
            "torch": torch.__version__,
            "torch_num_threads": torch.get_num_threads(),
            "nlopt": f"{nlopt.version_major()}.{nlopt.version_minor()}.{nlopt.version_bugfix()}",
            "numpy": np.__version__,
            "python": sys.version.split()[0],
            "held_frames": int((results < 0).sum()),
        },
    }


def save_result(result: dict, out_path: str | os.PathLike) -> None:
    """Write ``run_reference``'s result as .npz (str/JSON fields as 0-d str arrays; no pickle)."""
    np.savez(
        out_path,
        q=result["q"],
        times_ns=result["times_ns"],
        nlopt_result=result["nlopt_result"],
        n_evals=result["n_evals"],
        version=np.array(result["version"]),
        optimizer=np.array(json.dumps(result["optimizer"])),
        meta=np.array(json.dumps(result["meta"])),
    )


def load_result(path: str | os.PathLike) -> dict:
    """Read a .npz written by ``save_result`` back into ``run_reference``'s dict."""
    with np.load(path, allow_pickle=False) as z:
        return {
            "q": z["q"],
            "times_ns": z["times_ns"],
            "nlopt_result": z["nlopt_result"],
            "n_evals": z["n_evals"],
            "version": str(z["version"]),
            "optimizer": json.loads(str(z["optimizer"])),
            "meta": json.loads(str(z["meta"])),
        }


def _jsonable(request: dict) -> dict:
    out = {}
    for k, v in request.items():
        if k == "keypoints":
            continue
        out[k] = v.tolist() if isinstance(v, np.ndarray) else (str(v) if isinstance(v, Path) else v)
    return out


def run_reference_subprocess(
    request: dict, python: str | os.PathLike, timeout_s: float = 600.0
) -> dict:
    """Run the reference in another interpreter (e.g. ``.venv-bench/bin/python``).

    A ``keypoints`` array in the request is written to a temporary .npy first."""
    with tempfile.TemporaryDirectory(prefix="retarget_reference-") as tmp:
        req = _jsonable(request)
        if request.get("keypoints") is not None:
            req["keypoints_path"] = os.path.join(tmp, "keypoints.npy")
            np.save(req["keypoints_path"], np.asarray(request["keypoints"], dtype=np.float64))
        req_path, out_path = os.path.join(tmp, "request.json"), os.path.join(tmp, "out.npz")
        with open(req_path, "w") as f:
            json.dump(req, f)
        env = dict(os.environ)
        paths = (str(_REPO_ROOT), env.get("PYTHONPATH"))
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        cmd = [str(python), "-m", "teleop.bench.retarget_reference"]
        cmd += ["--request", req_path, "--out", out_path]
        proc = subprocess.run(
            cmd, cwd=str(_REPO_ROOT), env=env, capture_output=True, text=True, timeout=timeout_s
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"reference run failed ({python}, exit {proc.returncode}):\n{proc.stderr[-4000:]}"
            )
        return load_result(out_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m teleop.bench.retarget_reference",
        description="dex-retargeting vector retargeting over a keypoint sequence (bench reference)",
    )
    ap.add_argument("--request", required=True, help="request JSON (see module docstring)")
    ap.add_argument("--out", required=True, help="output .npz")
    args = ap.parse_args(argv)
    with open(args.request) as f:
        request = json.load(f)
    result = run_reference(request)
    save_result(result, args.out)
    t_us = result["times_ns"] / 1e3
    print(
        json.dumps(
            {
                "version": result["version"],
                "optimizer": result["optimizer"],
                "frames": int(t_us.size),
                "p50_us": round(float(np.percentile(t_us, 50)), 1),
                "p99_us": round(float(np.percentile(t_us, 99)), 1),
                "held_frames": result["meta"]["held_frames"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
