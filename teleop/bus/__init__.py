"""The bus: ZeroMQ transport, msgpack messages with strict decoding, CURVE security."""

from teleop.bus.codec import SCHEMA_VERSION, Decoder, DecodeStats, Encoder, Header, Message
from teleop.bus.endpoints import (
    TOPIC_CAMERA,
    TOPIC_COMMAND,
    TOPIC_STATE,
    RobotEndpoints,
    describe_defaults,
    is_loopback,
    require_secure,
)
from teleop.bus.messages import (
    CameraFrame,
    HandKeypoints,
    JointCommand,
    Reply,
    Request,
    RobotSpec,
    RobotState,
    WristMatrix,
    WristPose,
)
from teleop.bus.security import CurveKeys, generate_keys
from teleop.bus.sockets import Bus, Publisher, Received, RpcClient, RpcServer, Subscriber

__all__ = [
    "SCHEMA_VERSION",
    "Decoder",
    "DecodeStats",
    "Encoder",
    "Header",
    "Message",
    "TOPIC_CAMERA",
    "TOPIC_COMMAND",
    "TOPIC_STATE",
    "RobotEndpoints",
    "describe_defaults",
    "is_loopback",
    "require_secure",
    "CameraFrame",
    "HandKeypoints",
    "WristMatrix",
    "WristPose",
    "JointCommand",
    "Reply",
    "Request",
    "RobotSpec",
    "RobotState",
    "CurveKeys",
    "generate_keys",
    "Bus",
    "Publisher",
    "Received",
    "RpcClient",
    "RpcServer",
    "Subscriber",
]
