"""Losses (hdr_core.losses): scale invariance of siMSE, Eq. 9 weights, segmentation CE, LANet objective."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hdr_core.losses import lanet_loss, log_mse, pano_masked_loss, seg_loss, si_mse
from hdr_core.models import HDROutput


def _pair(seed: int = 0, shape=(3, 3, 8, 10)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)


def test_si_mse_zero_for_identical_and_formula():
    pred, gt = _pair()
    assert si_mse(gt, gt).item() == 0.0
    d = (pred - gt).flatten(1)
    expected = ((d**2).mean(1) - d.mean(1) ** 2).mean()
    torch.testing.assert_close(si_mse(pred, gt), expected)
    assert si_mse(pred, gt) > 0


@given(k=st.floats(1e-3, 1e3), seed=st.integers(0, 100))
def test_si_mse_invariant_to_global_scale(k, seed):
    pred, gt = _pair(seed)
    torch.testing.assert_close(si_mse(pred + math.log(k), gt), si_mse(pred, gt), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(si_mse(gt + math.log(k), gt), torch.zeros((), dtype=torch.float64), atol=1e-12,
                               rtol=0)


def test_si_mse_batch_is_mean_of_images():
    pred, gt = _pair(1)
    per_image = torch.stack([si_mse(pred[i:i + 1], gt[i:i + 1]) for i in range(pred.shape[0])])
    torch.testing.assert_close(si_mse(pred, gt), per_image.mean())
    # a per-image scale is free too (the invariance is per image, not per batch)
    shift = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64).view(3, 1, 1, 1)
    torch.testing.assert_close(si_mse(pred + shift, gt), si_mse(pred, gt))


def test_si_mse_lambda_and_shape_check():
    pred, gt = _pair(2)
    torch.testing.assert_close(si_mse(pred, gt, lam=0.0), log_mse(pred, gt))
    with pytest.raises(ValueError, match="shape"):
        si_mse(pred, gt[:, :2])


def test_seg_loss():
    labels = torch.randint(0, 3, (2, 6, 7))
    uniform = torch.zeros(2, 3, 6, 7)
    torch.testing.assert_close(seg_loss(uniform, labels), torch.tensor(math.log(3.0)))
    perfect = 50.0 * torch.nn.functional.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    assert seg_loss(perfect, labels) < 1e-6
    assert seg_loss(-perfect, labels) > 10


def test_lanet_loss():
    pred, gt = _pair(3, (2, 3, 6, 7))
    logits = torch.randn(2, 3, 6, 7, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (2, 6, 7))
    out = HDROutput(log_hdr=pred.clone().requires_grad_(), seg_logits=logits)
    loss, parts = lanet_loss(out, gt, labels, return_parts=True)
    torch.testing.assert_close(loss, si_mse(pred, gt) + 0.05 * seg_loss(logits, labels))
    assert set(parts) == {"si_mse", "seg"}
    loss.backward()
    assert out.log_hdr.grad is not None and logits.grad is not None
    torch.testing.assert_close(lanet_loss(HDROutput(log_hdr=pred), gt, labels), si_mse(pred, gt))
    torch.testing.assert_close(lanet_loss(out, gt, labels, seg_weight=0.0), si_mse(pred, gt))


def test_pano_masked_loss_weights():
    pred, gt = _pair(4, (2, 3, 5, 10))
    d2 = ((pred - gt) ** 2).mean()
    ones, zeros = torch.ones(2, 1, 5, 10, dtype=torch.float64), torch.zeros(2, 1, 5, 10, dtype=torch.float64)
    torch.testing.assert_close(pano_masked_loss(pred, gt, ones), 0.2 * d2)
    torch.testing.assert_close(pano_masked_loss(pred, gt, zeros), 0.01 * d2)
    torch.testing.assert_close(pano_masked_loss(pred, gt, ones, beta1=1.0, beta2=0.0), log_mse(pred, gt))
    m = torch.rand(2, 1, 5, 10, dtype=torch.float64)
    expected = 0.2 * ((m * (pred - gt)) ** 2).mean() + 0.01 * (((1 - m) * (pred - gt)) ** 2).mean()
    torch.testing.assert_close(pano_masked_loss(pred, gt, m), expected)
    torch.testing.assert_close(pano_masked_loss(pred, gt, m.expand(2, 3, 5, 10)), expected)  # tiled = broadcast
    assert pano_masked_loss(gt, gt, m).item() == 0.0
