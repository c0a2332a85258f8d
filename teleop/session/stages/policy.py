"""Policy: the robot's observation goes to the policy at the robot-state rate (with the
operator's hands, for policies that use them, and the fingertip forces); its action for now is
read every tick (``frame.have_policy`` False: late or missing, the arbiter holds)."""

from __future__ import annotations

from teleop.session.frame import Frame

__all__ = ["PolicyStage"]


class PolicyStage:
    name = "policy"

    def __init__(self, policy, t_start_ns: int) -> None:
        self.policy = policy
        self.t_start_ns = t_start_ns

    def step(self, f: Frame) -> None:
        st = f.fresh_state
        if st is not None:
            self.policy.observe(f.now_ns, (f.now_ns - self.t_start_ns) / 1e9, st.q, st.dq, f.q_cmd, st.body_pose,
                                f.keypoints, st.fingertip_force)
        f.have_policy = self.policy.action_at(f.now_ns, f.q_policy)
