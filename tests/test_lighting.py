"""hdr_core.lighting: irradiance over normals, the brightest light, and the light-accuracy figures."""

import math

import numpy as np
import pytest
import torch

from hdr_core import lighting
from hdr_core.lighting import NORMALS, _as_tensor, brightest_light, irradiance, light_accuracy, pano_directions


def _sun_pano(h=64, theta_deg=40.0, phi_deg=100.0, sun=5e4, sky=0.5, radius_deg=3.0):
    """A uniform sky with a small disc sun at (theta, phi)."""
    d, _ = pano_directions(h)
    t, p = math.radians(theta_deg), math.radians(phi_deg)
    s = torch.tensor([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)], dtype=torch.float64)
    disc = ((d @ s) >= math.cos(math.radians(radius_deg))).numpy()
    img = np.full((h, 2 * h, 3), sky)
    img[disc] = sun
    return img, s.numpy()


def _disc_energy(img, threshold=1.0):
    """The sun's energy as the panorama's own pixels carry it (at the light working size 128x64)."""
    _, omega = pano_directions(img.shape[0])
    lum = img @ np.array([0.2126, 0.7152, 0.0722])
    return float((lum * omega.numpy())[lum > threshold].sum())


def test_normals_are_26_unit_directions_covering_the_sphere():
    assert NORMALS.shape == (26, 3) and np.allclose(np.linalg.norm(NORMALS, axis=1), 1)
    assert np.allclose(NORMALS.sum(0), 0)  # symmetric


def test_solid_angles_sum_to_the_sphere():
    _, omega = pano_directions(64)
    assert float(omega.sum()) == pytest.approx(4 * math.pi, rel=1e-3)


def test_uniform_radiance_gives_pi_irradiance_on_every_normal():
    e = irradiance(_as_tensor(np.ones((128, 256, 3))))
    assert e.shape == (1, 26) and torch.allclose(e, torch.full_like(e, math.pi), rtol=1e-3)


def test_sun_irradiance_follows_the_cosine_law():
    sky_free, s = _sun_pano(sky=0.0)
    e = irradiance(_as_tensor(sky_free))[0].numpy()
    # a small disc of energy S: E(n) ~ S max(0, n.s)
    expect = _disc_energy(sky_free, 0.0) * np.maximum(NORMALS @ s, 0)
    lit = expect > 0.2 * expect.max()
    assert np.allclose(e[lit], expect[lit], rtol=0.15)
    assert np.all(e[NORMALS @ s < -0.2] < 1e-6 * expect.max())


def test_brightest_light_finds_the_sun_and_its_energy():
    img, s = _sun_pano()
    energy, direction = brightest_light(_as_tensor(img))
    assert math.degrees(math.acos(float(direction[0] @ torch.from_numpy(s)))) < 2.0
    assert float(energy[0]) == pytest.approx(_disc_energy(img), rel=0.02)  # + the sky in the cap: 0.1 %


def test_light_accuracy_identity_scale_and_rotation():
    img, _ = _sun_pano()
    assert light_accuracy(img, img) == {"irr_err": 0.0, "irr_bias": 0.0, "light_angle": 0.0, "peak_err": 0.0,
                                        "peak_bias": 0.0, "key_angle": 0.0}
    twice = light_accuracy(2 * img, img)
    assert twice["irr_bias"] == pytest.approx(1.0) and twice["irr_err"] == pytest.approx(1.0)
    assert twice["peak_bias"] == pytest.approx(1.0) and twice["light_angle"] < 1e-6
    weak_sun = img.copy()
    weak_sun[img > 1] /= 8  # the sun 3 stops too weak, the sky right
    r = light_accuracy(weak_sun, img)
    assert r["peak_bias"] == pytest.approx(-3.0, abs=0.05) and r["irr_bias"] < 0
    moved, _ = _sun_pano(theta_deg=40.0, phi_deg=160.0)
    # two directions at zenith angle 40 deg, 60 deg apart in azimuth: cos g = cos^2 40 + sin^2 40 cos 60
    expect = math.degrees(math.acos(math.cos(math.radians(40)) ** 2 + math.sin(math.radians(40)) ** 2 * 0.5))
    assert light_accuracy(moved, img)["light_angle"] == pytest.approx(expect, abs=2.5)


def test_light_margin_tells_a_key_light_from_two_equal_lights():
    one, s = _sun_pano()
    assert float(lighting.light_margin(_as_tensor(one))[0]) > 10  # a sun over a uniform sky: no rival
    other, t = _sun_pano(theta_deg=80.0, phi_deg=250.0)  # a second sun as bright, 110+ degrees away
    equal_margin = math.log2(_disc_energy(one) / _disc_energy(other))  # the two discs' pixels differ a little
    assert abs(equal_margin) < 0.5
    for ratio in (1.0, 1 / 4):
        two = np.maximum(one, other * ratio)  # the sky stays 0.5
        expect = equal_margin - math.log2(ratio)
        assert float(lighting.light_margin(_as_tensor(two))[0]) == pytest.approx(expect, abs=0.02)
    # the prediction calls the other light brightest: 110+ degrees off; only a key light makes that an error
    swapped = np.maximum(one / 2, other)
    equal = light_accuracy(swapped, np.maximum(one, other))
    assert equal["light_angle"] > 100 and equal["key_angle"] is None
    clear = light_accuracy(swapped, np.maximum(one, other / 4))
    assert clear["key_angle"] == clear["light_angle"] > 100 and lighting.KEY_MARGIN_STOPS == 1.0
    # a rival inside the cap's neighbourhood (the sun's own aureole) does not count
    aureole, _ = _sun_pano(theta_deg=40.0, phi_deg=112.0, sun=2e3, radius_deg=5.0)  # 12 deg away: within 20
    assert float(lighting.light_margin(_as_tensor(np.maximum(one, aureole)))[0]) > 10


def test_light_accuracy_does_not_depend_much_on_resolution():
    img, _ = _sun_pano(h=128)
    small = img.reshape(64, 2, 128, 2, 3).mean((1, 3))  # area average: same energy
    r = light_accuracy(small, img)
    assert r["irr_err"] < 0.01 and abs(r["peak_bias"]) < 0.05 and r["light_angle"] < 2


def test_irradiance_and_peak_energy_are_differentiable():
    img, _ = _sun_pano(h=32)
    x = _as_tensor(img).requires_grad_(True)
    energy, _ = brightest_light(x)
    loss = torch.log(irradiance(x)).sum() + torch.log(energy).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="H x W x 3"):
        light_accuracy(np.ones((8, 16)), np.ones((8, 16)))


def test_light_share_of_a_sun_and_of_uniform_light():
    img, _ = _sun_pano()
    _, omega = pano_directions(64)
    total = float(((img @ np.array([0.2126, 0.7152, 0.0722])) * omega.numpy()).sum())
    share = float(lighting.light_share(_as_tensor(img))[0])
    assert share == pytest.approx(_disc_energy(img) / total, rel=0.02) and share > 0.9
    cap = (1 - math.cos(math.radians(lighting.PEAK_CAP_DEG))) / 2  # the cap's share of the sphere
    assert float(lighting.light_share(_as_tensor(np.ones((32, 64, 3))))[0]) == pytest.approx(cap, rel=0.05)
    assert float(lighting.light_share(_as_tensor(np.zeros((32, 64, 3))))[0]) == 0.0  # black: no light, no share


def test_cached_lobes_match_fresh_ones_and_serve_training_after_inference():
    """The cube normals' lobes and the glossy kernels are made once per size, device and dtype (no copy per step):
    the same numbers as made afresh, and plain tensors even when first made under inference mode (validation runs
    first), so a training step can backpropagate through them."""
    from hdr_core.lighting import glossy

    lighting._cube_lobes.cache_clear()
    lighting._glossy_kernel_on.cache_clear()
    torch.manual_seed(0)
    pano = torch.rand(2, 3, 32, 64) * 4
    with torch.inference_mode():
        irradiance(pano)
        glossy(pano)
    x = pano.clone().requires_grad_(True)
    e = irradiance(x)
    torch.testing.assert_close(e, irradiance(pano, NORMALS.copy()), rtol=0, atol=0)  # the uncached path
    (e.sum() + glossy(x).sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
