"""The my_glove driver against a fake glove on a real pseudo-terminal: the runtime's conformance
check, then the device's own bad cases."""

import math
import time

from drivers.testing import FakeSerialDevice, check_driver

from teleop_driver_example.my_glove import MyGloveConfig, MyGloveDriver


def closing_hand(k: int) -> bytes:
    """Reading k of a hand that slowly closes and opens, as the glove sends it."""
    curl = 0.5 - 0.4 * math.cos(k / 40)
    return (",".join(f"{curl:.3f}" for _ in range(5)) + "\n").encode()


def test_conformance():
    with FakeSerialDevice(closing_hand, rate_hz=200) as glove:
        samples = check_driver(lambda: MyGloveDriver(MyGloveConfig(port=glove.path)), kinds=("hand",))
    assert all(s.keypoints.shape == (21, 3) and len(s.channels) == 5 for s in samples)


def test_bad_lines_are_counted_and_the_stream_goes_on():
    bad = {1: b"hello\n", 2: b"0.1,0.2\n", 3: b"nan,0,0,0,0\n"}
    with (FakeSerialDevice(lambda k: bad.get(k % 10, closing_hand(k)), rate_hz=200) as glove,
          MyGloveDriver(MyGloveConfig(port=glove.path)) as drv):
        deadline = time.monotonic() + 5
        while drv.health().errors.get("bad_line", 0) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert drv.health().errors.get("bad_line", 0) >= 6
        assert drv.get_sample(1.0).keypoints.shape == (21, 3)
