"""Training-free baselines (render_eval.baselines): output contract, monotonicity, the LDR floor, which operators
keep unsaturated pixels after calibration, and KOEO's expansion of clipped regions."""

import numpy as np
import pytest

from hdr_core.calibration import calibrate
from hdr_core.color import MIN_8BIT, ldr_to_linear, srgb_to_linear
from render_eval.baselines import BASELINES, PRESERVES_UNSATURATED, cross_bilateral_grid, koeo, masia, masia_key


def _ramp(w=256, h=32, over=1.25, lo=0.0):
    """Gray ramp in display values from ``lo``; the last ~20 % (over=1.25) is clipped at 1."""
    return np.tile(np.linspace(lo, over, w).clip(0, 1)[None, :, None], (h, 1, 3))


def _scene(seed=0, h=48, w=96):
    r = np.random.default_rng(seed)
    img = r.random((h, w, 3)) ** 2
    img[5:15, 20:40] = 1.0  # a clipped "sun" region
    return img


def test_registry():
    assert set(BASELINES) == {"ldr", "akyuz", "masia", "koeo"} == set(PRESERVES_UNSATURATED)


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("img", [_scene(), _ramp(), np.zeros((16, 32, 3)), np.ones((16, 32, 3))],
                         ids=["scene", "ramp", "black", "white"])
def test_output_contract(name, img):
    out = BASELINES[name](img)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.all(np.isfinite(out)) and out.min() >= 0


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("over", [1.0, 1.25, 2.0])
def test_monotonic_on_gray_ramp(name, over):
    out = BASELINES[name](_ramp(over=over))
    assert np.all(np.diff(out[..., 1], axis=1) >= 0), "a brighter LDR pixel got a lower HDR value"
    assert np.allclose(out[..., 0], out[..., 2])  # gray stays gray


def test_ldr_is_the_srgb_eotf():
    v = np.linspace(0, 1, 256 * 3).reshape(16, 16, 3)
    out = BASELINES["ldr"](v)
    np.testing.assert_allclose(out, srgb_to_linear(np.maximum(v, MIN_8BIT)), rtol=1e-6)
    np.testing.assert_allclose(out, ldr_to_linear(v), rtol=1e-6)
    ok = v >= MIN_8BIT
    np.testing.assert_allclose(out[ok], srgb_to_linear(v[ok]), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_unsaturated_pixels_after_calibration(name):
    """Operators that claim it keep unsaturated pixels up to one global (calibration) scale.

    The ramp starts at a dark gray, not black: Akyuz's black-level subtraction is invisible on images with black.
    KOEO adds the display black level (2.5e-4 of white), hence the 2 % tolerance at the dark end.
    """
    v = _ramp(lo=0.15)
    lin = ldr_to_linear(v)
    cal = calibrate(BASELINES[name](v).astype(np.float64), lin)
    far = v[..., 0] < 0.6  # far (in brightness) from the clipped end, where KOEO's expand map is 1
    ratio = cal[far] / lin[far]
    spread = 1 - ratio.min() / ratio.max()
    if PRESERVES_UNSATURATED[name]:
        assert spread < 0.02
        assert 0.9 < ratio.mean() <= 1.0 + 1e-9  # KOEO's boost near the threshold lowers the scale a little
    else:
        assert spread > 0.1


def test_koeo_expands_saturated_regions_above_ldr_max():
    v = _ramp()
    lin = ldr_to_linear(v)
    out = koeo(v).astype(np.float64)
    cal = calibrate(out, lin)
    sat = v[..., 0] >= 1
    assert lin.max() == pytest.approx(1.0)
    assert cal[sat].min() > 1.5 and cal.max() <= 4.0 * 1.01  # expand map in [1, alpha = 4]
    scene = _scene()
    cal_s = calibrate(koeo(scene).astype(np.float64), ldr_to_linear(scene))
    assert cal_s[5:15, 20:40].mean() > 2.0


def test_koeo_without_clipped_pixels_is_the_ldr_plus_black_level():
    v = _scene() * 0.9
    m = 0.3 / 1200.0
    np.testing.assert_allclose(koeo(v), ldr_to_linear(v) * (1 - m) + m * ldr_to_linear(v) / _lum(ldr_to_linear(v)),
                               rtol=1e-5)


def _lum(x):
    return (x @ np.array([0.2126, 0.7152, 0.0722]))[..., None]


def test_masia_key_and_gamma_clamp():
    assert masia_key(np.full((8, 8), 0.3)) == 0.5
    dark = np.full((16, 32, 3), 0.05)
    dark[:, 16:] = 0.9
    dark[0, 0] = 1.0
    assert masia_key(_lum(ldr_to_linear(dark))[..., 0]) < 0.6  # the fitted gamma would be <= 0 ...
    out = masia(dark)
    assert np.all(np.isfinite(out)) and out[0, 20, 0] > out[0, 5, 0]  # ... so it is clamped: order kept
    bright = _ramp()
    g = 10.44 * masia_key(_lum(ldr_to_linear(bright))[..., 0]) - 6.282
    lin = ldr_to_linear(bright)[..., 0]
    np.testing.assert_allclose(masia(bright)[..., 0], lin**g, rtol=1e-5)


def test_cross_bilateral_grid_is_edge_aware():
    guide = np.zeros((32, 64))
    guide[:, 32:] = 1.0
    vals = guide.copy()
    out = cross_bilateral_grid(vals, guide, sigma_s=16, sigma_r=0.1)
    assert out[:, :32].max() < 1e-3 and out[:, 32:].min() > 0.999  # no bleeding across the edge
    np.testing.assert_allclose(cross_bilateral_grid(np.full((32, 64), 0.7), guide, 16, 0.1), 0.7, rtol=1e-9)
    plain = cross_bilateral_grid(vals, np.zeros_like(guide), sigma_s=16, sigma_r=0.1)  # flat guide: a blur
    assert 0.05 < plain[0, 28] < 0.5


@pytest.mark.parametrize("bad", [np.ones((8, 8)), np.ones((8, 8, 3)) * 1.5, np.full((8, 8, 3), np.nan)])
def test_input_validation(bad):
    for fn in BASELINES.values():
        with pytest.raises(ValueError):
            fn(bad)
