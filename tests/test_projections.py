"""P2C / C2P ceiling warps and perspective crops (hdr_core.projections, method.md §3)."""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdr_core.projections import (
    CEILING_CAMERA_OFFSET,
    CEILING_D,
    ceiling_coverage_mask,
    ceiling_to_pano,
    ceiling_to_sphere,
    pano_angles,
    pano_to_ceiling,
    perspective_crop,
    random_view,
    sphere_to_ceiling,
    standard_views,
)

TOL = {torch.float32: {"atol": 1e-5, "rtol": 1e-5}, torch.float64: {"atol": 1e-10, "rtol": 1e-10}}


def _read_exr(path) -> np.ndarray:
    """Tiny local EXR reader (hdr_core.io may not exist yet): H x W x 3 float32."""
    import OpenEXR

    channels = OpenEXR.File(str(path)).channels()
    if "RGB" in channels:
        return channels["RGB"].pixels.astype(np.float32)
    return np.stack([channels[c].pixels for c in "RGB"], axis=-1).astype(np.float32)


def _psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    mse = (((a - b) ** 2) * mask).sum() / (mask.sum() * a.shape[1])
    return float(10 * torch.log10(1.0 / mse))


def _ray_sphere_theta(x: float, y: float) -> float:
    """Independent check of P2C: intersect the ray from the camera at (0, 0, -c) through (x, y, 1/d) with the sphere."""
    o = np.array([0.0, 0.0, -CEILING_CAMERA_OFFSET])
    r = np.array([x, y, 1.0 / CEILING_D])
    r /= np.linalg.norm(r)
    b = o @ r
    t = -b + math.sqrt(b * b - (o @ o - 1.0))
    p = o + t * r
    return math.acos(p[2])


@pytest.mark.parametrize(("name", "min_psnr"), [("forest", 33.0), ("city", 48.0)])
def test_roundtrip_real_panorama(blender_hdri_path, name, min_psnr):
    """C2P(P2C(x)) ~ x inside the coverage mask (eroded by 1 px) on a real HDRI at 256 x 512, log tone-mapped.

    Measured (torch 2.13, CPU): forest 35.2 dB, city 50.6 dB; the loss is the two bilinear resamplings of
    high-frequency detail (a 9 x 9 blurred forest gives 39.8 dB with x / (1 + x)).
    """
    hdr = torch.from_numpy(_read_exr(blender_hdri_path(name))).permute(2, 0, 1)[None].clamp(min=0)
    hdr = F.interpolate(hdr, size=(256, 512), mode="area")
    x = torch.log1p(hdr) / torch.log1p(hdr).max()
    mask = ceiling_coverage_mask(256)
    eroded = -F.max_pool2d(-mask, 3, 1, 1)
    ceil = pano_to_ceiling(x)
    assert ceil.shape == (1, 3, 256, 256)
    back = ceiling_to_pano(ceil)
    assert torch.all(back[(mask == 0).expand_as(back)] == 0)
    assert _psnr(back, x, eroded) > min_psnr


def test_geometry_constants_and_special_points():
    assert CEILING_D == pytest.approx(math.sqrt(3))
    assert CEILING_CAMERA_OFFSET == pytest.approx(1 / math.sqrt(6))
    t = torch.tensor
    # zenith -> ceiling centre, any azimuth
    x, y = sphere_to_ceiling(t([0.0, 0.0], dtype=torch.float64), t([0.3, 4.0], dtype=torch.float64))
    assert x.abs().max() < 1e-12 and y.abs().max() < 1e-12
    # the square's corners land on the horizon, the edge midpoints at 80.7 deg
    cx = t([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    cy = t([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)
    theta, phi = ceiling_to_sphere(cx, cy)
    assert torch.allclose(theta, torch.full_like(theta, math.pi / 2), atol=1e-12)
    assert torch.allclose(phi, t([45.0, 135.0, 225.0, 315.0], dtype=torch.float64).deg2rad(), atol=1e-12)
    theta_edge, _ = ceiling_to_sphere(t([1.0], dtype=torch.float64), t([0.0], dtype=torch.float64))
    assert math.degrees(theta_edge.item()) == pytest.approx(80.7, abs=0.05)
    # C2P inverts P2C, and P2C agrees with an explicit ray-sphere intersection
    g = torch.linspace(-0.999, 0.999, 41, dtype=torch.float64)
    gx, gy = torch.meshgrid(g, g, indexing="ij")
    theta, phi = ceiling_to_sphere(gx, gy)
    x, y = sphere_to_ceiling(theta, phi)
    assert torch.allclose(x, gx, atol=1e-12) and torch.allclose(y, gy, atol=1e-12)
    for px, py in [(0.1, 0.2), (-0.7, 0.4), (0.95, -0.95)]:
        got = ceiling_to_sphere(t(px, dtype=torch.float64), t(py, dtype=torch.float64))[0].item()
        assert got == pytest.approx(_ray_sphere_theta(px, py), abs=1e-12)


def test_coverage_mask():
    mask = ceiling_coverage_mask(256)
    assert mask.shape == (1, 1, 256, 512) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert mask.mean().item() == pytest.approx(0.466, abs=0.002)
    theta, _ = pano_angles(256)
    assert torch.all(mask[0, 0][theta < math.radians(80.7)] == 1)
    assert torch.all(mask[0, 0][theta >= math.pi / 2] == 0)
    assert ceiling_coverage_mask(8, dtype=torch.float64).dtype == torch.float64


def test_zenith_blob_lands_at_ceiling_centre():
    h = 64
    theta, _ = pano_angles(h)
    pano = (theta < math.radians(20))[None, None].float()
    ceil = pano_to_ceiling(pano)[0, 0]
    idx = torch.arange(h, dtype=torch.float32)
    total = ceil.sum()
    assert total > 0
    assert (ceil.sum(1) * idx).sum() / total == pytest.approx((h - 1) / 2, abs=1e-3)
    assert (ceil.sum(0) * idx).sum() / total == pytest.approx((h - 1) / 2, abs=1e-3)
    torch.testing.assert_close(ceil, ceil.flip(0))
    torch.testing.assert_close(ceil, ceil.flip(1))


def test_p2c_samples_expected_angles():
    """A panorama encoding (theta, cos phi, sin phi) sampled by P2C gives the analytic angles of ceiling pixels."""
    h = 128
    theta, phi = pano_angles(h, dtype=torch.float64)
    pano = torch.stack([theta, torch.cos(phi), torch.sin(phi)])[None]
    ceil = pano_to_ceiling(pano)[0]
    for row, col in [(10, 20), (100, 5), (64, 90), (0, 0), (127, 64), (40, 127)]:
        x, y = 1 - (2 * row + 1) / h, 1 - (2 * col + 1) / h
        want_theta = _ray_sphere_theta(x, y)
        want_phi = math.atan2(y, x)
        assert ceil[0, row, col].item() == pytest.approx(want_theta, abs=1e-9)  # theta is linear in the rows
        got_phi = math.atan2(ceil[2, row, col].item(), ceil[1, row, col].item())
        assert abs(math.remainder(got_phi - want_phi, 2 * math.pi)) < 2e-3
    # ceiling corner pixels sit just above the horizon, at the four diagonal azimuths
    assert ceil[0, 0, 0].item() == pytest.approx(_ray_sphere_theta(1 - 1 / h, 1 - 1 / h), abs=1e-9)
    assert ceil[0, 0, 0].item() == pytest.approx(math.pi / 2, abs=0.03)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_azimuth_wrap_quarter_turns(dtype):
    """Rolling the panorama by k quarter turns (to larger phi) rotates the ceiling by rot90(k)."""
    h = 32
    pano = torch.rand(2, 3, h, 2 * h, generator=torch.Generator().manual_seed(0), dtype=dtype)
    ceil = pano_to_ceiling(pano)
    for k in range(1, 4):
        rolled = pano_to_ceiling(torch.roll(pano, k * h // 2, dims=-1))
        torch.testing.assert_close(rolled, torch.rot90(ceil, k, dims=(-2, -1)), **TOL[dtype])
    # C2P commutes with the same rotation on the covered pixels
    back = ceiling_to_pano(torch.rot90(ceil, 1, dims=(-2, -1)))
    torch.testing.assert_close(back, torch.roll(ceiling_to_pano(ceil), h // 2, dims=-1), **TOL[dtype])


def test_constant_images_and_cache():
    h = 16
    pano = torch.full((1, 2, h, 2 * h), 3.0)
    torch.testing.assert_close(pano_to_ceiling(pano), torch.full((1, 2, h, h), 3.0))
    torch.testing.assert_close(ceiling_to_pano(torch.full((1, 2, h, h), 3.0)),
                               3.0 * ceiling_coverage_mask(h).expand(1, 2, -1, -1))
    assert ceiling_coverage_mask(h) is ceiling_coverage_mask(h)  # cached per (size, device, dtype)
    with torch.inference_mode():
        out = pano_to_ceiling(torch.rand(1, 1, 12, 24))
    assert out.shape == (1, 1, 12, 12)
    pano = torch.rand(1, 1, 12, 24, requires_grad=True)  # grids built under inference mode still work with autograd
    pano_to_ceiling(pano).sum().backward()
    assert pano.grad is not None
    with pytest.raises(ValueError):
        pano_to_ceiling(torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError):
        ceiling_to_pano(torch.rand(1, 1, 8, 16))


def test_gradcheck():
    g = torch.Generator().manual_seed(0)
    pano = torch.rand(1, 2, 4, 8, dtype=torch.float64, generator=g, requires_grad=True)
    ceil = torch.rand(1, 2, 4, 4, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(pano_to_ceiling, (pano,))
    assert torch.autograd.gradcheck(ceiling_to_pano, (ceil,))
    assert torch.autograd.gradcheck(lambda p: perspective_crop(p, 30.0, 10.0, 70.0, (3, 5)), (pano,))


def test_perspective_crop_centre_pixel():
    """Yaw 0 / pitch 0 looks at the horizon (theta = 90 deg) in the centre column (phi = 180 deg)."""
    h = 16
    pano = torch.rand(2, 3, h, 2 * h, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    view = perspective_crop(pano, 0.0, 0.0, 1.0, 5)
    assert view.shape == (2, 3, 5, 5)
    # theta = 90 deg and phi = 180 deg fall between rows h/2-1, h/2 and columns h-1, h: bilinear = the 2 x 2 mean
    torch.testing.assert_close(view[..., 2, 2], pano[..., h // 2 - 1:h // 2 + 1, h - 1:h + 1].mean((-2, -1)))
    # yaw 90 -> phi = 270 deg (column 1.5 h - 0.5)
    view = perspective_crop(pano, 90.0, 0.0, 1.0, 5)
    c = 3 * h // 2
    torch.testing.assert_close(view[..., 2, 2], pano[..., h // 2 - 1:h // 2 + 1, c - 1:c + 1].mean((-2, -1)))
    # yaw 180 looks across the seam (phi = 0): the wrap mixes the last and first columns
    view = perspective_crop(pano, 180.0, 0.0, 1.0, 5)
    seam = torch.cat([pano[..., -1:], pano[..., :1]], -1)[..., h // 2 - 1:h // 2 + 1, :].mean((-2, -1))
    torch.testing.assert_close(view[..., 2, 2], seam)


def test_perspective_crop_orientation_and_batch():
    h = 32
    theta, phi = pano_angles(h)
    cap = (theta < math.radians(45)).float()[None, None]
    up, down = perspective_crop(cap, 17.0, 90.0, 60.0, 9), perspective_crop(cap, 17.0, -90.0, 60.0, 9)
    torch.testing.assert_close(up, torch.ones_like(up))  # pitch +90: the zenith region
    torch.testing.assert_close(down, torch.zeros_like(down))  # pitch -90: the nadir
    # a narrow view at pitch 0 is an unmirrored piece of the panorama: phi grows to the right, theta downwards
    enc = torch.stack([theta, phi])[None]
    view = perspective_crop(enc, 0.0, 0.0, 20.0, (5, 7))
    assert torch.all(view[0, 0, 1:] > view[0, 0, :-1]) and torch.all(view[0, 1, :, 1:] > view[0, 1, :, :-1])
    # a batch of yaws equals the individual calls; rolling the panorama equals turning the camera
    pano = torch.rand(3, 3, h, 2 * h, generator=torch.Generator().manual_seed(2))
    yaws, pitches = torch.tensor([0.0, 75.0, -200.0]), torch.tensor([10.0, -30.0, 45.0])
    batch = perspective_crop(pano, yaws, pitches, 75.0, (6, 8))
    for i in range(3):
        one = perspective_crop(pano[i:i + 1], float(yaws[i]), float(pitches[i]), 75.0, (6, 8))
        torch.testing.assert_close(batch[i:i + 1], one)
    k = 5
    torch.testing.assert_close(perspective_crop(torch.roll(pano, k, dims=-1), 40.0 + k * 180.0 / h, 20.0, 75.0, 8),
                               perspective_crop(pano, 40.0, 20.0, 75.0, 8), atol=1e-5, rtol=1e-5)


def test_views():
    views = standard_views()
    assert len(views) == 18 and len(set(views)) == 18
    assert {y for y, _ in views} == {0.0, 60.0, 120.0, 180.0, 240.0, 300.0}
    assert {p for _, p in views} == {-30.0, 0.0, 30.0}
    a, b = random_view(np.random.default_rng(3)), random_view(np.random.default_rng(3))
    assert a == b and 0 <= a[0] < 360 and -45 <= a[1] <= 45


def test_onnx_export_matches_torch():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")

    class Net(torch.nn.Module):
        def forward(self, pano):
            return ceiling_to_pano(pano_to_ceiling(pano) * 2.0) + pano

    pano = torch.rand(1, 3, 16, 32)
    buf = io.BytesIO()
    with warnings.catch_warnings():  # TracerWarning: the height is baked into the constant grids (intended)
        warnings.simplefilter("ignore")
        torch.onnx.export(Net(), (pano,), buf, dynamo=False, opset_version=17)
    sess = ort.InferenceSession(buf.getvalue())
    out = sess.run(None, {sess.get_inputs()[0].name: pano.numpy()})[0]
    np.testing.assert_allclose(out, Net()(pano).numpy(), atol=1e-5)


def test_p2c_and_c2p_sample_bf16_images_on_float32_grids():
    """bf16 features (autocast, the GPU recipe) are sampled on the float32 grids and rounded once: a bf16 grid would
    put lookups a pixel off (2^-8 of [-1, 1] at 256 columns)."""
    torch.manual_seed(0)
    pano = torch.rand(2, 3, 64, 128).bfloat16()
    ceil = pano_to_ceiling(pano)
    assert ceil.dtype == torch.bfloat16
    torch.testing.assert_close(ceil, pano_to_ceiling(pano.float()).bfloat16(), rtol=0, atol=0)
    back = ceiling_to_pano(ceil)
    assert back.dtype == torch.bfloat16
    torch.testing.assert_close(back, ceiling_to_pano(ceil.float()).bfloat16(), rtol=0, atol=0)
