"""Models (hdr_core.models): registry sweep (timm style), shapes, gradients, padding, configs, building blocks."""

from __future__ import annotations

import json

import pytest
import torch

from hdr_core.models import (
    ExportWrapper,
    HDROutput,
    LANetConfig,
    PanoLANet,
    PanoLANetConfig,
    ResNetEncoder,
    SkipFuse,
    create_model,
    is_model,
    list_models,
    model_config,
)
from hdr_core.models.layers import InstanceNorm2d, pad_to_multiple
from hdr_core.models.resnet import symmetric_pad

PAPER = {"lanet", "panolanet"}


LANET_FAMILY = ("hdr_core.models.lanet", "hdr_core.models.pano_lanet")


def _variants():
    """The LANet family's registered variants (the ported baselines have their own test files)."""
    names = sorted(n for m in LANET_FAMILY for n in list_models(module=m))
    return [pytest.param(n, marks=pytest.mark.slow) if n in PAPER else n for n in names]


def _input(name: str) -> torch.Tensor:
    """Tiny inputs: the paper-size nets at the smallest legal size (batch 2: BatchNorm needs >1 value at c5 1x1)."""
    torch.manual_seed(0)
    pano = name.startswith("pano")
    b, h = (2, 32) if name in PAPER else (1, 64)
    return torch.rand(b, 3, h, 2 * h if pano else h) * 2 - 1


def _check_grads(model: torch.nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:8]}"
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad[:8]}"


def test_registry():
    assert {"lanet", "lanet_small", "panolanet", "panolanet_small"} <= set(list_models())
    assert list_models(module="hdr_core.models.lanet") == ["lanet", "lanet_small", "lanet_w24"]
    assert {"lanet_small", "panolanet_small"} <= set(list_models("*small"))
    assert all(n.endswith("small") for n in list_models("*small"))
    assert is_model("lanet") and not is_model("nope")
    with pytest.raises(ValueError, match="unknown model"):
        create_model("nope")
    cfg = model_config("lanet")
    assert cfg.encoder_layers == (3, 4, 6, 3) and cfg.encoder_width == 64 and cfg.bottleneck_ch == 1024
    assert cfg.decoder_widths == (512, 256, 128, 64, 64)
    cfg.bottleneck_ch = 7  # a copy: the registered default is untouched
    assert model_config("lanet").bottleneck_ch == 1024
    pano = model_config("panolanet")
    assert pano.pano_branch == "lanet" and pano.pano_config().bottleneck_ch == 1024
    assert model_config("panolanet", pano_branch="unet").pano_config().bottleneck_ch == 512
    with pytest.raises(ValueError, match="unknown config field"):
        model_config("lanet", no_such_field=1)
    with pytest.raises(ValueError, match="pano_branch"):
        model_config("panolanet", pano_branch="vgg")


@pytest.mark.parametrize("name", _variants())
def test_forward_backward(name):
    model = create_model(name)
    x = _input(name)
    b, _, h, w = x.shape
    out = model(x)
    assert isinstance(out, HDROutput)
    assert out.log_hdr.shape == x.shape and torch.isfinite(out.log_hdr).all()
    assert out.seg_logits.shape == (b, 3, h, w)
    assert out.attention.shape == (b, 2, h // 2, w // 2) and 0 <= out.attention.min() <= out.attention.max() <= 1
    if name.startswith("pano"):
        assert out.merge_mask.shape == (b, 1, h, w)
        assert out.ceiling_log_hdr.shape == (b, 3, h, h) and out.pano_log_hdr.shape == x.shape
    loss = out.log_hdr.square().mean() + out.seg_logits.mean()
    if out.ceiling_log_hdr is not None:  # the merge mask of random input may be ~0: reach the ceiling branch too
        loss = loss + out.ceiling_log_hdr.mean()
    loss.backward()
    _check_grads(model)
    assert model.num_params() == sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.parametrize("name", [n for n in list_models("*small") if not n.startswith("pano")])
def test_every_single_image_model_meets_the_shared_contract(name):
    """What training, prediction, export and render_eval rely on, for LANet and every ported baseline alike."""
    model = create_model(name).eval()
    m = model.pad_multiple
    assert isinstance(m, int) and m >= 1
    x = torch.rand(1, 3, 37, 70) * 2 - 1  # not a multiple of anything: the model pads and crops itself
    with torch.no_grad():
        out = model(x)
        xp = pad_to_multiple(x, m)
        aligned, _ = model.forward_aligned(xp)
    assert isinstance(out, HDROutput) and out.log_hdr.shape == x.shape and torch.isfinite(out.log_hdr).all()
    assert aligned.log_hdr.shape == xp.shape
    assert torch.equal(model.forward_export(x), out.log_hdr)
    assert create_model(name, config=model.config.to_dict()).config == model.config


def test_lanet_odd_and_tiny_sizes():
    model = create_model("lanet_small")
    x = torch.rand(1, 3, 37, 53) * 2 - 1
    out = model(x)
    assert out.log_hdr.shape == (1, 3, 37, 53) and out.seg_logits.shape == (1, 3, 37, 53)
    assert out.attention.shape == (1, 2, 19, 27)
    (out.log_hdr.mean() + out.seg_logits.mean()).backward()
    _check_grads(model)
    model.eval()
    with torch.no_grad():
        for hw in [(5, 7), (1, 1), (33, 200)]:  # replicate-pad fallback; e6/e7 at a 32*odd size
            assert model(torch.zeros(1, 3, *hw)).log_hdr.shape == (1, 3, *hw)


def test_lanet_output_is_cropped_padded_run():
    model = create_model("lanet_small").eval()
    x = torch.rand(1, 3, 40, 50) * 2 - 1
    with torch.no_grad():
        out, _ = model.forward_aligned(pad_to_multiple(x, 32))
        torch.testing.assert_close(model(x).log_hdr, out.log_hdr[..., :40, :50])


def test_pad_to_multiple():
    x = torch.arange(2 * 40 * 33, dtype=torch.float32).view(1, 2, 40, 33)
    y = pad_to_multiple(x, 32)
    assert y.shape == (1, 2, 64, 64)
    torch.testing.assert_close(y[..., :40, :33], x)
    torch.testing.assert_close(y[..., 40, :33], x[..., 38, :])  # reflect
    z = pad_to_multiple(x[..., :5, :7], 32)  # pad >= size: replicate
    assert z.shape == (1, 2, 32, 32) and torch.equal(z[..., -1, -1], x[..., 4, 6])
    assert pad_to_multiple(y, 32) is y


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated:DeprecationWarning")
def test_pad_to_multiple_traced():
    """Under tracing (ONNX export) the pad amounts stay symbolic: a graph traced at 64x64 pads 40x33 right."""
    x = torch.rand(1, 2, 40, 33)
    traced = torch.jit.trace(lambda t: pad_to_multiple(t, 32), (torch.zeros(1, 2, 64, 64),))
    torch.testing.assert_close(traced(x), pad_to_multiple(x, 32))


def test_panolanet_rejects_bad_sizes():
    model = create_model("panolanet_small")
    for shape in [(1, 3, 64, 64), (1, 3, 48, 96), (1, 3, 64, 130), (1, 1, 64, 128)]:
        with pytest.raises(ValueError, match="panoLANet"):
            model(torch.zeros(shape))


def test_panolanet_unet_branch():
    model = create_model("panolanet_small", pano_branch="unet")
    assert model.config.pano_config().bottleneck_ch == 128
    x = torch.rand(1, 3, 64, 128) * 2 - 1
    out = model(x)
    assert out.seg_logits is None and out.attention is None and out.log_hdr.shape == x.shape
    (out.log_hdr.mean() + out.ceiling_log_hdr.mean()).backward()
    _check_grads(model)
    crop = model.forward_pano(torch.rand(1, 3, 40, 40) * 2 - 1)  # stage 1: the pano branch alone, any size
    assert crop.log_hdr.shape == (1, 3, 40, 40)


def test_panolanet_merge():
    """log_hdr = m * C2P(ceiling) + (1 - m) * pano, with a bright sky so that the mask is not empty."""
    from hdr_core.projections import ceiling_to_pano

    model = create_model("panolanet_small").eval()
    x = torch.rand(1, 3, 64, 128) * 2 - 1
    x[..., :16, :] = 1.0
    with torch.no_grad():
        out = model(x)
    m = out.merge_mask
    assert m.max() > 0.5 and m.min() >= 0 and m[..., 48:, :].max() == 0
    torch.testing.assert_close(out.log_hdr, m * ceiling_to_pano(out.ceiling_log_hdr) + (1 - m) * out.pano_log_hdr)


def test_skipfuse_is_addition_at_init():
    fuse = SkipFuse(5)
    a, s = torch.randn(2, 5, 4, 3), torch.randn(2, 5, 4, 3)
    torch.testing.assert_close(fuse(a, s), a + s)
    assert fuse.conv.bias is not None and fuse.conv.weight.requires_grad


def test_instance_norm_single_pixel():
    norm = InstanceNorm2d(4)
    with torch.no_grad():
        norm.bias.copy_(torch.arange(4.0))
    x = torch.randn(2, 4, 1, 1, requires_grad=True)
    y = norm(x)
    torch.testing.assert_close(y, torch.arange(4.0).view(1, 4, 1, 1).expand(2, 4, 1, 1))
    y.sum().backward()
    assert norm.weight.grad is not None
    z = torch.randn(2, 4, 3, 5)
    torch.testing.assert_close(norm(z), torch.nn.functional.instance_norm(z, weight=norm.weight, bias=norm.bias))


@pytest.mark.parametrize("memory_format,dtype", [(torch.contiguous_format, torch.float32),
                                                  (torch.channels_last, torch.float32),
                                                  (torch.channels_last, torch.bfloat16)])
def test_instance_norm_fused_kernel_is_the_formula(memory_format, dtype):
    """Eager runs take F.group_norm (one group per channel); it is the explicit formula to float rounding, forward
    and backward, and keeps the input's memory order and dtype."""
    torch.manual_seed(0)
    norm = InstanceNorm2d(6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x0 = (3 * torch.randn(2, 6, 12, 20) + 1).to(dtype).contiguous(memory_format=memory_format)
    g = torch.randn(2, 6, 12, 20)
    results = []
    for f in (norm, norm.formula):
        norm.zero_grad(set_to_none=True)
        x = x0.clone().requires_grad_()
        y = f(x)
        y.float().backward(g)
        results.append((y.float(), x.grad.float(), norm.weight.grad, norm.bias.grad))
    (y, gx, gw, gb), (y_ref, gx_ref, gw_ref, gb_ref) = results
    tol = {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 0.05, "atol": 0.1}
    for a, b in ((y, y_ref), (gx, gx_ref), (gw, gw_ref), (gb, gb_ref)):
        torch.testing.assert_close(a, b, **tol)
    out = norm(x0)
    assert out.dtype == dtype and out.is_contiguous(memory_format=memory_format)


@pytest.mark.parametrize("width", [1, 2])
def test_strided_decoder_conv_has_right_bf16_weight_gradients_on_one_pixel_wide_maps(width):
    """The decoder's stride-2 conv (e6/e7) under CPU bf16 autocast: its weight gradient is the float32 one to bf16
    rounding, on maps one pixel wide too (torch 2.13's bf16 kernel returns garbage there in most calls; 20 tries)."""
    from hdr_core.models.layers import PreActConv

    torch.manual_seed(0)
    unit = PreActConv(64, 32, stride=2, act=False, norm=False)
    for _ in range(20):
        x = torch.randn(2, 64, 3, width)
        unit.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = unit(x)
        g = torch.randn(y.shape)
        (y.float() * g).sum().backward()
        ref = unit.conv.weight.detach().bfloat16().float().requires_grad_(True)
        (torch.nn.functional.conv2d(x.bfloat16().float(), ref, None, 2, 1) * g).sum().backward()
        err = (unit.conv.weight.grad - ref.grad).abs().max() / ref.grad.abs().max()
        assert torch.isfinite(unit.conv.weight.grad).all() and err < 0.02, err


def test_instance_norm_traces_the_formula():
    """A traced (ONNX) graph has no size-dependent branch: it is the formula for every size, 1x1 included."""
    norm = InstanceNorm2d(3).eval()
    graph = str(torch.jit.trace(norm, torch.randn(1, 3, 8, 8)).graph)
    assert "var_mean" in graph and "group_norm" not in graph


def test_resnet_encoder_caffe_v1():
    enc = ResNetEncoder((1, 2, 1, 1), width=8)
    feats = enc(torch.randn(2, 3, 64, 96))
    assert enc.out_channels == (8, 32, 64, 128, 256)
    for k, (f, c) in enumerate(zip(feats, enc.out_channels)):
        assert f.shape == (2, c, 64 >> (k + 1), 96 >> (k + 1))
    block = enc.stages[1][0]
    assert block.conv1[0].stride == (2, 2) and block.conv1[0].kernel_size == (1, 1)  # stride on the first 1x1
    assert block.conv2[0].stride == (1, 1)
    assert isinstance(block.conv3[-1], torch.nn.ReLU) and isinstance(block.shortcut[-1], torch.nn.ReLU)
    assert isinstance(enc.stages[1][1].shortcut, torch.nn.Identity)
    row = symmetric_pad(torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4), 3)[0, 0]
    assert row.shape == (10, 10) and row[0].tolist() == [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]  # TF SYMMETRIC
    assert enc(torch.randn(2, 3, 2, 2))[0].shape == (2, 8, 1, 1)  # under 3 px: replicate


@pytest.mark.parametrize("name", ["lanet_small", "panolanet_small"])
def test_config_round_trip(name):
    model = create_model(name, bottleneck_ch=64)
    blob = json.loads(json.dumps({"model": model.model_name, "config": model.config.to_dict()}))
    again = create_model(blob["model"], config=blob["config"])
    assert type(again.config).from_dict(blob["config"]) == model.config == again.config
    assert again.config.bottleneck_ch == 64
    a, b = model.state_dict(), again.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    again.load_state_dict(a)
    assert create_model(name, **blob["config"]).config == model.config
    cls = LANetConfig if name == "lanet_small" else PanoLANetConfig
    with pytest.raises(ValueError, match="unknown config field"):
        cls.from_dict({**blob["config"], "extra": 1})


def test_init_ceiling_from_pano():
    model: PanoLANet = create_model("panolanet_small")
    pano, ceil = model.pano.encoder.state_dict(), model.ceiling.encoder.state_dict()
    assert not all(torch.equal(pano[k], ceil[k]) for k in pano)
    model.init_ceiling_from_pano()
    ceil = model.ceiling.encoder.state_dict()
    assert all(torch.equal(pano[k], ceil[k]) for k in pano)
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(model.pano.encoder.parameters(),
                                                            model.ceiling.encoder.parameters()))


def test_export_helpers_and_hdr():
    model = create_model("lanet_small").eval()
    x = torch.rand(1, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(ExportWrapper(model)(x), out.log_hdr)
        torch.testing.assert_close(model.forward_export(x), out.log_hdr)
    torch.testing.assert_close(out.hdr, out.log_hdr.exp())


def test_initial_prediction_follows_input():
    """The output conv starts as identity on log(linear input): an untrained net roughly returns its input."""
    model = create_model("lanet_small").eval()
    lin = torch.rand(1, 3, 64, 64) * 0.8 + 0.05
    with torch.no_grad():
        log_hdr = model(2 * lin - 1).log_hdr
    assert (log_hdr - lin.log()).abs().mean() < 0.1
