"""The policy extension point: one small ABC (``act``) and a loader.

Policies are found like drivers (``drivers/registry.py``): entry points in the group
``teleop.policies`` (ours are declared in pyproject.toml the way a plugin declares its own)::

    [project.entry-points."teleop.policies"]
    my_policy = "my_package.my_policy:MyPolicy"

or, without installing anything, a ``module.path:attr`` spec naming a class or factory.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from teleop.bus.messages import PolicyAction, PolicyObservation
from teleop.errors import ConfigError, TeleopError

__all__ = ["GROUP", "Policy", "PolicyError", "available_policies", "load_policy", "to_action"]

GROUP = "teleop.policies"


class PolicyError(TeleopError):
    """A policy could not produce a usable action (wrong shape, non-finite values, bad model)."""


class Policy(ABC):
    """Maps an observation to joint targets. Subclasses implement ``act``; they may override
    ``reset`` (called at a rollout start, with the task text) and set the class or instance
    attributes below, which ``info`` reports to clients.

    ``n_joints`` 0 means "any" (the client does not check it); ``chunk`` is the number of rows
    ``act`` usually returns; ``dt_s`` [s] the spacing of those rows."""

    name: ClassVar[str] = ""
    n_joints: int = 0
    chunk: int = 1
    dt_s: float = 0.02

    def reset(self, task: str = "") -> None:  # noqa: B027  (optional hook; most policies keep no state)
        """Start a new rollout of ``task``."""

    @abstractmethod
    def act(self, obs: PolicyObservation) -> PolicyAction | npt.NDArray[np.float64]:
        """Joint targets for ``obs``: a ``PolicyAction``, or an array of shape (n,) or (H, n)
        whose rows are ``dt_s`` apart starting at the observation time."""

    def info(self) -> dict[str, Any]:
        return {"name": self.name or type(self).__name__, "n_joints": int(self.n_joints), "chunk": int(self.chunk),
                "dt_s": float(self.dt_s)}

    def answer(self, obs: PolicyObservation) -> PolicyAction:
        """``act`` wrapped into a checked ``PolicyAction`` echoing ``obs.obs_id`` (template method)."""
        return to_action(self.act(obs), obs, self.dt_s)


def to_action(result: PolicyAction | npt.ArrayLike, obs: PolicyObservation, dt_s: float) -> PolicyAction:
    """Wrap an array (n,) or (H, n) with ``dt_s``; check a ``PolicyAction``. Raises ``PolicyError``."""
    n = len(obs.q)
    if isinstance(result, PolicyAction):
        q = np.ascontiguousarray(result.q, dtype=np.float64)
        action = dataclasses.replace(result, obs_id=obs.obs_id, q=q)
    else:
        q = np.array(result, dtype=np.float64, ndmin=1)
        if q.ndim == 1:
            q = q[None, :]
        action = PolicyAction(obs_id=obs.obs_id, q=np.ascontiguousarray(q), dt_s=float(dt_s))
    if action.q.ndim != 2 or action.q.shape[0] < 1 or action.q.shape[1] != n:
        raise PolicyError(f"policy returned targets of shape {np.shape(action.q)}; expected (n,) or (H, n) with "
                          f"n = {n} joints of the observation and H >= 1")
    if not np.isfinite(action.q).all():
        raise PolicyError("policy returned non-finite joint targets (NaN or inf)")
    if not (action.dt_s > 0 and np.isfinite(action.dt_s)) or not np.isfinite(action.start_s):
        raise PolicyError(f"policy returned dt_s={action.dt_s}, start_s={action.start_s}; dt_s must be > 0 [s]")
    return action


def available_policies() -> dict[str, EntryPoint]:
    """Name -> entry point of group ``teleop.policies``, sorted by name (nothing is imported)."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name)}


def _resolve(spec: str) -> Callable[..., Any]:
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ConfigError(f"policy {spec!r}: write an entry-point name or module.path:attr")
        try:
            obj: Any = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(f"policy {spec!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") \
                from None
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                public = sorted(n for n in dir(obj) if not n.startswith("_"))
                raise ConfigError(f"policy {spec!r}: {module_name} has no attribute {attr!r}; it has {public[:20]}") \
                    from None
        return obj
    eps = available_policies()
    if spec not in eps:
        near = difflib.get_close_matches(spec, list(eps), n=3)
        hint = f" Did you mean {near}?" if near else ""
        raise ConfigError(f"no policy named {spec!r}.{hint} Installed policies (entry points {GROUP!r}): "
                          f"{sorted(eps)}; or give module.path:attr of a Policy class or factory")
    try:
        return eps[spec].load()
    except Exception as exc:
        raise ConfigError(f"policy {spec!r} ({eps[spec].value}) failed to import: {type(exc).__name__}: {exc}") \
            from None


def load_policy(spec: str, options: dict[str, Any] | None = None) -> Policy:
    """A policy from an entry-point name (``replay``, ``bc``) or ``module.path:attr``; the class
    or factory is called with ``**options``. Raises ``ConfigError`` saying what is installed."""
    options = dict(options or {})
    factory = _resolve(spec)
    if not callable(factory):
        raise ConfigError(f"policy {spec!r} is a {type(factory).__name__}, not a Policy class or factory")
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as exc:
        raise ConfigError(f"policy {spec!r}: options {sorted(options)} do not fit {_signature(factory)}: {exc}") \
            from None
    except ValueError:  # no signature (builtins): let the call decide
        pass
    try:
        policy = factory(**options)
    except ConfigError:
        raise
    except Exception as exc:
        what = str(exc) if isinstance(exc, TeleopError) else f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"policy {spec!r} with options {options} failed to start: {what}") from exc
    if not isinstance(policy, Policy):
        raise ConfigError(f"policy {spec!r} made a {type(policy).__name__}, not a teleop.policy.Policy subclass")
    return policy


def _signature(obj: Callable[..., Any]) -> str:
    try:
        return f"{getattr(obj, '__name__', obj)}{inspect.signature(obj)}"
    except (TypeError, ValueError):
        return repr(obj)
