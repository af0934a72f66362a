"""FHDR baseline (hdr_core.models.fhdr): shapes, iterations, hidden-state reset, input/output conventions, loss,
registry round trip, a smoke training run and ONNX parity. Tiny sizes only (64x64, batch 2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import fit_one_batch, synthetic_panorama

from hdr_core.color import srgb_to_linear
from hdr_core.data.pairs import PairConfig, PairDataset
from hdr_core.models import FHDR, FHDRConfig, HDROutput, create_model, list_models, model_config
from hdr_core.models.fhdr import LOG_FLOOR, mu_law

VARIANTS = ["fhdr", "fhdr_1iter", "fhdr_2iter", "fhdr_small"]
ITERATIONS = {"fhdr": 4, "fhdr_1iter": 1, "fhdr_2iter": 2, "fhdr_small": 2}


def _x(b: int = 2, h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def batch() -> dict:
    """Two 64x64 training pairs exactly as training builds them (PairDataset on tiny synthetic panoramas)."""
    panos = [synthetic_panorama(64, 0), synthetic_panorama(64, 1)]
    ds = PairDataset(panos, PairConfig(mode="crop", crop_size=64, store_height=64), length=4, seed=0)
    return torch.utils.data.default_collate([ds[0], ds[1]])


def test_registry_and_configs():
    assert set(VARIANTS) <= set(list_models("fhdr*"))
    for name, n in ITERATIONS.items():
        assert model_config(name).iterations == n
    paper = model_config("fhdr")
    assert (paper.num_features, paper.growth_rate, paper.num_dense_layers, paper.num_drdb) == (64, 32, 4, 3)
    assert paper.detach_hidden and paper.init == "torch"
    with pytest.raises(ValueError, match="iterations"):
        FHDRConfig(iterations=0)
    with pytest.raises(ValueError, match="init"):
        FHDRConfig(init="xavier")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n != "fhdr_small" else n
                                  for n in VARIANTS])  # paper width: 0.57 M params at full resolution
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name)
    assert isinstance(model, FHDR) and model.pad_multiple == 1
    x = _x(2, 32, 32) if name != "fhdr_small" else _x()
    out = model(x)
    assert isinstance(out, HDROutput) and out.log_hdr.shape == x.shape
    assert torch.isfinite(out.log_hdr).all() and out.log_hdr.max() <= 0.0
    assert sorted(out.aux) == [f"iter_{k}" for k in range(ITERATIONS[name])]
    for y in out.aux.values():
        assert y.shape == x.shape and 0.0 <= y.min() and y.max() <= 1.0
    torch.testing.assert_close(out.log_hdr, out.aux[f"iter_{ITERATIONS[name] - 1}"].clamp(min=LOG_FLOOR).log())
    sum(y.mean() for y in out.aux.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("hw", [(37, 53), (2, 2), (64, 33)])
def test_any_size_same_hw(hw):
    model = create_model("fhdr_small").eval()
    with torch.no_grad():
        out = model(_x(1, *hw))
    assert out.log_hdr.shape == (1, 3, *hw) and torch.isfinite(out.log_hdr).all()
    assert all(y.shape == (1, 3, *hw) for y in out.aux.values())
    hdr_out, extra = model.forward_aligned(_x(1, *hw))
    assert extra is None
    torch.testing.assert_close(hdr_out.log_hdr, out.log_hdr)


def test_hidden_state_reset_every_forward():
    """No state between calls: same input -> same output; a previous (other) input or batch size changes nothing."""
    model = create_model("fhdr_small").eval()
    a, b = _x(seed=1), _x(seed=2)
    with torch.no_grad():
        first = model(a)
        again = model(a)
        model(b)
        model(_x(1, 40, 24, seed=3))  # another batch size and size: the released code breaks here
        after = model(a)
    for k in first.aux:
        assert torch.equal(first.aux[k], again.aux[k]) and torch.equal(first.aux[k], after.aux[k])
    assert not torch.equal(first.aux["iter_0"], first.aux["iter_1"])  # the feedback changes the prediction
    assert not any(isinstance(v, torch.Tensor) for m in model.modules() for v in vars(m).values())


def test_iterations_share_weights_and_are_causal():
    """Iteration k does not depend on later iterations: a 3-iteration net repeats the 2-iteration one's outputs."""
    torch.manual_seed(0)
    two = create_model("fhdr_small").eval()
    three = create_model("fhdr_small", iterations=3).eval()
    three.load_state_dict(two.state_dict())  # weights are shared across iterations: same state dict
    x = _x(seed=4)
    with torch.no_grad():
        o2, o3 = two(x), three(x)
    assert len(o3.aux) == 3
    for k in ("iter_0", "iter_1"):
        torch.testing.assert_close(o2.aux[k], o3.aux[k])


def test_detach_hidden_matches_official_code():
    """Official code detaches the hidden states between iterations; ``detach_hidden=False`` backpropagates
    through them, so the last iteration's loss sends other gradients to the feature extractor."""
    torch.manual_seed(0)
    det = create_model("fhdr_small")
    full = create_model("fhdr_small", detach_hidden=False)
    full.load_state_dict(det.state_dict())
    x = _x(seed=5)
    grads = []
    for m in (det, full):
        out = m(x)
        out.aux["iter_1"].mean().backward()
        grads.append(m.feb1.weight.grad.clone())
    torch.testing.assert_close(det(x).log_hdr, full(x).log_hdr)  # same forward
    assert not torch.allclose(grads[0], grads[1])


def test_network_input_is_the_display_image():
    """FHDR sees the display image in [-1, 1], i.e. our linear input re-encoded with the sRGB OETF."""
    d = torch.rand(1, 3, 8, 8)
    x = 2 * srgb_to_linear(d) - 1
    torch.testing.assert_close(FHDR.network_input(x), 2 * d - 1, atol=1e-5, rtol=0)


def test_official_init_zeroes_conv_weights():
    model = create_model("fhdr_small", init="official")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(torch.count_nonzero(c.weight) == 0 for c in convs)
    assert any(c.bias is not None and torch.count_nonzero(c.bias) > 0 for c in convs)  # biases untouched
    assert all(torch.count_nonzero(c.weight) > 0 for c in create_model("fhdr_small").modules()
               if isinstance(c, torch.nn.Conv2d))


def test_config_round_trip():
    model = create_model("fhdr_small", iterations=3)
    blob = json.loads(json.dumps({"model": model.model_name, "config": model.config.to_dict()}))
    again = create_model(blob["model"], config=blob["config"])
    assert again.config == model.config and again.config.iterations == 3
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    again.load_state_dict(a)
    x = _x(1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x).log_hdr, again(x).log_hdr)
    with pytest.raises(ValueError, match="unknown config field"):
        FHDRConfig.from_dict({**blob["config"], "extra": 1})


def test_training_loss(batch):
    torch.manual_seed(0)
    model = create_model("fhdr_small")
    out = model(2 * batch["ldr"] - 1)
    loss, parts = model.training_loss(out, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(parts) == {"l1_mu", "l1_mu_iter_0", "l1_mu_iter_1"}
    assert all(isinstance(v, float) for v in parts.values())
    assert parts["l1_mu"] == pytest.approx((parts["l1_mu_iter_0"] + parts["l1_mu_iter_1"]) / 2, rel=1e-5)
    # the target: mu-law of the HDR max-normalised per image; the loss is scale invariant in the GT
    gt = batch["hdr"] / batch["hdr"].amax(dim=(1, 2, 3), keepdim=True)
    ref = (mu_law(out.aux["iter_1"]) - mu_law(gt)).abs().mean()
    assert parts["l1_mu_iter_1"] == pytest.approx(ref.item(), rel=1e-5)
    scaled = {**batch, "hdr": batch["hdr"] * torch.tensor([3.0, 0.01]).view(2, 1, 1, 1)}
    assert model.training_loss(out, scaled)[0].item() == pytest.approx(loss.item(), rel=1e-5)
    assert mu_law(torch.tensor([0.0, 1.0])).tolist() == pytest.approx([0.0, 1.0])
    assert mu_law(torch.tensor(0.5)).item() == pytest.approx(math.log1p(2500) / math.log1p(5000))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_compute_loss_uses_training_loss(batch):
    """hdr_core.train.compute_loss routes FHDR to its own loss."""
    from hdr_core.train import TrainConfig, compute_loss

    torch.manual_seed(0)
    model = create_model("fhdr_small")
    loss, logs = compute_loss(TrainConfig(), model, batch)
    torch.manual_seed(0)
    ref, _ = model.training_loss(model(2 * batch["ldr"] - 1), batch)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6) and "si_mse" in logs


@pytest.mark.slow  # ~2 s on an idle core; 30 steps
def test_smoke_training_lowers_loss(batch):
    torch.manual_seed(0)
    model = create_model("fhdr_small")
    losses = fit_one_batch(model, batch, lr=1e-3, betas=(0.9, 0.999))
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_onnx_parity(tmp_path):
    """The exported graph (traced at 64x96) runs other sizes too and matches torch."""
    ort = pytest.importorskip("onnxruntime")
    from hdr_core.export import export_onnx

    torch.manual_seed(0)
    model = create_model("fhdr_small").eval()
    path = export_onnx(model, tmp_path / "fhdr.onnx", (64, 96))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["model"] == "fhdr_small" and meta["pad_multiple"] == "1"
    for shape in [(1, 3, 64, 96), (2, 3, 37, 53)]:
        x = _x(*[shape[0], *shape[2:]], seed=6)
        log_hdr, mask = sess.run(None, {"x": x.numpy()})
        with torch.no_grad():
            ref = model(x).log_hdr.numpy()
        assert log_hdr.shape == ref.shape and not mask.any()
        np.testing.assert_allclose(log_hdr, ref, atol=1e-4, rtol=1e-4)
