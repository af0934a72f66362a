"""Colour transfer functions and HDR calibration (method.md §1, Eq. 1)."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hdr_core.calibration import TAU, calibrate, calibration_scale, hdr_log
from hdr_core.color import MIN_8BIT, ldr_to_linear, linear_to_srgb, luminance, srgb_to_linear, to_network_input


def test_srgb_round_trip_and_reference_points():
    v = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(v)), v, atol=1e-7)
    assert srgb_to_linear(np.array(0.04045)) == pytest.approx(0.04045 / 12.92)
    assert srgb_to_linear(np.array(1.0)) == pytest.approx(1.0)
    assert linear_to_srgb(np.array(0.18)) == pytest.approx(0.4613561, abs=1e-6)
    assert np.all(np.diff(srgb_to_linear(v)) > 0)


def test_srgb_torch_matches_numpy():
    v = np.linspace(0, 1, 257)
    np.testing.assert_allclose(srgb_to_linear(torch.from_numpy(v)).numpy(), srgb_to_linear(v), rtol=1e-12)


def test_ldr_to_linear_clamps_black_to_one_code_value():
    lin = ldr_to_linear(np.array([0.0, 1 / 255, 1.0]))
    assert lin[0] == lin[1] == pytest.approx(MIN_8BIT / 12.92)
    assert np.all(np.isfinite(np.log(lin)))
    assert to_network_input(np.array([0.0, 1.0])).tolist() == [-1.0, 1.0]


def test_luminance_weights_sum_to_one():
    img = np.ones((2, 3, 3))
    np.testing.assert_allclose(luminance(img), 1.0)
    np.testing.assert_allclose(luminance(torch.ones(1, 3, 2, 2), channel_axis=1).numpy(), 1.0)


def _pair(seed: int, h=8, w=16):
    r = np.random.default_rng(seed)
    hdr = np.exp(r.normal(-1, 2, (h, w, 3)))
    ldr = np.clip(hdr * 0.7, 0, 1)
    return hdr, ldr


@given(k=st.floats(1e-4, 1e4), seed=st.integers(0, 10_000))
def test_calibration_is_scale_invariant(k, seed):
    hdr, ldr = _pair(seed)
    np.testing.assert_allclose(calibrate(k * hdr, ldr), calibrate(hdr, ldr), rtol=1e-9)


@given(seed=st.integers(0, 10_000))
def test_calibrated_hdr_matches_ldr_on_unsaturated_pixels_in_the_mean(seed):
    hdr, ldr = _pair(seed)
    cal = calibrate(hdr * 37.0, ldr)
    m = ldr.mean(-1) < TAU
    assert cal[m].sum() == pytest.approx(ldr[m].sum(), rel=1e-9)


def test_exact_scale_is_recovered():
    hdr, ldr = _pair(1)
    s, fb = calibration_scale(hdr / 3.0, ldr)
    assert not fb
    m = ldr.mean(-1, keepdims=True) < TAU
    assert s == pytest.approx((m * ldr).sum() / (m * hdr / 3.0).sum())


def test_batch_equals_per_image_numpy_and_torch():
    pairs = [_pair(s) for s in range(4)]
    hdr = np.stack([p[0] * (s + 1) for s, p in enumerate(pairs)])
    ldr = np.stack([p[1] for p in pairs])
    batch = calibrate(hdr, ldr)
    for i in range(4):
        np.testing.assert_allclose(batch[i], calibrate(hdr[i], ldr[i]), rtol=1e-12)
    tb = calibrate(torch.from_numpy(hdr).permute(0, 3, 1, 2), torch.from_numpy(ldr).permute(0, 3, 1, 2),
                   channel_axis=1)
    np.testing.assert_allclose(tb.permute(0, 2, 3, 1).numpy(), batch, rtol=1e-12)


def test_fallback_when_everything_is_saturated():
    hdr = np.full((4, 4, 3), 5.0)
    ldr = np.ones((4, 4, 3))
    s, fb = calibration_scale(hdr, ldr)
    assert fb and s == pytest.approx(1 / 5.0)
    np.testing.assert_allclose(calibrate(hdr, ldr), 1.0)
    s, fb = calibration_scale(np.zeros((4, 4, 3)), ldr)  # black HDR: scale 1, no division by zero
    assert fb and s == 1.0
    hdr_b, ldr_b = np.stack([hdr, _pair(0, 4, 4)[0]]), np.stack([ldr, _pair(0, 4, 4)[1]])
    s, fb = calibration_scale(hdr_b, ldr_b)
    assert fb.tolist() == [True, False] and np.all(np.isfinite(s))


def test_shape_mismatch_is_an_error_and_log_is_clamped():
    with pytest.raises(ValueError, match="shape"):
        calibrate(np.ones((2, 2, 3)), np.ones((2, 3, 3)))
    assert hdr_log(np.array([0.0, 1e9])).tolist() == pytest.approx([np.log(1e-8), np.log(1e4)])
