"""Policies for interactive imitation learning: the ``Policy`` ABC and loader, a REP server that
answers ``policy_obs`` with ``policy_action`` chunks, and the non-blocking client the session's
control loop uses (docs/policies.md)."""

#: Where ``teleop policy serve`` binds and ``PolicyClient`` connects by default. Kept here, not in
#: ``teleop/bus/endpoints.py``: it is not part of a robot server's port block. Defined before the
#: imports below because the server and client modules read it.
DEFAULT_POLICY_ENDPOINT = "tcp://127.0.0.1:7630"

from teleop.policy.base import GROUP, Policy, PolicyError, available_policies, load_policy, to_action  # noqa: E402
from teleop.policy.client import PolicyClient  # noqa: E402
from teleop.policy.server import PolicyServer  # noqa: E402

__all__ = [
    "DEFAULT_POLICY_ENDPOINT",
    "GROUP",
    "Policy",
    "PolicyError",
    "available_policies",
    "load_policy",
    "to_action",
    "PolicyServer",
    "PolicyClient",
]
