"""Panorama augmentations (hdr_core.augment): exact, invertible, seeded, never in place."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdr_core.augment import (
    apply_pano_augment,
    draw_pano_augment,
    flip_horizontal,
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
