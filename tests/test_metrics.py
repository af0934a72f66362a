"""Render and panorama metrics (render_eval.metrics): identities, monotonic degradation, invariances, validation,
and ColorVideoVDP imported through the torchvision guard."""

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_eval import metrics as M


def _render(h=72, w=128, seed=0):
    """A render-like linear image: smooth shading, texture, a highlight above 1."""
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.2 + 0.6 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.3) ** 2) / 0.05)
    img = base[..., None] * np.array([1.0, 0.9, 0.7]) * (1 + 0.2 * r.random((h, w, 1)))
    img[h // 3:h // 3 + 4, w // 2:w // 2 + 4] = 6.0
    return img


def _noisy(img, sigma, seed=1):
    return np.maximum(img * (1 + sigma * np.random.default_rng(seed).standard_normal(img.shape)), 0)


def test_render_identities_without_vdp():
    gt = _render()
    out = M.render_metrics(gt, gt.copy(), vdp=False)
    assert out == {"psnr": float("inf"), "ssim": 1.0, "mse_1e3": 0.0, "mse_hdr_1e3": 0.0}
    assert M.psnr(np.zeros((16, 16)), np.zeros((16, 16))) == float("inf")
    assert M.mse_linear(gt, gt) == 0.0
    assert M.mse_display(gt, gt) == 0.0


def test_render_metrics_degrade_monotonically():
    gt = _render()
    res = [M.render_metrics(_noisy(gt, s), gt, vdp=False) for s in (0.02, 0.1, 0.3)]
    assert res[0]["psnr"] > res[1]["psnr"] > res[2]["psnr"]
    assert res[0]["ssim"] > res[1]["ssim"] > res[2]["ssim"]
    assert res[0]["mse_1e3"] < res[1]["mse_1e3"] < res[2]["mse_1e3"]
    assert res[0]["mse_hdr_1e3"] < res[1]["mse_hdr_1e3"] < res[2]["mse_hdr_1e3"]
    assert res[1]["mse_1e3"] == pytest.approx(M.mse_display(_noisy(gt, 0.1), gt) * 1e3)
    assert res[1]["mse_hdr_1e3"] == pytest.approx(M.mse_linear(_noisy(gt, 0.1), gt) * 1e3)


def test_mse_is_the_papers_bounded_one_and_hdr_mse_the_unbounded():
    gt = _render()  # has a 6.0 highlight
    brighter = gt.copy()
    brighter[gt > 1] *= 100  # a sun reflection 100x too bright: invisible once clipped to the display's [0, 1]
    out = M.render_metrics(brighter, gt, vdp=False)
    assert out["mse_1e3"] == 0.0 and out["mse_hdr_1e3"] > 1e3
    half = gt * 0.5  # a global change below the clip point: clipped MSE = mean((min(x,1) - min(x/2,1))^2)
    expect = np.mean((np.clip(gt, 0, 1) - np.clip(half, 0, 1)) ** 2) * 1e3
    assert M.render_metrics(half, gt, vdp=False)["mse_1e3"] == pytest.approx(expect)
    assert M.mse_display(np.full((4, 4, 3), 3.0), np.full((4, 4, 3), 1.0)) == 0.0


def test_psnr_ssim_use_display_encoding_and_data_range_one():
    gt = np.full((16, 16, 3), 0.5)
    pred = gt + 0.1
    assert M.psnr(pred, gt) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    from render_eval.display import display_encode

    lin_gt, lin_pred = _render(), _noisy(_render(), 0.1)
    out = M.render_metrics(lin_pred, lin_gt, vdp=False)
    assert out["psnr"] == pytest.approx(M.psnr(display_encode(lin_pred), display_encode(lin_gt)))
    assert out["ssim"] == pytest.approx(M.ssim(display_encode(lin_pred), display_encode(lin_gt)))


def test_torchvision_guard_imports_real_cvvdp():
    pycvvdp = M.import_pycvvdp()
    import torch
    import torchvision
    from torchvision.transforms import GaussianBlur

    assert M.import_pycvvdp() is pycvvdp and "pycvvdp" in sys.modules
    if not torchvision.extension._has_ops():  # native ops did not load: only the meta registrations are stubbed
        assert not hasattr(sys.modules["torchvision._meta_registrations"], "meta_roi_align")
    # The blur cvvdp uses is torchvision's real one: compare with a separable Gaussian computed here.
    img = torch.zeros(1, 1, 9, 9)
    img[0, 0, 4, 4] = 1
    k = np.exp(-0.5 * (np.arange(-2, 3) / 1.0) ** 2)
    k /= k.sum()
    np.testing.assert_allclose(GaussianBlur(5, 1.0)(img)[0, 0, 2:7, 2:7].numpy(), np.outer(k, k), atol=1e-6)
    metric = M._cvvdp_metric()
    assert metric.display_photometry.Y_peak == 1500 and metric.pix_per_deg == pytest.approx(M.VDP_PPD)


def test_vdp_jod_identity_and_monotonic():
    import torch

    gt = _render()
    threads = torch.get_num_threads()
    assert M.vdp_jod(gt, gt.copy()) == pytest.approx(10.0, abs=1e-6)
    jods = [M.vdp_jod(_noisy(gt, s), gt) for s in (0.02, 0.1, 0.3)]
    assert 10.0 > jods[0] > jods[1] > jods[2]
    assert torch.get_num_threads() == threads  # restored after the single-threaded run
    full = M.render_metrics(_noisy(gt, 0.1), gt)
    assert full["vdp_jod"] == pytest.approx(jods[1], abs=1e-4)


def test_flip_opt_in():
    gt = _render(48, 64)
    try:
        import flip_evaluator  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="flip-evaluator"):
            M.flip(gt, gt)
        return
    assert M.flip(gt, gt) == 0.0
    assert 0 < M.flip(_noisy(gt, 0.05), gt) < M.flip(_noisy(gt, 0.3), gt)
    assert "flip" in M.render_metrics(gt, gt, vdp=False, flip=True)


@given(st.floats(1e-3, 1e3), st.integers(0, 1000))
def test_si_mse_invariant_to_global_scale(k, seed):
    gt = np.random.default_rng(seed).random((8, 16, 3)) * 10
    pred = _noisy(gt, 0.2, seed + 1) + 1e-3
    for fn in (M.si_mse_lin, M.si_mse_log):
        assert fn(k * pred, gt) == pytest.approx(fn(pred, gt), rel=1e-6, abs=1e-12)
        assert fn(k * gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert 0 <= M.si_mse_lin(pred, gt) <= 1


def test_si_mse_definitions():
    gt = np.array([[1.0, 2.0], [3.0, 4.0]])
    pred = np.array([[1.0, 1.0], [1.0, 1.0]])
    s = pred.ravel() @ gt.ravel() / (pred.ravel() @ pred.ravel())
    assert M.si_mse_lin(pred, gt) == pytest.approx(np.mean((s * pred - gt) ** 2) / np.mean(gt**2))
    assert M.si_mse_lin(np.zeros_like(gt), gt) == 1.0
    d = np.log(pred) - np.log(gt)
    assert M.si_mse_log(pred, gt) == pytest.approx(np.var(d))
    assert M.si_mse_log(np.zeros_like(gt), gt) == pytest.approx(np.var(np.log(1e-8) - np.log(gt)))


def test_pano_metrics_identity_and_degradation():
    gt = _render(32, 64, seed=3)
    gt[2:5, 10:13] = 500.0  # a sun far above the display peak (PU21 clips at 1e4 cd/m2)
    same = M.pano_metrics(gt, gt.copy())
    assert same == {"si_mse_lin": 0.0, "si_mse_log": 0.0, "pu21_psnr": float("inf"), "pu21_ssim": 1.0}
    a, b = (M.pano_metrics(_noisy(gt, s), gt) for s in (0.05, 0.3))
    assert a["pu21_psnr"] > b["pu21_psnr"] and a["pu21_ssim"] > b["pu21_ssim"]
    assert a["si_mse_lin"] < b["si_mse_lin"] and a["si_mse_log"] < b["si_mse_log"]


def test_pu21_encoding_anchor():
    # PU21 maps 100 cd/m2 (SDR white) to ~256, the data range of the PU21 reference metrics.
    assert float(M.pu21_encode(np.array(100.0 / M.ANCHOR_CD_M2))) == pytest.approx(256.38, abs=0.01)
    v = M.pu21_encode(np.geomspace(1e-6, 1e3, 50))
    assert np.all(np.diff(v) >= 0)


def test_metric_names_cover_all_keys():
    gt = _render(24, 32)
    keys = (set(M.render_metrics(gt, gt, vdp=False)) | set(M.pano_metrics(gt, gt)) | {"vdp_jod", "flip"}
            | set(M.light_metrics(gt, gt)))
    assert keys == set(M.METRIC_NAMES) == set(M.HIGHER_IS_BETTER)
    assert M.METRIC_NAMES["vdp_jod"] == "VDP (ColorVideoVDP JOD)"
    assert not any("HDR-VDP" in n for n in M.METRIC_NAMES.values())
    assert M.HIGHER_IS_BETTER["vdp_jod"] and not M.HIGHER_IS_BETTER["mse_1e3"]


@pytest.mark.parametrize("pred, gt, match", [
    (np.ones((16, 16, 3)), np.ones((16, 8, 3)), "shape"),
    (np.ones((16, 16, 3)) * np.nan, np.ones((16, 16, 3)), "NaN"),
    (-np.ones((16, 16, 3)), np.ones((16, 16, 3)), "negative"),
    (np.ones((16, 16, 4)), np.ones((16, 16, 4)), "HxW"),
    (np.ones((4, 4, 3)), np.ones((4, 4, 3)), "11x11"),
])
def test_input_validation(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        M.render_metrics(pred, gt, vdp=False)


def test_display_and_pano_validation():
    with pytest.raises(ValueError, match="above 1"):
        M.psnr(np.full((16, 16), 1.5), np.ones((16, 16)))
    with pytest.raises(ValueError, match="infinite"):
        M.vdp_jod(np.full((16, 16, 3), np.inf), np.ones((16, 16, 3)))
    with pytest.raises(ValueError, match="zero everywhere"):
        M.si_mse_lin(np.ones((4, 4)), np.zeros((4, 4)))
