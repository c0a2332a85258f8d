"""The stages of one session pass, each a small class with ``step(frame)``, in pipeline order.

A fixed-rate tick runs them all; a sample pass (``loop.mode = "on_sample"``: a new hand or wrist
sample while the operator drives) runs the command path only: inputs, retarget, safety, output,
tap (teleop/session/pipeline.py decides which pass runs when).
"""

from teleop.session.stages.controls import ControlsStage
from teleop.session.stages.haptics import HapticsStage
from teleop.session.stages.inputs import InputsStage
from teleop.session.stages.machine import MachineStage
from teleop.session.stages.output import OutputStage
from teleop.session.stages.policy import PolicyStage
from teleop.session.stages.retarget import RetargetStage
from teleop.session.stages.robot import RobotStage
from teleop.session.stages.safety import SafetyStage
from teleop.session.stages.status import StatusStage
from teleop.session.stages.tap import TapStage

__all__ = ["InputsStage", "ControlsStage", "RobotStage", "PolicyStage", "MachineStage", "RetargetStage",
           "SafetyStage", "OutputStage", "TapStage", "HapticsStage", "StatusStage"]
