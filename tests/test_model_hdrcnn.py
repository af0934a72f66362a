"""HDRCNN port (hdr_core.models.hdrcnn): shapes, gradients, registry, the blend, the loss, training, ONNX parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdr_core.color import linear_to_srgb
from hdr_core.data.pairs import PairConfig, PairDataset
from hdr_core.models import HDROutput, create_model, model_config
from hdr_core.models.hdrcnn import (
    EPS,
    HDRCNN,
    gaussian_kernel_1d,
    highlight_mask,
    illumination_reflectance_loss,
)

VARIANTS = ["hdrcnn_small", pytest.param("hdrcnn", marks=pytest.mark.slow)]


def _x(b=2, h=64, w=64, seed=0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(b, 3, h, w) * 2 - 1


def _check_grads(model: torch.nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:8]}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:8]}"


@pytest.fixture(scope="module")
def batch():
    """Two whole 32x64 panoramas (each has a clipped sun) through the training-pair pipeline, collated."""
    from conftest import synthetic_panorama

    ds = PairDataset([synthetic_panorama(32, s) for s in (0, 1)], PairConfig(mode="pano", pano_height=32),
                     length=2, seed=0)
    items = [ds[i] for i in range(2)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_registry_and_config():
    assert model_config("hdrcnn").widths == (64, 128, 256, 512, 512)
    assert model_config("hdrcnn").depths == (2, 2, 3, 3, 3)
    cfg = model_config("hdrcnn_small")
    assert cfg.skip_transform == "log" and cfg.upsample == "deconv" and not cfg.gamma_trick
    with pytest.raises(ValueError, match="skip_transform"):
        model_config("hdrcnn_small", skip_transform="sqrt")
    with pytest.raises(ValueError, match="upsample"):
        model_config("hdrcnn_small", upsample="pixelshuffle")


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_backward(name):
    model = create_model(name)
    assert isinstance(model, HDRCNN) and model.model_name == name
    x = _x()
    out = model(x)
    assert isinstance(out, HDROutput)
    assert out.log_hdr.shape == x.shape and torch.isfinite(out.log_hdr).all()
    assert out.aux["log_pred"].shape == x.shape and out.aux["alpha"].shape == (2, 1, 64, 64)
    (out.log_hdr.mean() + out.aux["log_pred"].mean()).backward()
    _check_grads(model)


def test_odd_size_and_linear_skip_variant():
    for overrides in ({}, {"skip_transform": "linear", "upsample": "nearest", "leaky_slope": 0.2}):
        model = create_model("hdrcnn_small", **overrides)
        x = _x(1, 70, 90)
        out = model(x)
        assert out.log_hdr.shape == (1, 3, 70, 90) and torch.isfinite(out.log_hdr).all()
        assert out.aux["log_pred"].shape == (1, 3, 70, 90) and out.aux["alpha"].shape == (1, 1, 70, 90)
        out.log_hdr.mean().backward()
        _check_grads(model)


def test_registry_round_trip():
    torch.manual_seed(0)
    model = create_model("hdrcnn_small", leaky_slope=0.1).eval()
    again = create_model("hdrcnn_small", config=model.config.to_dict()).eval()
    assert again.config == model.config and again.config.leaky_slope == 0.1
    again.load_state_dict(model.state_dict())
    x = _x(1, 32, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x).log_hdr, model(x).log_hdr)


def test_blend_keeps_unsaturated_pixels_exactly():
    """get_final: alpha = 0 wherever max_c d <= 0.95, and there H is exactly d^2 (gamma 2, not sRGB)."""
    model = create_model("hdrcnn_small").eval()
    x = _x(2, 48, 80, seed=1)
    x[:, :, :10, :10] = 1.0  # a clipped block
    with torch.no_grad():
        out = model(x)
    d = linear_to_srgb((x + 1) * 0.5)
    keep = (d.amax(1, keepdim=True) <= 0.95).expand_as(d)
    assert 0.3 < keep.float().mean() < 1.0
    assert torch.equal(out.log_hdr[keep], torch.log(d * d)[keep])
    assert torch.equal(out.aux["alpha"], highlight_mask(d))
    # saturated pixels follow the network: exp(y_hat) - 1/255
    sat = out.aux["alpha"] == 1
    pred = torch.exp(out.aux["log_pred"]) - EPS
    torch.testing.assert_close(out.log_hdr[sat.expand_as(d)], pred.clamp_min(1e-8).log()[sat.expand_as(d)])


def test_gamma_trick_is_inference_only():
    torch.manual_seed(0)
    plain = create_model("hdrcnn_small").eval()
    trick = create_model("hdrcnn_small", gamma_trick=True, gamma=1.25).eval()
    trick.load_state_dict(plain.state_dict())
    x = _x(1, 32, 64, seed=2)
    with torch.no_grad():
        got = trick(x).log_hdr
        d = linear_to_srgb((x + 1) * 0.5) ** (1 / 1.25)
        hdr, _ = plain.blend(d, plain.net(d))
        torch.testing.assert_close(got, 1.25 * hdr.clamp_min(1e-8).log())
        trick.train()
        plain.train()
        torch.testing.assert_close(trick(x).log_hdr, plain(x).log_hdr)  # no trick while training


def test_illumination_kernel_matches_the_official_construction():
    st = pytest.importorskip("scipy.stats")
    nsig, size = 2, 13
    interval = (2 * nsig + 1.0) / size
    ll = np.linspace(-nsig - interval / 2.0, nsig + interval / 2.0, size + 1)
    raw = np.sqrt(np.outer(np.diff(st.norm.cdf(ll)), np.diff(st.norm.cdf(ll))))
    s = gaussian_kernel_1d(size, nsig).double().numpy()
    np.testing.assert_allclose(np.outer(s, s), raw / raw.sum(), atol=1e-7)


def test_loss_is_zero_for_a_perfect_prediction_and_masked():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 32, 32) * 4
    mask = highlight_mask(target)
    assert illumination_reflectance_loss(torch.log(target + EPS), target, mask).abs() < 1e-6
    wrong = torch.log(target + EPS) + 1.0
    assert illumination_reflectance_loss(wrong, target, mask) > 0.1
    assert illumination_reflectance_loss(wrong, target, torch.zeros_like(mask)) == 0


def test_training_loss_on_a_pairs_batch(batch):
    assert batch["hdr_camera"].amax() > 1  # clipped highlights: the mask is not empty
    model = create_model("hdrcnn_small")
    out = model(2 * batch["ldr"] - 1)
    loss, parts = model.training_loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    assert set(parts) == {"ir", "mask", "ir_input"} and 0 < parts["mask"] < 1
    assert all(np.isfinite(v) for v in parts.values())
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.slow
def test_smoke_training_lowers_the_loss(batch):
    from conftest import fit_one_batch

    torch.manual_seed(0)
    model = create_model("hdrcnn_small")
    losses = fit_one_batch(model, batch, lr=1e-3)
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * losses[0], losses


def test_onnx_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from hdr_core.export import export_onnx

    torch.manual_seed(0)
    model = create_model("hdrcnn_small").eval()
    path = export_onnx(model, tmp_path / "hdrcnn.onnx", (64, 128))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_modelmeta().custom_metadata_map["pad_multiple"] == "32"
    for shape in [(1, 3, 64, 128), (2, 3, 96, 64)]:  # dynamic batch and size
        x = _x(*[shape[0], *shape[2:]], seed=3)
        x[:, :, :16, :16] = 1.0
        with torch.no_grad():
            ref = model(x).log_hdr.numpy()
        log_hdr, _ = sess.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(log_hdr, ref, atol=1e-3 * max(1.0, np.abs(ref).max()), rtol=0)
