"""``teleop robot check``'s command -> applied latency: taken with a clock offset it measures
itself, and a negative result reported as the clock error it is, never as a latency."""

from __future__ import annotations

from support.sim import FIXTURES, running_server

from robots.check import _Kit, apply_latency
from robots.client import ClockOffset, RobotClient
from teleop.bus import RobotEndpoints


def test_a_negative_latency_is_a_clock_error_not_a_latency():
    off = ClockOffset(offset_ns=0, rtt_ns=200_000)  # known to +-0.1 ms
    ok, text, values = apply_latency([-6.9, -6.96, -7.0], off)
    assert not ok and text.startswith("clock error") and "monotonic" in text
    assert "p50 -" not in text and "apply_latency_ms_p50" not in values
    assert values["clock_error_ms"] > 6.8
    ok, text, values = apply_latency([-0.05, -0.04, 0.02], off)  # within what the offset resolves
    assert ok and "below 0.10 ms" in text and "apply_latency_ms_p50" not in values
    ok, text, values = apply_latency([0.4, 0.5, 0.6], off)
    assert ok and "p50 0.50 ms" in text and values == {"apply_latency_ms_p50": 0.5}
    ok, text, values = apply_latency([], off)
    assert ok and "not traced" in text and values == {}


def test_the_check_does_not_trust_the_offset_taken_at_connect(port_base):
    """A connect-time offset off by half a slow round trip (3 pings while the server was busy)
    made the check print ``command->applied p50 -6.96 ms``: the check measures its own."""
    with running_server(port_base, description=FIXTURES / "tiny_bimanual.toml"):
        client = RobotClient(RobotEndpoints.on(port_base=port_base).rpc, timeout_s=2.0)
        client.connect()
        try:
            client.offset = ClockOffset(offset_ns=7_000_000, rtt_ns=14_000_000)  # what connect() once got
            result = _Kit(client, None, 0.05).command_check()
        finally:
            client.release()
            client.disconnect()
    assert result.ok, result.detail
    assert "clock error" not in result.detail and " -" not in result.detail.partition(";")[2], result.detail
