"""SingleHDR port (hdr_core.models.singlehdr) and our inverse-CRF basis (hdr_core.models.crf_basis)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdr_core.camera import crf as camera_crf
from hdr_core.color import linear_to_srgb
from hdr_core.data.pairs import PairConfig, PairDataset
from hdr_core.models import HDROutput, create_model, model_config
from hdr_core.models import crf_basis as cb
from hdr_core.models.singlehdr import (
    SingleHDR,
    apply_inverse_crf,
    exposure_mask,
    increasing,
    sobel_edges,
    soft_histogram,
    true_inverse_crf,
)

VARIANTS = ["singlehdr_small", pytest.param("singlehdr", marks=pytest.mark.slow)]
AUX = {"dequantized": 3, "linearized": 3, "hdr_linear": 3, "alpha": 1}


def _x(b=2, h=64, w=64, seed=0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.rand(b, 3, h, w) * 2 - 1


def _check_grads(model: torch.nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:8]}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:8]}"


def _check_output(out: HDROutput, b: int, h: int, w: int) -> None:
    assert out.log_hdr.shape == (b, 3, h, w) and torch.isfinite(out.log_hdr).all()
    for k, c in AUX.items():
        assert out.aux[k].shape == (b, c, h, w), k
    assert out.aux["inv_crf"].shape == (b, cb.N_SAMPLES, 1, 1)


def _all_outputs_loss(out: HDROutput) -> torch.Tensor:
    return out.log_hdr.mean() + sum(v.mean() for v in out.aux.values())


@pytest.fixture(scope="module")
def batch():
    """Two whole 32x64 panoramas (each has a clipped sun) through the training-pair pipeline, collated."""
    from conftest import synthetic_panorama

    ds = PairDataset([synthetic_panorama(32, s) for s in (0, 1)], PairConfig(mode="pano", pano_height=32),
                     length=2, seed=0)
    items = [ds[i] for i in range(2)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


# ----------------------------------------------------------------------------------------------- basis

def test_basis_file_matches_its_generator():
    stored = cb.load_basis()
    assert cb.BASIS_FILE.is_file()
    fresh = cb.build_basis()
    assert set(stored) == set(fresh)
    for k in fresh:
        np.testing.assert_allclose(stored[k], fresh[k], atol=1e-6, err_msg=k)
    h = stored["hinv"].astype(np.float64)
    assert h.shape == (cb.N_SAMPLES, cb.N_COMPONENTS)
    np.testing.assert_allclose(h.T @ h, np.eye(cb.N_COMPONENTS), atol=1e-5)
    assert stored["g0"][0] == pytest.approx(0, abs=1e-7) and stored["g0"][-1] == pytest.approx(1, abs=1e-6)
    assert np.all(np.diff(stored["explained"]) <= 0) and stored["explained"].sum() > 0.999


def test_basis_represents_the_virtual_camera_family():
    d = np.linspace(0, 1, cb.N_SAMPLES)
    curves = np.stack([cb.sigmoid_inverse_crf(d, s, n) for s in (0.3, 0.4, 0.5) for n in (0.8, 0.9, 1.0)])
    err = np.abs(cb.project(curves) - curves).max()
    assert err < 1e-3, err
    fam = cb.inverse_crf_family()
    assert np.all(np.diff(fam, axis=1) >= 0) and np.all(fam[:, 0] == 0) and np.all(fam[:, -1] == 1)


# ----------------------------------------------------------------------------------------------- helpers

def test_increasing_makes_monotone_curves_and_keeps_good_ones():
    torch.manual_seed(0)
    wild = torch.randn(3, 64).cumsum(1) * 0.1
    g = increasing(wild)
    assert torch.all(g[:, 1:] > g[:, :-1]) and torch.all(g[:, 0] == 0)
    torch.testing.assert_close(g[:, -1], torch.ones(3))
    d = torch.linspace(0, 1, cb.N_SAMPLES, dtype=torch.float64)[None]
    good = cb.sigmoid_inverse_crf(d, 0.4, 0.9)
    torch.testing.assert_close(increasing(good), good)
    assert torch.isfinite(increasing(torch.zeros(1, 8))).all()  # a flat curve: no 0/0


def test_apply_inverse_crf_inverts_the_camera():
    crf = torch.tensor([[0.4, 0.9], [0.3, 0.8]], dtype=torch.float64)
    g = true_inverse_crf(crf)
    v = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    d = torch.from_numpy(np.stack([camera_crf(v[i].numpy(), *crf[i].tolist()) for i in range(2)]))
    torch.testing.assert_close(apply_inverse_crf(d, g), v, atol=2e-3, rtol=0)
    ident = torch.linspace(0, 1, cb.N_SAMPLES)[None].repeat(2, 1)
    x = torch.rand(2, 3, 5, 7)
    torch.testing.assert_close(apply_inverse_crf(x, ident), x)
    assert torch.equal(apply_inverse_crf(torch.ones(2, 3, 2, 2), ident), torch.ones(2, 3, 2, 2))


def test_sobel_and_histogram_features():
    ramp = torch.arange(8.0).view(1, 1, 1, 8).expand(1, 3, 6, 8) * 0.1
    e = sobel_edges(ramp)
    assert e.shape == (1, 6, 6, 8)
    torch.testing.assert_close(e[:, 1::2, :, 1:-1], torch.full((1, 3, 6, 6), 0.8))  # dx = 8 * slope inside
    assert e[:, 0::2].abs().max() < 1e-6  # dy
    img = torch.rand(2, 3, 5, 5)
    for k in (4, 8, 16):
        h = soft_histogram(img, k)
        assert h.shape == (2, 3 * (k + 1), 5, 5)
        torch.testing.assert_close(h.view(2, k + 1, 3, 5, 5).sum(1), torch.ones(2, 3, 5, 5))  # partition of unity
    assert torch.equal(exposure_mask(torch.ones(2, 3, 4, 4)), torch.zeros(2))
    assert torch.equal(exposure_mask(torch.full((1, 3, 4, 4), 0.5)), torch.ones(1))


# ----------------------------------------------------------------------------------------------- model

def test_registry_and_config():
    cfg = model_config("singlehdr")
    assert cfg.deq_widths == (16, 32, 64, 128, 256) and cfg.hist_bins == (4, 8, 16) and cfg.n_basis == 11
    assert cfg.threshold == 0.12 and cfg.hal_upsample == "nearest"
    hal = cfg.hallucination_config()
    assert hal.skip_transform == "linear" and hal.widths == (64, 128, 256, 512, 512)
    with pytest.raises(ValueError, match="lin_downsample"):
        model_config("singlehdr_small", lin_downsample=3)
    with pytest.raises(ValueError, match="n_basis"):
        model_config("singlehdr_small", n_basis=12)


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_backward(name):
    model = create_model(name)
    assert isinstance(model, SingleHDR) and model.model_name == name
    x = _x()
    out = model(x)
    assert isinstance(out, HDROutput)
    _check_output(out, 2, 64, 64)
    _all_outputs_loss(out).backward()
    _check_grads(model)


def test_odd_size():
    model = create_model("singlehdr_small")
    out = model(_x(1, 70, 90))
    _check_output(out, 1, 70, 90)
    _all_outputs_loss(out).backward()
    _check_grads(model)


def test_untrained_stages_start_as_identity_and_mean_curve():
    model = create_model("singlehdr_small").eval()
    x = _x(1, 64, 64, seed=4)
    with torch.no_grad():
        out = model(x)
    d = linear_to_srgb((x + 1) * 0.5)
    torch.testing.assert_close(out.aux["dequantized"], d)
    g0 = model.linearization.g0
    torch.testing.assert_close(out.aux["inv_crf"][0, :, 0, 0], g0, atol=1e-5, rtol=0)
    b, a = out.aux["linearized"], out.aux["hdr_linear"]
    low = (b.amax(1, keepdim=True) <= 0.88).expand_as(b)
    assert low.any() and torch.equal(a[low], b[low])  # hallucination only adds near saturation
    assert torch.all(a >= b)


def test_registry_round_trip():
    torch.manual_seed(0)
    model = create_model("singlehdr_small", w_tv=0.2).eval()
    again = create_model("singlehdr_small", config=model.config.to_dict()).eval()
    assert again.config == model.config and again.config.w_tv == 0.2
    again.load_state_dict(model.state_dict())  # the basis buffers travel with the weights
    assert "linearization.hinv" in model.state_dict()
    x = _x(1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x).log_hdr, model(x).log_hdr)


def test_training_loss_on_a_pairs_batch(batch):
    assert batch["hdr_camera"].amax() > 1
    model = create_model("singlehdr_small")
    out = model(2 * batch["ldr"] - 1)
    loss, parts = model.training_loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    assert set(parts) == {"deq", "lin", "crf", "hal", "tv", "valid"} and parts["valid"] == 1.0
    assert all(np.isfinite(v) for v in parts.values()) and parts["crf"] > 0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.slow
def test_smoke_training_lowers_the_loss(batch):
    from conftest import fit_one_batch

    torch.manual_seed(0)
    model = create_model("singlehdr_small")
    losses = fit_one_batch(model, batch, lr=3e-4)
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * losses[0], losses


@pytest.mark.slow  # ~5 s alone, over 10 s on a busy CPU
def test_onnx_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from hdr_core.export import export_onnx

    torch.manual_seed(0)
    model = create_model("singlehdr_small").eval()
    with torch.no_grad():  # give the zero-initialised layers some weight, so every stage matters
        model.dequantization.out.weight.normal_(0, 0.05)
        model.linearization.fc.weight.normal_(0, 0.05)
    path = export_onnx(model, tmp_path / "singlehdr.onnx", (64, 128))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert sess.get_modelmeta().custom_metadata_map["pad_multiple"] == "64"
    for b, h, w in [(1, 64, 128), (2, 128, 64)]:  # dynamic batch and size
        x = _x(b, h, w, seed=3)
        x[:, :, :16, :16] = 1.0
        with torch.no_grad():
            ref = model(x).log_hdr.numpy()
        log_hdr, _ = sess.run(None, {"x": x.numpy()})
        np.testing.assert_allclose(log_hdr, ref, atol=1e-3 * max(1.0, np.abs(ref).max()), rtol=0)
