"""Virtual camera (method.md §1)."""

import numpy as np
import pytest

from hdr_core.camera import CameraConfig, crf, draw_camera, virtual_camera


@pytest.fixture(scope="module")
def scene():
    r = np.random.default_rng(3)
    img = np.exp(r.normal(-1.5, 1.8, (48, 96, 3))).astype(np.float32)
    img[5:9, 10:14] = 500.0  # a sun
    return img


def test_same_seed_same_ldr_and_params(scene):
    a, pa = virtual_camera(scene, 7, CameraConfig(jpeg_prob=0.5))
    b, pb = virtual_camera(scene, 7, CameraConfig(jpeg_prob=0.5))
    assert np.array_equal(a, b) and pa == pb
    c, pc = virtual_camera(scene, 8)
    assert pc != pa
    assert a.dtype == np.uint8 and a.shape == scene.shape


def test_parameters_are_drawn_from_the_paper_ranges(scene):
    for seed in range(20):
        _, p = virtual_camera(scene, seed)
        assert 9.6 <= p.dynamic_range_ev <= 14.8 and 0.3 <= p.sigma <= 0.5 and 0.8 <= p.n <= 1.0
        assert p.jpeg_quality is None


def test_crf_is_monotonic_and_fixes_0_and_1():
    v = np.linspace(0, 1, 1000)
    for sigma in (0.3, 0.5):
        for n in (0.8, 1.0):
            y = crf(v, sigma, n)
            assert np.all(np.diff(y) > 0) and y[0] == 0 and y[-1] == pytest.approx(1.0)


def test_auto_exposure_hits_middle_grey(scene):
    for seed in range(5):
        ldr, _ = virtual_camera(scene, seed)
        assert ldr.mean() / 255 == pytest.approx(0.46, abs=0.01)


def test_clipping_grows_as_dynamic_range_shrinks(scene):
    fractions = [virtual_camera(scene, 0, dynamic_range_ev=dr, sigma=0.4, n=0.9)[1].clipped_fraction
                 for dr in (14.8, 12.0, 9.6, 7.0, 5.0, 3.0)]
    assert all(b >= a for a, b in zip(fractions, fractions[1:]))
    assert fractions[-1] > fractions[0]


def test_jpeg_and_fixed_parameters():
    yy, xx = np.mgrid[0:64, 0:128] / 64.0
    smooth = np.stack([np.exp(3 * xx), np.exp(2 * yy), np.exp(xx + yy)], -1).astype(np.float32)
    raw, p = virtual_camera(smooth, 1, jpeg_quality=None)
    jpg, q = virtual_camera(smooth, 1, jpeg_quality=40)
    assert q.jpeg_quality == 40 and p.exposure == q.exposure
    assert 0 < np.abs(raw.astype(int) - jpg).mean() < 3
    with pytest.raises(TypeError):
        virtual_camera(scene, 1, gamma=2.2)
    with pytest.raises(ValueError, match="black"):
        virtual_camera(np.zeros((4, 8, 3), np.float32), 0)


def test_draw_camera_takes_the_numbers_virtual_camera_takes(scene):
    cfg = CameraConfig(jpeg_prob=0.5)
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    d = draw_camera(r1, cfg)
    _, params = virtual_camera(scene, r2, cfg)
    assert (params.dynamic_range_ev, params.sigma, params.n) == (d["dynamic_range_ev"], d["sigma"], d["n"])
    assert params.jpeg_quality == (d["jpeg_quality"] if d["use_jpeg"] else None)
    assert r1.random() == r2.random()


def _plain_expose(x, dr, sigma, n):
    """expose() as it was written before it worked in place."""
    black = 2.0 ** (-dr)
    return crf(np.clip((np.clip(x, 0.0, 1.0) - black) / (1.0 - black), 0.0, 1.0), sigma, n)


def _plain_bisection(hdr, dr, sigma, n, target=0.46, metering_pixels=16384, iters=32):
    """The auto-exposure as it was written before the float32 screening: every step in float64, out of place."""
    flat = hdr.reshape(-1, 3)
    sample = flat[:: max(1, flat.shape[0] // metering_pixels)].astype(np.float64)
    peak = float(sample.max())
    lo, hi = np.log2(1.0 / peak) - 30.0, np.log2(1.0 / peak) + 60.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float(np.mean(_plain_expose(sample * 2.0**mid, dr, sigma, n))) < target else (lo, mid)
    return float(2.0 ** (0.5 * (lo + hi)))


def test_screened_auto_exposure_takes_every_step_of_the_plain_bisection():
    """The float32 screening decides only the steps it is sure of: the same gain, bit for bit, on images of any
    brightness (a sun, a near-black frame, peaks beyond float32's range), and the same expose() values."""
    from hdr_core.camera import auto_exposure, expose

    rng = np.random.default_rng(3)
    images = [rng.random((64, 96, 3)).astype(np.float32) ** k * 10.0 ** s
              for k in (1, 4, 12) for s in (-30, -3, 0, 2, 35)]
    sun = rng.random((128, 128, 3)).astype(np.float32) * 0.2
    sun[60:64, 60:64] = 5e4
    images += [sun, np.full((8, 8, 3), 0.18, np.float32), (rng.random((300, 200, 3)) ** 6).astype(np.float32)]
    for i, img in enumerate(images):
        dr, sigma, n = rng.uniform(9.6, 14.8), rng.uniform(0.3, 0.5), rng.uniform(0.8, 1.0)
        assert auto_exposure(img, dr, sigma, n) == _plain_bisection(img, dr, sigma, n), i
        x = img.astype(np.float64) * 3.0
        assert np.array_equal(expose(x, 1.0, dr, sigma, n), _plain_expose(x, dr, sigma, n))
