"""Segmentation labels (Eq. 6) and the merge mask (Eq. 8)."""

import math

import pytest
import torch

from hdr_core.masks import CORRECT, OVER, UNDER, closing3x3, merge_mask, saturation_ramp, segmentation_labels
from hdr_core.projections import ceiling_coverage_mask


def test_labels_follow_the_log_thresholds():
    hdr = torch.full((1, 3, 16, 16), 0.5)
    hdr[..., 2:6, 2:6] = math.exp(0.2)  # over: mean log > 0.1
    hdr[..., 10:14, 10:14] = math.exp(-6.0)  # under: mean log < -5.5
    lab = segmentation_labels(hdr)[0]
    assert lab.dtype == torch.int64 and lab.shape == (16, 16)
    assert (lab[2:6, 2:6] == OVER).all() and (lab[10:14, 10:14] == UNDER).all()
    assert (lab == CORRECT).sum() == 256 - 32


def test_closing_fills_one_pixel_holes_but_keeps_isolated_blobs():
    m = torch.zeros(1, 1, 9, 9)
    m[..., 2:7, 2:7] = 1
    m[..., 4, 4] = 0  # hole
    closed = closing3x3(m)
    assert closed[..., 4, 4] == 1 and closed.sum() == 25


def test_merge_mask_is_the_ramp_inside_coverage_only():
    h = 32
    lin = torch.ones(1, 3, h, 2 * h)  # fully saturated
    m = merge_mask(lin)
    cover = ceiling_coverage_mask(h)
    assert m.shape == (1, 1, h, 2 * h)
    assert torch.equal(m, closing3x3(cover))
    assert m[..., -1, :].sum() == 0  # the lower hemisphere never takes the ceiling branch
    lin = torch.full((1, 3, h, 2 * h), 0.5)  # unsaturated: below 0.83 everywhere
    assert merge_mask(lin).sum() == 0


def test_ramp_threshold_option():
    lin = torch.full((1, 3, 2, 2), 0.915)
    assert saturation_ramp(lin).flatten()[0].item() == pytest.approx(0.5, abs=1e-5)
    assert saturation_ramp(lin, 0.13).flatten()[0].item() == pytest.approx((0.915 - 0.13) / 0.87, abs=1e-5)
    with pytest.raises(ValueError):
        saturation_ramp(lin, 1.0)


@pytest.mark.parametrize("shape", [(2, 3, 17, 34), (1, 1, 1, 5), (3, 2, 4, 1)])
def test_the_sliced_max_filter_equals_max_pooling(shape):
    """dilate3x3 / erode3x3 are shifted-slice maxima: the very values of 3x3 stride-1 max pooling (padded by -inf),
    grey-level and binary, NCHW and channels-last, and so are the labels built on them."""
    import torch.nn.functional as F

    from hdr_core.masks import dilate3x3, erode3x3

    g = torch.Generator().manual_seed(0)
    for x in (torch.randn(shape, generator=g), (torch.rand(shape, generator=g) > 0.6).float()):
        for y in (x, x.contiguous(memory_format=torch.channels_last)):
            assert torch.equal(dilate3x3(y), F.max_pool2d(y, 3, stride=1, padding=1))
            assert torch.equal(erode3x3(y), -F.max_pool2d(-y, 3, stride=1, padding=1))
    hdr = (torch.rand(2, 3, 33, 47, generator=g) * 24 - 12).exp()
    m = hdr.clamp(1e-8, 1e4).log().mean(dim=1, keepdim=True)
    over = (-F.max_pool2d(-F.max_pool2d((m > 0.1).float(), 3, 1, 1), 3, 1, 1))[:, 0] > 0.5
    under = (-F.max_pool2d(-F.max_pool2d((m < -5.5).float(), 3, 1, 1), 3, 1, 1))[:, 0] > 0.5
    expected = torch.full_like(over, CORRECT, dtype=torch.int64)
    expected[under] = UNDER
    expected[over] = OVER
    labels = segmentation_labels(hdr)
    assert labels.dtype == torch.int64 and torch.equal(labels, expected)
