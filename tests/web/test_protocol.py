"""The XR page's wire format: the decoder raises nothing but WireError, whatever arrives."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xr_frames import frame

from teleop.web.protocol import (
    MAX_MESSAGE_BYTES,
    MAX_TEXT,
    CameraAck,
    ConsoleAction,
    VisibilityMsg,
    WireError,
    XRFrameMsg,
    decode_console,
    decode_message,
)

_json = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=6)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=6),
                     max_leaves=40)


def test_a_frame_decodes_into_webxr_axes():
    msg = decode_message(frame(7))
    assert isinstance(msg, XRFrameMsg) and msg.seq == 7 and set(msg.hands) == {"left", "right"}
    assert msg.hands["right"].joints_m.shape == (25, 3) and msg.head is not None
    assert np.isclose(np.linalg.norm(msg.hands["left"].wrist.quat_xyzw), 1)
    assert decode_message('{"type": "visibility", "state": "hidden"}') == VisibilityMsg("hidden")


@pytest.mark.parametrize("text, reason", [
    (b"\x00", "binary"), ("x" * (MAX_MESSAGE_BYTES + 1), "too_large"), ("{", "bad_json"), ("[1]", "bad_message"),
    ('{"type": "frame"}', "missing_field"), ('{"type": "x"}', "unknown_type"),
    ('{"type": "visibility", "state": "asleep"}', "bad_field"),
    ('{"type": "visibility", "state": "hidden", "more": 1}', "unknown_field"),
    (frame(1).replace('"seq": 1', '"seq": 1.5'), "bad_field"),
    (frame(1).replace('"head": [0, 1.6, 0, 0, 0, 0, 1]', '"head": [0, 1.6, 0, 0, 0, 0, 5]'), "out_of_range"),
    (frame(1).replace('"head": [0, 1.6', '"head": [NaN, 1.6'), "bad_json"),
    (frame(1).replace('"head": [0, 1.6', '"head": [1e999, 1.6'), "out_of_range"),
    (frame(1).replace('"head": [0, 1.6', '"head": [' + "9" * 400 + ', 1.6'), "out_of_range"),
    (frame(1).replace('"hands": {"left"', '"hands": {"middle"'), "bad_field"),
    # nested 8000 deep: past the recursion limit of Python 3.11/3.12's JSON scanner; 3.13's parses it
    ("[" * 8000 + "]" * 8000, "bad_json" if sys.version_info < (3, 13) else "bad_message"),
])
def test_each_bad_message_is_a_wire_error_with_its_reason(text, reason):
    with pytest.raises(WireError) as err:
        decode_message(text)
    assert err.value.reason == reason


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), _json.map(json.dumps),
                 st.dictionaries(st.sampled_from(["type", "seq", "t_ms", "hands", "controllers", "head", "state"]),
                                 _json, max_size=7).map(lambda d: json.dumps({**d, "type": "frame"}))))
def test_any_input_is_a_message_or_a_wire_error(data):
    try:
        decode_message(data)
    except WireError:
        pass


# -- the console's messages -------------------------------------------------------------------------
def test_console_actions_decode():
    assert decode_console('{"type": "action", "action": "estop"}') == ConsoleAction("estop")
    assert decode_console('{"type": "action", "action": "episode_note", "text": " shaky "}') == \
        ConsoleAction("episode_note", "shaky")
    assert decode_console('{"type": "camera_ack", "name": "head_cam", "index": 3}') == CameraAck("head_cam", 3)


@pytest.mark.parametrize("text, reason", [
    ('{"type": "action", "action": "quit"}', "bad_field"),  # only the listed actions
    ('{"type": "action", "action": "estop", "text": "x"}', "unknown_field"),
    ('{"type": "action", "action": "episode_task"}', "missing_field"),
    ('{"type": "action", "action": "episode_task", "text": "a\\u0000b"}', "bad_field"),
    ('{"type": "action", "action": "episode_task", "text": "' + "x" * (MAX_TEXT + 1) + '"}', "bad_field"),
    ('{"type": "action", "action": "episode_task", "text": 5}', "bad_field"),
    ('{"type": "camera_ack", "name": "", "index": 1}', "bad_field"),
    ('{"type": "camera_ack", "name": "c", "index": -1}', "bad_field"),
    ('{"type": "frame"}', "unknown_type"),  # an XR frame is not a console message
    (b"\x00", "binary"), ("{", "bad_json"),
])
def test_each_bad_console_message_is_a_wire_error(text, reason):
    with pytest.raises(WireError) as err:
        decode_console(text)
    assert err.value.reason == reason


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=100), _json.map(json.dumps),
                 st.dictionaries(st.sampled_from(["type", "action", "text", "name", "index"]), _json, max_size=5)
                 .map(lambda d: json.dumps({**d, "type": "action"}))))
def test_any_console_input_is_a_message_or_a_wire_error(data):
    try:
        decode_console(data)
    except WireError:
        pass
