"""Reference behaviour cloning in NumPy: a k-nearest-neighbour and a small MLP chunk predictor.

A baseline to exercise the policy path and to check that recorded data is learnable, not a
state-of-the-art policy. Both learn the same mapping:

* features: the measured joint positions ``q`` (n,) and the object positions
  ``body_pose[:, :3]`` (b, 3) flattened, each standardised with the training mean and std;
  optionally (``time_weight`` > 0) the time since the rollout started, standardised and scaled by
  ``time_weight``: a demonstration that pauses (the robot still while the hand closes) has states
  that alone do not say what comes next;
* targets: the next ``chunk`` executed commands (``session/command`` ``q``), resampled at ``fps``
  by zero-order hold: row j is the command in force at ``t + j / fps``.

Samples are the ``fps`` grid over the span where both streams exist. Which frames teach
(weights, as in HG-DAgger and Sirius): frames commanded by a human while ``engaged`` weigh 1;
intervention frames (``SessionCommand.intervention``, a human correcting the policy)
``intervention_weight`` (HG-DAgger: corrections matter most); frames the policy authored itself
``policy_weight`` (default 0: cloning one's own rollouts teaches nothing new); frames not
``engaged`` (ramping, hold, estop, idle) 0. ``only_interventions`` keeps only intervention frames.

The model is one ``.npz`` file (``np.load(..., allow_pickle=False)`` safe): arrays plus a JSON
``meta`` string. ``BCPolicy(model)`` serves it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from teleop.bus.messages import PolicyAction, PolicyObservation
from teleop.errors import ConfigError
from teleop.policy.base import Policy, PolicyError

__all__ = ["train_bc", "BCPolicy", "Samples", "build_samples", "KINDS", "MODEL_FORMAT"]

KINDS = ("knn", "mlp")
MODEL_FORMAT = "teleop-bc/1"
STATE_TOPIC, COMMAND_TOPIC = "robot/state", "session/command"
_EXACT = 1e-9  # standardised squared distance under which a training state counts as the same state


class Samples(NamedTuple):
    """Training frames. Shapes: ``features`` (N, n + 3b + 1: the last column is the time since the
    first command, used when ``time_weight`` > 0), ``targets`` (N, chunk, n), ``q`` (N, n)
    measured joints, ``intervention`` (N,) bool, ``weight`` (N,) float."""

    features: npt.NDArray[np.float64]
    targets: npt.NDArray[np.float64]
    q: npt.NDArray[np.float64]
    intervention: npt.NDArray[np.bool_]
    weight: npt.NDArray[np.float64]
    episodes: list[str]
    skipped: list[dict[str, str]]
    n_joints: int
    n_bodies: int


def _episode_folders(paths: Iterable[str | Path], *, only_success: bool = False,
                     include_discarded: bool = False) -> tuple[list[Path], list[dict[str, str]]]:
    """Episode folders from episode folders, ``DATASET:INDEX`` or dataset folders (complete and
    recovered episodes only; not those marked discarded unless ``include_discarded``; only those
    labelled success with ``only_success``), and the ones left out with why."""
    from recorder.episode import LOG_NAME, META_NAME, list_episodes, read_meta, resolve_episode

    out: list[Path] = []
    skipped: list[dict[str, str]] = []

    def take(folder: Path, outcome: str, discarded: bool) -> None:
        if discarded and not include_discarded:
            skipped.append({"episode": str(folder), "reason": "discarded (`teleop episodes restore`, or "
                            "--include-discarded)"})
        elif only_success and outcome != "success":
            skipped.append({"episode": str(folder), "reason": f"outcome {outcome!r} (--only-success)"})
        else:
            out.append(folder)

    for p in paths:
        path = Path(p)
        if (path / LOG_NAME).is_file() or (path / META_NAME).is_file() or (":" in str(p) and not path.exists()):
            folder = resolve_episode(p)
            meta = read_meta(folder) if (folder / META_NAME).is_file() else {}
            take(folder, str(meta.get("outcome") or "unknown"), bool(meta.get("discarded")))
        elif path.is_dir():
            for e in list_episodes(path):
                if e.status in ("complete", "recovered"):
                    take(Path(e.path), e.outcome, e.discarded)
        else:
            raise ConfigError(f"{p}: not a dataset folder, an episode folder or DATASET:INDEX")
    return out, skipped


def build_samples(episode_paths: Iterable[str | Path], *, fps: float = 50, chunk: int = 10,
                  only_interventions: bool = False, intervention_weight: float = 5.0,
                  policy_weight: float = 0.0, only_success: bool = False,
                  include_discarded: bool = False) -> Samples:
    """Training frames of the episodes (see the module docstring); frames of weight 0 are kept
    (the caller drops them) so counts stay honest. ``only_success``: episodes labelled success
    only; discarded episodes only with ``include_discarded``."""
    from recorder.reader import load_episode

    if not fps > 0 or chunk < 1:
        raise ConfigError(f"fps={fps} must be > 0 and chunk={chunk} >= 1")
    episode_paths = list(episode_paths)
    step_ns = 1e9 / fps
    feats, targets, qs, intervs, weights, used = [], [], [], [], [], []
    folders, skipped = _episode_folders(episode_paths, only_success=only_success, include_discarded=include_discarded)
    if not folders and only_success:
        raise ConfigError(f"no episode labelled success in {[str(p) for p in episode_paths]} ({len(skipped)} left "
                          "out); label finished episodes with `teleop episodes label DATASET:INDEX --success`, or "
                          "train without --only-success")
    n_joints = n_bodies = -1
    for folder in folders:
        ep = load_episode(folder, topics=(STATE_TOPIC, COMMAND_TOPIC))
        missing = [t for t in (STATE_TOPIC, COMMAND_TOPIC) if len(ep.streams.get(t, ())) < 2]
        if missing:
            skipped.append({"episode": str(folder), "reason": f"no {' or '.join(missing)} stream"})
            continue
        st, cm = ep.stream(STATE_TOPIC), ep.stream(COMMAND_TOPIC)
        q_state = st.array("q", np.float64)  # (S, n)
        pos = st.array("body_pose", np.float64)[:, :, :3]  # (S, b, 3)
        q_cmd = cm.array("q", np.float64)  # (C, n)
        if q_state.shape[1] != q_cmd.shape[1]:
            skipped.append({"episode": str(folder), "reason": f"state has {q_state.shape[1]} joints, commands "
                            f"{q_cmd.shape[1]}"})
            continue
        if n_joints < 0:
            n_joints, n_bodies = q_state.shape[1], pos.shape[1]
        elif (q_state.shape[1], pos.shape[1]) != (n_joints, n_bodies):
            raise ConfigError(f"{folder}: {q_state.shape[1]} joints and {pos.shape[1]} bodies, but earlier episodes "
                              f"have {n_joints} and {n_bodies}; train one model per robot and scene")
        t0, t1 = max(st.t_ns[0], cm.t_ns[0]), min(st.t_ns[-1], cm.t_ns[-1])
        if t1 <= t0:
            skipped.append({"episode": str(folder), "reason": "state and command streams do not overlap"})
            continue
        grid = t0 + np.round(np.arange(int((t1 - t0) // step_ns) + 1) * step_ns).astype(np.int64)  # (F,)
        i_state = np.searchsorted(st.t_ns, grid, side="right") - 1
        rows = grid[:, None] + np.round(np.arange(chunk) * step_ns).astype(np.int64)  # (F, chunk)
        i_cmd = np.clip(np.searchsorted(cm.t_ns, rows, side="right") - 1, 0, len(cm.t_ns) - 1)
        now = i_cmd[:, 0]
        interv = cm.array("intervention", bool)[now]
        author = cm.array("author")[now]
        engaged = cm.array("state")[now] == "engaged"
        w = np.where(interv, intervention_weight, np.where(author == "policy", policy_weight, 1.0))
        w = np.where(author == "hold", 0.0, w)
        w = np.where(engaged, w, 0.0)
        if only_interventions:
            w = np.where(interv, w, 0.0)
        t_s = (grid - cm.t_ns[0]) / 1e9  # time since the loop's first command = PolicyObservation.episode_time_s
        feats.append(np.concatenate([q_state[i_state], pos[i_state].reshape(len(grid), -1), t_s[:, None]], axis=1))
        targets.append(q_cmd[i_cmd])
        qs.append(q_state[i_state])
        intervs.append(interv)
        weights.append(w.astype(np.float64))
        used.append(str(folder))
    if not used:
        raise ConfigError(f"no usable episodes in {[str(p) for p in episode_paths]}: {skipped or 'none found'}")
    return Samples(np.concatenate(feats), np.concatenate(targets), np.concatenate(qs), np.concatenate(intervs),
                   np.concatenate(weights), used, skipped, n_joints, n_bodies)


def _standardiser(x: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    return mean, np.where(std > 1e-8, std, 1.0)


def train_bc(
    episode_paths: Iterable[str | Path],
    out_path: str | Path,
    kind: Literal["knn", "mlp"] = "knn",
    fps: float = 50,
    chunk: int = 10,
    seed: int = 0,
    only_interventions: bool = False,
    intervention_weight: float = 5.0,
    policy_weight: float = 0.0,
    *,
    k: int = 3,
    hidden: int = 128,
    epochs: int = 10,
    batch: int = 256,
    lr: float = 2e-3,
    time_weight: float = 0.0,
    only_success: bool = False,
    include_discarded: bool = False,
) -> dict[str, Any]:
    """Train a kNN or MLP chunk predictor on the episodes (dataset folders, episode folders or
    ``DATASET:INDEX``), write it to ``out_path`` (.npz) and return a report (JSON-ready).
    Deterministic for a given ``seed`` (and machine)."""
    if kind not in KINDS:
        raise ConfigError(f"kind {kind!r}; choose one of {list(KINDS)}")
    if not 1 <= k <= 5:
        raise ConfigError(f"k={k}: the kNN uses 1..5 neighbours")
    if hidden < 1 or epochs < 1 or batch < 1 or not lr > 0:
        raise ConfigError(f"hidden={hidden}, epochs={epochs}, batch={batch} must be >= 1 and lr={lr} > 0")
    out = Path(out_path)
    if out.suffix != ".npz":
        raise ConfigError(f"model file {out}: the name must end in .npz")
    t_start = time.perf_counter()
    episode_paths = list(episode_paths)
    s = build_samples(episode_paths, fps=fps, chunk=chunk, only_interventions=only_interventions,
                      intervention_weight=intervention_weight, policy_weight=policy_weight,
                      only_success=only_success, include_discarded=include_discarded)
    keep = s.weight > 0
    if not keep.any():
        what = "intervention frames" if only_interventions else "frames commanded by a human while engaged"
        raise ConfigError(f"no training frames: the {len(s.weight)} frames of {len(s.episodes)} episodes hold no "
                          f"{what} (or their weights are 0)")
    x, y, q, w = s.features[keep], s.targets[keep], s.q[keep], s.weight[keep]
    n = s.n_joints
    if not time_weight > 0:
        x = x[:, :-1]  # no time feature
    x_mean, x_std = _standardiser(x)
    if time_weight > 0:
        x_std[-1] /= time_weight  # the standardised time column counts time_weight times
    xs = (x - x_mean) / x_std
    meta: dict[str, Any] = {
        "format": MODEL_FORMAT, "kind": kind, "n_joints": n, "n_bodies": s.n_bodies, "chunk": int(chunk),
        "fps": float(fps), "seed": int(seed), "episodes": s.episodes, "k": int(k),
        "features": "q (n) then body_pose[:, :3] flattened (3b), standardised"
                    + (f", then episode time x {time_weight}" if time_weight > 0 else ""),
        "time_weight": float(time_weight),
    }
    arrays: dict[str, Any] = {"x_mean": x_mean, "x_std": x_std}
    if kind == "knn":
        arrays.update(x=xs, y=y.reshape(len(y), -1), w=w)
        model: _Model = _Knn(xs, y.reshape(len(y), -1), w, k)
    else:
        residual = (y - q[:, None, :]).reshape(len(y), -1)  # targets relative to the measured q
        y_mean, y_std = _standardiser(residual)
        with _single_threaded_blas():
            params, losses = _train_mlp(xs, (residual - y_mean) / y_std, w, hidden, epochs, batch, lr, seed)
        arrays.update(y_mean=y_mean, y_std=y_std, **params)
        meta.update(hidden=hidden, epochs=epochs, batch=batch, lr=lr, final_loss=float(losses[-1]))
        model = _Mlp(params, y_mean, y_std)
    pred = model.predict(xs).reshape(y.shape)
    if kind == "mlp":
        pred += q[:, None, :]
    err = np.abs(pred - y)
    report = {
        "model": str(out_path), "kind": kind, "episodes": len(s.episodes), "skipped": s.skipped,
        "frames": int(len(s.weight)), "used_frames": int(keep.sum()),
        "intervention_frames": int(s.intervention[keep].sum()), "n_joints": n, "n_bodies": s.n_bodies,
        "chunk": int(chunk), "fps": float(fps), "seed": int(seed),
        "train_rmse_rad": round(float(np.sqrt(np.mean(err**2))), 6), "train_max_err_rad": round(float(err.max()), 6),
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    meta["report"] = report
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp, **arrays)
    tmp.replace(out)  # a reader never sees half a model
    return report


# -- models ----------------------------------------------------------------------------------------

class _Model:
    def predict(self, xs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Standardised features (N, d) -> flat targets (N, chunk * n)."""
        raise NotImplementedError


class _Knn(_Model):
    """Distance-weighted k nearest neighbours (times each sample's weight). A query that equals
    a training state (squared distance < ``_EXACT``) gets that state's targets exactly."""

    def __init__(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, k: int) -> None:
        self.x, self.y, self.w, self.k = x, y, w, min(k, len(x))
        self.x_sq = np.einsum("ij,ij->i", x, x)

    def predict(self, xs: np.ndarray) -> np.ndarray:
        out = np.empty((len(xs), self.y.shape[1]))
        for r in range(0, len(xs), 1024):  # bounded memory for batch predictions
            q = xs[r : r + 1024]
            d2 = self.x_sq[None, :] - 2.0 * (q @ self.x.T) + np.einsum("ij,ij->i", q, q)[:, None]
            nn = np.argpartition(d2, self.k - 1, axis=1)[:, : self.k] if self.k < len(self.x) else \
                np.broadcast_to(np.arange(len(self.x)), (len(q), len(self.x)))
            for j in range(len(q)):
                idx = nn[j]
                d2j = np.sum((self.x[idx] - q[j]) ** 2, axis=1)  # exact, not the expanded form
                exact = d2j < _EXACT
                if exact.any():
                    idx, wj = idx[exact], self.w[idx[exact]]
                else:
                    wj = self.w[idx] / np.sqrt(d2j)
                out[r + j] = wj @ self.y[idx] / wj.sum()
        return out


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run OpenBLAS on one thread while training: the MLP's matrices are small, and OpenBLAS
    threads that spin for a busy core made a training step 10-30x slower on a loaded 2-core
    machine. Best effort, what threadpoolctl does (not a dependency): finds the OpenBLAS that
    NumPy loaded in /proc/self/maps; elsewhere nothing changes."""
    setter = getter = None
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
        for path in sorted(paths):
            lib = ctypes.CDLL(path)  # already loaded: the same handle NumPy uses
            for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
                set_fn = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                get_fn = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if set_fn is not None and get_fn is not None:
                    setter, getter = set_fn, get_fn
                    break
            if setter is not None:
                break
    except OSError:
        setter = None
    if setter is None or getter is None:
        yield
        return
    before = int(getter())
    setter(1)
    try:
        yield
    finally:
        setter(before)


def _mlp_forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    h1 = np.tanh(x @ params["w1"] + params["b1"])
    h2 = np.tanh(h1 @ params["w2"] + params["b2"])
    return h1, h2, h2 @ params["w3"] + params["b3"]


class _Mlp(_Model):
    def __init__(self, params: dict[str, np.ndarray], y_mean: np.ndarray, y_std: np.ndarray) -> None:
        self.params = {key: v.astype(np.float64) for key, v in params.items()}
        self.y_mean, self.y_std = y_mean, y_std

    def predict(self, xs: np.ndarray) -> np.ndarray:
        """Returns the residual targets (the caller adds the measured ``q``)."""
        return _mlp_forward(self.params, xs)[2] * self.y_std + self.y_mean


def _train_mlp(x: np.ndarray, y: np.ndarray, w: np.ndarray, hidden: int, epochs: int, batch: int, lr: float,
               seed: int) -> tuple[dict[str, np.ndarray], list[float]]:
    """Two tanh hidden layers, weighted mean-squared error, Adam with a cosine learning-rate decay,
    float32 arithmetic. Returns the parameters and the loss per epoch."""
    rng = np.random.default_rng(seed)
    f32 = np.float32
    d_in, d_out = x.shape[1], y.shape[1]

    def init(fan_in: int, fan_out: int) -> np.ndarray:
        return (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(f32)

    p = {"w1": init(d_in, hidden), "b1": np.zeros(hidden, f32), "w2": init(hidden, hidden),
         "b2": np.zeros(hidden, f32), "w3": init(hidden, d_out) * f32(0.1), "b3": np.zeros(d_out, f32)}
    m = {key: np.zeros_like(v) for key, v in p.items()}
    v2 = {key: np.zeros_like(v) for key, v in p.items()}
    x32, y32, w32 = x.astype(f32), y.astype(f32), (w / w.mean()).astype(f32)
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = max(1, -(-len(x) // batch))
    total, step, losses = epochs * steps_per_epoch, 0, []
    for _ in range(epochs):
        order = rng.permutation(len(x))
        epoch_loss = 0.0
        for s in range(steps_per_epoch):
            idx = order[s * batch : (s + 1) * batch]
            xb, yb, wb = x32[idx], y32[idx], w32[idx, None]
            h1, h2, out = _mlp_forward(p, xb)
            diff = out - yb
            epoch_loss += float(np.sum(wb * diff**2)) / (d_out * len(x))
            g_out = (2.0 / (len(idx) * d_out)) * wb * diff
            g = {"w3": h2.T @ g_out, "b3": g_out.sum(0)}
            g_h2 = (g_out @ p["w3"].T) * (1.0 - h2**2)
            g["w2"], g["b2"] = h1.T @ g_h2, g_h2.sum(0)
            g_h1 = (g_h2 @ p["w2"].T) * (1.0 - h1**2)
            g["w1"], g["b1"] = xb.T @ g_h1, g_h1.sum(0)
            step += 1
            rate = f32(lr * 0.5 * (1.0 + np.cos(np.pi * (step - 1) / total)))
            c1, c2 = f32(1 - b1**step), f32(1 - b2**step)
            for key in p:
                m[key] = b1 * m[key] + (1 - b1) * g[key]
                v2[key] = b2 * v2[key] + (1 - b2) * g[key] ** 2
                p[key] -= rate * (m[key] / c1) / (np.sqrt(v2[key] / c2) + eps)
        losses.append(epoch_loss)
    return p, losses


class BCPolicy(Policy):
    """Serves a model written by ``train_bc``. ``k`` overrides a kNN model's neighbour count."""

    name: ClassVar[str] = "bc"

    def __init__(self, model: str | Path, k: int | None = None) -> None:
        path = Path(model)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {key: z[key] for key in z.files}
        except FileNotFoundError:
            raise ConfigError(f"bc policy: no model file {path}; train one with `teleop policy train`") from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"bc policy: {path} is not a model file from `teleop policy train`: {exc}") from None
        try:
            meta = json.loads(str(arrays.pop("meta")))
        except (KeyError, ValueError):
            raise ConfigError(f"bc policy: {path} has no meta record; is it from `teleop policy train`?") from None
        if meta.get("format") != MODEL_FORMAT or meta.get("kind") not in KINDS:
            raise ConfigError(f"bc policy: {path} is format {meta.get('format')!r} kind {meta.get('kind')!r}; "
                              f"this build reads {MODEL_FORMAT} ({list(KINDS)})")
        self.path = str(path)
        self.meta = meta
        self.kind = meta["kind"]
        self.n_joints = int(meta["n_joints"])
        self.n_bodies = int(meta["n_bodies"])
        self.chunk = int(meta["chunk"])
        self.dt_s = 1.0 / float(meta["fps"])
        self.x_mean, self.x_std = arrays["x_mean"], arrays["x_std"]
        if self.kind == "knn":
            kk = int(meta["k"]) if k is None else int(k)
            if not 1 <= kk <= 5:
                raise ConfigError(f"bc policy: k={kk}; use 1..5 neighbours")
            self.model: _Model = _Knn(arrays["x"], arrays["y"], arrays["w"], kk)
        else:
            params = {key: arrays[key] for key in ("w1", "b1", "w2", "b2", "w3", "b3")}
            self.model = _Mlp(params, arrays["y_mean"], arrays["y_std"])
        self.timed = float(meta.get("time_weight", 0.0)) > 0
        self._x = np.empty(self.n_joints + 3 * self.n_bodies + (1 if self.timed else 0))

    def info(self) -> dict[str, Any]:
        return {**super().info(), "kind": self.kind, "model": self.path}

    def act(self, obs: PolicyObservation) -> PolicyAction:
        n, b = self.n_joints, self.n_bodies
        if len(obs.q) != n or obs.object_poses.shape[0] != b:
            raise PolicyError(f"bc model {self.path} was trained on {n} joints and {b} bodies; the observation has "
                              f"{len(obs.q)} joints and {obs.object_poses.shape[0]} bodies")
        self._x[:n] = obs.q
        self._x[n: n + 3 * b] = obs.object_poses[:, :3].ravel()
        if self.timed:
            self._x[-1] = obs.episode_time_s
        xs = ((self._x - self.x_mean) / self.x_std)[None, :]
        q = self.model.predict(xs).reshape(self.chunk, n)
        if self.kind == "mlp":
            q += obs.q
        return PolicyAction(obs_id=obs.obs_id, q=q, dt_s=self.dt_s)
