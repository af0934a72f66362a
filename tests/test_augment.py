"""Panorama augmentations (hdr_core.augment): exact, invertible, seeded, never in place."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdr_core.augment import (
    apply_pano_augment,
    draw_inserted_light,
    draw_pano_augment,
    flip_horizontal,
    insert_light,
    jitter_exposure,
    jitter_white_balance,
    random_pano_augment,
    rotate_azimuth,
)
from hdr_core.color import LUMA_709
from hdr_core.projections import pano_to_ceiling


@pytest.fixture
def pano(rng):
    return rng.random((8, 16, 3), dtype=np.float32) * 4.0


def test_rotate_is_exact_and_invertible(pano):
    before = pano.copy()
    out = rotate_azimuth(pano, 5)
    np.testing.assert_array_equal(out[:, 5:], pano[:, :-5])
    np.testing.assert_array_equal(out[:, :5], pano[:, -5:])
    np.testing.assert_array_equal(rotate_azimuth(out, -5), pano)
    np.testing.assert_array_equal(rotate_azimuth(pano, 16 + 5), out)
    np.testing.assert_array_equal(rotate_azimuth(pano, fraction=0.25), rotate_azimuth(pano, 4))
    np.testing.assert_array_equal(pano, before)
    t = torch.from_numpy(pano).permute(2, 0, 1)[None]
    np.testing.assert_array_equal(rotate_azimuth(t, 5)[0].permute(1, 2, 0).numpy(), out)


def test_rotate_matches_ceiling_rotation(pano):
    """A quarter turn of the panorama is a quarter turn of its P2C ceiling view (same azimuth convention)."""
    t = torch.from_numpy(pano).permute(2, 0, 1)[None]
    torch.testing.assert_close(pano_to_ceiling(rotate_azimuth(t, fraction=0.25)),
                               torch.rot90(pano_to_ceiling(t), 1, dims=(-2, -1)))


def test_flip_twice_is_identity(pano):
    out = flip_horizontal(pano)
    assert out.flags.c_contiguous and not np.shares_memory(out, pano)
    np.testing.assert_array_equal(out[:, 0], pano[:, -1])
    np.testing.assert_array_equal(flip_horizontal(out), pano)
    t = torch.from_numpy(pano).permute(2, 0, 1)
    assert torch.equal(flip_horizontal(flip_horizontal(t)), t)


def test_exposure_is_a_pure_scale(pano):
    out = jitter_exposure(pano, np.random.default_rng(1), stops=(-2, 2))
    assert out.dtype == np.float32 and out.shape == pano.shape
    ratio = out / pano
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-6)
    assert 0.25 <= ratio.flat[0] <= 4.0
    scale = 2.0 ** np.random.default_rng(1).uniform(-2, 2)
    np.testing.assert_allclose(ratio.flat[0], scale, rtol=1e-6)
    t = torch.from_numpy(pano).permute(2, 0, 1)[None]
    torch.testing.assert_close(jitter_exposure(t, np.random.default_rng(1), stops=(-2, 2)),
                               torch.from_numpy(out).permute(2, 0, 1)[None])


def test_white_balance_keeps_grey_luminance(pano):
    grey = np.full((4, 4, 3), 0.7, dtype=np.float32)
    out = jitter_white_balance(grey, np.random.default_rng(2), max_ratio=1.2)
    assert out.dtype == np.float32
    lum = out @ np.asarray(LUMA_709, dtype=np.float32)
    np.testing.assert_allclose(lum, 0.7, rtol=1e-5)
    gains = out[0, 0] / 0.7
    assert not np.allclose(gains, 1.0) and np.all(gains > 1 / 1.2**2) and np.all(gains < 1.2**2)
    coloured = jitter_white_balance(pano, np.random.default_rng(2), max_ratio=1.2)
    np.testing.assert_allclose(coloured / pano, np.broadcast_to(gains, pano.shape), rtol=1e-5)


def test_random_augment_seeded_and_not_in_place(pano):
    before = pano.copy()
    a = random_pano_augment(pano, np.random.default_rng(7))
    b = random_pano_augment(pano, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pano, before)
    assert a.dtype == np.float32 and a.shape == pano.shape
    assert not np.array_equal(a, random_pano_augment(pano, np.random.default_rng(8)))
    t = torch.from_numpy(pano).permute(2, 0, 1)[None]
    torch.testing.assert_close(random_pano_augment(t, np.random.default_rng(7)),
                               torch.from_numpy(a).permute(2, 0, 1)[None])
    # geometry only (no photometric change): the multiset of pixels is preserved
    geo = random_pano_augment(pano, np.random.default_rng(3), stops=(0, 0), wb_max_ratio=1.0)
    np.testing.assert_allclose(np.sort(geo.ravel()), np.sort(pano.ravel()), rtol=1e-6)


def test_drawn_numbers_replay_the_augmentation_and_consume_the_generator_alike(pano):
    """draw_pano_augment + apply_pano_augment is random_pano_augment (DevicePairs replays the draws on a GPU)."""
    r1, r2 = np.random.default_rng(11), np.random.default_rng(11)
    d = draw_pano_augment(r1, pano.shape[1], flip_p=0.7, stops=(-2, 1), wb_max_ratio=1.3)
    np.testing.assert_array_equal(apply_pano_augment(pano, d),
                                  random_pano_augment(pano, r2, flip_p=0.7, stops=(-2, 1), wb_max_ratio=1.3))
    assert r1.random() == r2.random()  # the same numbers were taken
    assert 0 <= d["shift"] < pano.shape[1] and 0.25 <= d["scale"] <= 2 and np.dot(LUMA_709, d["wb"]) == pytest.approx(1)


def _energy(pano: np.ndarray) -> float:
    from hdr_core.lighting import pano_directions

    _, omega = pano_directions(pano.shape[0])
    return float(((pano.astype(np.float64) @ np.asarray(LUMA_709)) * omega.numpy()).sum())


@pytest.mark.parametrize("height", [8, 32, 128])
def test_inserted_light_holds_its_share_and_sits_where_drawn(rng, height):
    """The light holds exactly the drawn share of the result's light (its energy is normalised on the pixel grid, so a
    core smaller than a pixel keeps its energy at any size), its peak is where it was drawn, and the rest of the
    panorama is untouched far from it."""
    from hdr_core.lighting import pano_directions

    base = (rng.random((height, 2 * height, 3)) + 0.2).astype(np.float64)
    for k in range(4):
        light = draw_inserted_light(rng, (0.3, 0.75))
        if k == 0:
            light.update(core_deg=0.25, aureole_frac=0.05)  # a tiny sun, well under a pixel at 8 rows
        out = insert_light(base, light)
        assert out.dtype == base.dtype and out.shape == base.shape and np.all(out >= base)
        added = _energy(out) - _energy(base)
        assert added / _energy(out) == pytest.approx(light["share"], rel=1e-9)
        d, _ = pano_directions(height)
        el, az = np.radians(light["elevation"]), np.radians(light["azimuth"])
        u = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        gain = (out - base) @ np.asarray(LUMA_709)
        peak = d.numpy().reshape(-1, 3)[gain.argmax()]
        assert np.degrees(np.arccos(np.clip(peak @ u, -1, 1))) <= 180.0 / height  # within a pixel's pitch
        far = (d.numpy() @ u) < 0  # the far half of the sphere: only the aureole's tail, exp(-90 deg / its width)
        assert np.all(gain[far] <= np.exp(-90 / max(light["aureole_deg"], 180 / height)) * gain.max() * (1 + 1e-9))
        if height >= 32:  # where the light module finds it (its own 128x64 working size): the drawn direction
            from hdr_core.lighting import brightest_light

            _, found = brightest_light(torch.from_numpy((out - base).transpose(2, 0, 1).copy())[None])
            assert np.degrees(np.arccos(np.clip(float(found[0] @ torch.from_numpy(u)), -1, 1))) < 180.0 / height + 3
        colour = (out - base).reshape(-1, 3)[gain.argmax()] / gain.max()
        np.testing.assert_allclose(colour, light["colour"], rtol=1e-9)  # luminance-1 gains: the light's colour


def test_inserted_light_is_seeded_the_same_on_numpy_and_torch_and_refuses_bad_input(rng):
    a, b = draw_inserted_light(np.random.default_rng(3), (0.4, 0.4)), draw_inserted_light(np.random.default_rng(3),
                                                                                            (0.4, 0.4))
    assert a == b and a["share"] == 0.4 and 0 <= a["elevation"] <= 72 and np.dot(LUMA_709, a["colour"]) == \
        pytest.approx(1.0)
    pano = (rng.random((16, 32, 3)) * 3).astype(np.float32)
    out = insert_light(pano, a)
    t = insert_light(torch.from_numpy(pano.transpose(2, 0, 1).copy()), a)
    assert out.dtype == np.float32 and torch.equal(t, torch.from_numpy(out.transpose(2, 0, 1).copy()))
    black = np.zeros((16, 32, 3), np.float32)
    assert np.array_equal(insert_light(black, a), black)  # no light to take a share of: nothing is added
    for bad in (np.ones((16, 16, 3), np.float32), np.ones((16, 32), np.float32), torch.ones(1, 3, 16, 32)):
        with pytest.raises(ValueError, match="H x 2H"):
            insert_light(bad, a)


def test_inserted_light_is_where_a_camera_looking_at_its_direction_sees_it(rng):
    """The drawn azimuth and elevation are :mod:`hdr_core.projections`' view angles: a perspective crop looking at
    ``yaw = azimuth - 180``, ``pitch = elevation`` has the light at its centre."""
    from hdr_core.projections import perspective_crop

    base = np.full((64, 128, 3), 0.2, np.float32)
    for _ in range(3):
        light = {**draw_inserted_light(rng, (0.6, 0.6)), "core_deg": 0.5, "aureole_frac": 0.05}
        out = torch.from_numpy(insert_light(base, light).transpose(2, 0, 1).copy())[None]
        crop = perspective_crop(out, light["azimuth"] - 180.0, light["elevation"], 60.0, 33)[0].sum(0)
        r, c = np.unravel_index(int(crop.argmax()), crop.shape)
        assert abs(r - 16) <= 1 and abs(c - 16) <= 1, (light, r, c)
