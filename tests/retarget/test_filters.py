"""One-Euro filters vs plain Python references; timestamps; quaternion behaviour; config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from retarget.filters import FilterConfig, KeypointFilter, OneEuroFilter, PoseFilter
from teleop.errors import ConfigError


class RefOneEuro:
    """Casiez et al. 2012, one channel, written from the paper's pseudo-code."""

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x_hat: float | None = None
        self.dx_hat = 0.0
        self.t = 0.0

    @staticmethod
    def alpha(rate: float, cutoff: float) -> float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        te = 1.0 / rate
        return 1.0 / (1.0 + tau / te)

    def __call__(self, x: float, t: float) -> float:
        if self.x_hat is None:
            self.x_hat, self.t = x, t
            return x
        if not t > self.t:
            return self.x_hat
        rate = 1.0 / (t - self.t)
        dx = (x - self.x_hat) * rate
        self.dx_hat = (
            self.alpha(rate, self.d_cutoff) * dx
            + (1 - self.alpha(rate, self.d_cutoff)) * self.dx_hat
        )
        cutoff = self.min_cutoff + self.beta * abs(self.dx_hat)
        a = self.alpha(rate, cutoff)
        self.x_hat = a * x + (1 - a) * self.x_hat
        self.t = t
        return self.x_hat


def _times(rng: np.random.Generator, n: int, repeat_every: int = 0) -> np.ndarray:
    t = np.cumsum(rng.uniform(0.002, 0.02, n))
    if repeat_every:
        t[repeat_every::repeat_every] = t[repeat_every - 1 :: repeat_every][
            : len(t[repeat_every::repeat_every])
        ]
    return t


@pytest.mark.parametrize("params", [(1.0, 0.0, 1.0), (0.5, 0.8, 2.0), (3.0, 20.0, 0.7)])
def test_one_euro_matches_reference(params: tuple[float, float, float]) -> None:
    rng = np.random.default_rng(10)
    n, steps = 5, 300
    xs = np.cumsum(rng.normal(0, 0.05, (steps, n)), axis=0) + rng.normal(0, 0.01, (steps, n))
    ts = _times(rng, steps, repeat_every=17)
    filt = OneEuroFilter(n, *params)
    refs = [RefOneEuro(*params) for _ in range(n)]
    out = np.empty(n)
    for x, t in zip(xs, ts, strict=True):
        assert filt.filter(x, t, out=out) is out
        np.testing.assert_allclose(
            out, [r(float(v), float(t)) for r, v in zip(refs, x, strict=True)], rtol=0, atol=1e-12
        )


def test_step_input_converges() -> None:
    filt = OneEuroFilter(3, min_cutoff_hz=1.0, beta=0.5)
    filt.filter(np.zeros(3), 0.0)
    target = np.array([1.0, -2.0, 0.5])
    for i in range(1, 1001):
        y = filt.filter(target, i * 0.01)
    np.testing.assert_allclose(y, target, atol=1e-9)
    const = OneEuroFilter(2)
    for i in range(5):
        np.testing.assert_array_equal(const.filter([3.0, 4.0], i * 0.01), [3.0, 4.0])


def test_non_increasing_timestamps_hold_previous_output() -> None:
    filt = OneEuroFilter(2, beta=1.0)
    filt.filter([0.0, 0.0], 1.0)
    y1 = filt.filter([1.0, 1.0], 1.01).copy()
    for t in (1.01, 1.01, 1.0, float("nan")):  # repeated, backwards, NaN
        y = filt.filter([5.0, -5.0], t)
        assert np.all(np.isfinite(y))
        np.testing.assert_array_equal(y, y1)
    y2 = filt.filter([1.0, 1.0], 1.02)  # state untouched by the rejected samples
    ref = OneEuroFilter(2, beta=1.0)
    for x, t in (([0.0, 0.0], 1.0), ([1.0, 1.0], 1.01), ([1.0, 1.0], 1.02)):
        expected = ref.filter(x, t)
    np.testing.assert_array_equal(y2, expected)


def test_reset_passes_the_next_sample_through() -> None:
    filt = OneEuroFilter(1)
    filt.filter([0.0], 0.0)
    filt.filter([1.0], 0.01)
    filt.reset()
    assert not filt.initialised
    np.testing.assert_array_equal(filt.filter([7.0], 0.0), [7.0])


def test_in_place_output() -> None:
    rng = np.random.default_rng(11)
    a, b = OneEuroFilter(4, beta=0.3), OneEuroFilter(4, beta=0.3)
    for i in range(20):
        x = rng.normal(size=4)
        expected = a.filter(x, i * 0.01)
        assert b.filter(x, i * 0.01, out=x) is x
        np.testing.assert_array_equal(x, expected)


def test_keypoint_filter_is_63_channels() -> None:
    rng = np.random.default_rng(12)
    cfg = FilterConfig(min_cutoff_hz=1.5, beta=2.0, d_cutoff_hz=1.0)
    kf, flat = KeypointFilter(cfg), OneEuroFilter.from_config(63, cfg)
    out = np.empty((21, 3))
    for i in range(30):
        k = rng.normal(size=(21, 3))
        assert kf.filter(k, i / 90, out=out) is out
        np.testing.assert_array_equal(out, flat.filter(k.reshape(63), i / 90).reshape(21, 3))
    with pytest.raises(ValueError, match=r"\(21, 3\)"):
        kf.filter(np.zeros((20, 3)), 1.0)


def test_wrong_input_shape() -> None:
    with pytest.raises(ValueError, match=r"\(3,\)"):
        OneEuroFilter(3).filter(np.zeros(4), 0.0)


# --- quaternions -----------------------------------------------------------------------------


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, av, bw, bv = a[0], a[1:], b[0], b[1:]
    return np.concatenate([[aw * bw - av @ bv], aw * bv + bw * av + np.cross(av, bv)])


def qconj(a: np.ndarray) -> np.ndarray:
    return a * np.array([1.0, -1.0, -1.0, -1.0])


def qlog(a: np.ndarray) -> np.ndarray:
    """Rotation vector of the unit quaternion ``a`` (shortest arc)."""
    if a[0] < 0:
        a = -a
    s = np.linalg.norm(a[1:])
    return np.zeros(3) if s == 0 else 2.0 * math.atan2(s, a[0]) * a[1:] / s


def qexp(r: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(r)
    if angle == 0:
        return np.array([1.0, 0.0, 0.0, 0.0])
    return np.concatenate([[math.cos(angle / 2)], math.sin(angle / 2) * r / angle])


class RefSO3OneEuro:
    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        self.p = (min_cutoff, beta, d_cutoff)
        self.q: np.ndarray | None = None
        self.w = np.zeros(3)
        self.t = 0.0

    def __call__(self, q: np.ndarray, t: float) -> np.ndarray:
        q = q / np.linalg.norm(q)
        if self.q is None:
            self.q, self.t = (q if q[0] >= 0 else -q), t
            return self.q
        if not t > self.t:
            return self.q
        dt = t - self.t
        r = qlog(qmul(qconj(self.q), q))
        a_d = RefOneEuro.alpha(1 / dt, self.p[2])
        self.w = a_d * r / dt + (1 - a_d) * self.w
        a = RefOneEuro.alpha(1 / dt, self.p[0] + self.p[1] * float(np.linalg.norm(self.w)))
        self.q = qmul(self.q, qexp(a * r))
        self.t = t
        return self.q


def _rotation_path(rng: np.random.Generator, n: int) -> np.ndarray:
    q = np.array([0.3, -0.2, 0.9, 0.1])
    q /= np.linalg.norm(q)
    out = []
    w = rng.normal(0, 2.0, 3)
    for _ in range(n):
        w = 0.95 * w + rng.normal(0, 1.0, 3)
        q = qmul(q, qexp(w * 0.01 + rng.normal(0, 0.01, 3)))
        out.append(q)
    return np.array(out)


def test_so3_filter_matches_reference() -> None:
    rng = np.random.default_rng(13)
    qs = _rotation_path(rng, 300)
    ts = _times(rng, 300, repeat_every=23)
    pf = PoseFilter(orientation=FilterConfig(min_cutoff_hz=0.8, beta=0.7, d_cutoff_hz=1.3))
    ref = RefSO3OneEuro(0.8, 0.7, 1.3)
    for q, t in zip(qs, ts, strict=True):
        np.testing.assert_allclose(
            pf.filter(np.zeros(3), q * 1.7, t).quat_wxyz, ref(q, t), rtol=0, atol=1e-12
        )


def test_fixed_axis_rotation_is_scalar_one_euro_on_the_angle() -> None:
    rng = np.random.default_rng(14)
    axis = np.array([1.0, 2.0, -2.0]) / 3.0
    angles = np.cumsum(rng.normal(0, 0.05, 200)) + 0.3
    pf = PoseFilter(orientation=FilterConfig(min_cutoff_hz=1.2, beta=0.4))
    ref = RefOneEuro(1.2, 0.4, 1.0)
    for i, th in enumerate(angles):
        q = pf.filter(
            np.zeros(3), np.concatenate([[math.cos(th / 2)], math.sin(th / 2) * axis]), i * 0.01
        ).quat_wxyz
        th_hat = ref(float(th), i * 0.01)
        np.testing.assert_allclose(
            q, [math.cos(th_hat / 2), *(math.sin(th_hat / 2) * axis)], atol=1e-12
        )


def test_quaternion_sign_flips_do_not_flip_the_output() -> None:
    rng = np.random.default_rng(15)
    qs = _rotation_path(rng, 400)
    signs = np.where(rng.random(400) < 0.5, -1.0, 1.0)
    signs[0] = 1.0
    a, b = (
        PoseFilter(orientation=FilterConfig(beta=0.5)),
        PoseFilter(orientation=FilterConfig(beta=0.5)),
    )
    prev = None
    for i, (q, s) in enumerate(zip(qs, signs, strict=True)):
        qa = a.filter(np.zeros(3), q, i * 0.01).quat_wxyz
        qb = b.filter(np.zeros(3), s * q, i * 0.01).quat_wxyz
        np.testing.assert_allclose(qb, qa, atol=1e-12)
        assert abs(np.linalg.norm(qb) - 1.0) < 1e-14
        if prev is not None:
            assert qb @ prev > 0.9  # continuous: no hemisphere jumps
        prev = qb.copy()


def test_pose_filter_position_holds_and_converges() -> None:
    cfg = FilterConfig(min_cutoff_hz=2.0, beta=0.1)
    pf, ref = PoseFilter(position=cfg), OneEuroFilter.from_config(3, cfg)
    target_q = qexp(np.array([0.4, -1.0, 2.0]))
    pf.filter([0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], 0.0)
    ref.filter(np.zeros(3), 0.0)
    for i in range(1, 801):
        p, q = pf.filter([0.1, 0.2, 0.3], -target_q, i * 0.01)
        np.testing.assert_array_equal(p, ref.filter([0.1, 0.2, 0.3], i * 0.01))
    np.testing.assert_allclose(abs(q @ target_q), 1.0, atol=1e-12)
    held = pf.filter([9.0, 9.0, 9.0], [0.0, 1.0, 0.0, 0.0], 8.0)  # repeated timestamp
    np.testing.assert_array_equal(held.position_m, p)
    np.testing.assert_array_equal(held.quat_wxyz, q)
    zero = pf.filter([0.1, 0.2, 0.3], [0.0, 0.0, 0.0, 0.0], 8.01)  # missing orientation
    np.testing.assert_array_equal(zero.quat_wxyz, q)
    pf.reset()
    first = pf.filter([1.0, 2.0, 3.0], [-0.5, 0.5, 0.5, 0.5], 0.0)
    np.testing.assert_array_equal(first.position_m, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(first.quat_wxyz, [0.5, -0.5, -0.5, -0.5])  # w >= 0 at start


# --- config ----------------------------------------------------------------------------------


def test_config_from_dict() -> None:
    cfg = FilterConfig.from_dict({"min_cutoff_hz": 2, "beta": "0.5"})
    assert cfg == FilterConfig(min_cutoff_hz=2.0, beta=0.5, d_cutoff_hz=1.0)
    assert FilterConfig.from_dict(cfg.to_dict()) == cfg
    assert FilterConfig(beta=0.0).beta == 0.0


def test_config_unknown_key() -> None:
    with pytest.raises(ConfigError, match="min_cutoff"):
        FilterConfig.from_dict({"min_cutoff": 1.0})


@pytest.mark.parametrize("key", ["min_cutoff_hz", "d_cutoff_hz"])
@pytest.mark.parametrize("value", [0.0, -1.0])
def test_config_non_positive_cutoff(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=key):
        FilterConfig.from_dict({key: value})


def test_config_negative_beta() -> None:
    with pytest.raises(ConfigError, match="beta"):
        FilterConfig(beta=-0.1)


def test_config_not_a_number() -> None:
    with pytest.raises(ConfigError, match="number"):
        FilterConfig.from_dict({"beta": True})
    with pytest.raises(ConfigError, match="finite"):
        FilterConfig(min_cutoff_hz=float("inf"))


def test_one_euro_bad_params() -> None:
    with pytest.raises(ConfigError, match="min_cutoff_hz"):
        OneEuroFilter(3, min_cutoff_hz=0.0)
    with pytest.raises(ConfigError, match="channel count"):
        OneEuroFilter(0)
