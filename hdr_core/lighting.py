"""What a panorama lights a scene with: irradiance over a set of normals, and its brightest light.

No rendering: a few matrix products on the panorama shrunk to :data:`LIGHT_SIZE`, in torch (differentiable with
respect to the panorama, so a training loss can use the same terms) with numpy wrappers for evaluation.

Conventions (as :mod:`hdr_core.projections`): an ``h x 2h`` equirectangular panorama, pixel ``(row, col)`` at zenith
angle ``theta = (row + 0.5) pi / h`` and azimuth ``phi = (col + 0.5) pi / h``; direction
``(sin theta cos phi, sin theta sin phi, cos theta)`` with +Z up. Pixel solid angle ``(pi / h)^2 sin theta``
(the whole sphere sums to 4 pi up to the midpoint rule). Light is measured as luminance (Rec. 709 weights).

* **Irradiance** ``E(n) = sum_w L(w) max(0, n . w) dw`` for each of the 26 :data:`NORMALS` (the faces, edges and
  corners of a cube: up, down, the horizon in 8 directions and 16 in between), i.e. what a white Lambertian
  surface facing ``n`` receives.
* **Brightest light**: the peak of the luminance (smoothed by a 3x3 box at the working size, so a single hot pixel
  does not win), and the light inside a cap of :data:`PEAK_CAP_DEG` around it: its energy ``sum L dw`` and its
  direction (the energy-weighted mean direction in the cap). For a sunny sky this is the sun and its aureole; for a
  room, the brightest lamp or window.

:func:`light_accuracy` compares a (calibrated) prediction with the (calibrated) ground truth in those terms, in
stops (log2): ``irr_err`` mean ``|log2 E_pred(n) / E_gt(n)|`` over the normals (1.0 = on average a factor 2 off),
``irr_bias`` the signed mean (+1.2 = the light is 2^1.2 = 2.3x too bright), ``light_angle`` degrees between the two
brightest lights' directions, ``peak_err`` / ``peak_bias`` ``|log2|`` / ``log2`` of the energy ratio of the
brightest lights, and ``key_angle``: ``light_angle`` only where the ground truth has a key light, one light at least
:data:`KEY_MARGIN_STOPS` (a factor 2) brighter than any other (:func:`light_margin`). In a studio with two equal
softboxes or a square of equal street lamps "the brightest light" is a coin toss: a prediction that calls the other
softbox brightest is 160 degrees off by ``light_angle`` and has done nothing wrong a render would show.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["GLOSSY_EXPONENTS", "KEY_MARGIN_STOPS", "LIGHT_METRICS", "LIGHT_SIZE", "NORMALS", "PEAK_CAP_DEG",
           "RIVAL_APART_DEG", "brightest_light", "cap_light", "glossy", "irradiance", "light_accuracy", "light_errors",
           "light_margin", "light_share", "light_stats", "pano_directions", "peak_cap"]

#: Working size (width, height) the panorama is area-averaged to before any light is measured.
LIGHT_SIZE = (128, 64)
#: Half-angle (degrees) of the cap around the luminance peak whose light is "the brightest light".
PEAK_CAP_DEG = 10.0
#: Rec. 709 luminance weights.
_LUMA = (0.2126, 0.7152, 0.0722)
#: Phong exponents of the glossy lobes (:func:`glossy`): about the blur of the evaluation scene's glossy balls
#: (GGX roughness 0.15-0.2) and a broader one, resolvable at :data:`GLOSSY_HEIGHT`.
GLOSSY_EXPONENTS = (64.0, 16.0)
#: Height of the panorama the glossy lobes are computed on (``h x 2h``; a lobe of exponent 64 is ~17 deg wide).
GLOSSY_HEIGHT = 32
#: Keys of :func:`light_errors` and :func:`light_accuracy` (``key_angle``: NaN / None where the ground truth has no
#: key light).
LIGHT_METRICS = ("irr_err", "irr_bias", "light_angle", "peak_err", "peak_bias", "key_angle")
#: A panorama has a key light (one brightest light) only if that light outshines every other by at least this many
#: stops (:func:`light_margin`); only then is ``key_angle`` defined.
KEY_MARGIN_STOPS = 1.0
#: How far apart (degrees) :func:`light_margin` looks for rivals: twice the cap, so no two caps overlap.
RIVAL_APART_DEG = 2 * PEAK_CAP_DEG
#: How many rival lights :func:`light_margin` weighs against the brightest.
RIVALS = 4
_EPS = 1e-12


def _cube_normals() -> np.ndarray:
    """The 26 unit directions to the faces, edges and corners of a cube (z up)."""
    dirs = [v for v in itertools.product((-1, 0, 1), repeat=3) if any(v)]
    a = np.array(dirs, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


#: Surface normals the irradiance is measured for (26 x 3, unit, z up).
NORMALS = _cube_normals()


def pano_directions(height: int, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Unit directions (``h x 2h x 3``) and solid angles (``h x 2h``) of an ``h x 2h`` panorama's pixels."""
    w = 2 * height
    theta = (torch.arange(height, dtype=torch.float64) + 0.5) * math.pi / height
    phi = (torch.arange(w, dtype=torch.float64) + 0.5) * math.pi / height
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    d = torch.stack([st * torch.cos(phi)[None], st * torch.sin(phi)[None], ct.expand(height, w)], dim=-1)
    omega = (math.pi / height) ** 2 * st.expand(height, w)
    return d.to(device=device, dtype=dtype), omega.to(device=device, dtype=dtype)


def _luminance_small(pano: Tensor) -> Tensor:
    """``B x 3 x H x W`` (or ``3 x H x W``) linear equirectangular RGB (any size: an equirectangular image covers
    the whole sphere), or ``B x 1 x H x W`` luminance, -> ``B x h x 2h`` luminance at :data:`LIGHT_SIZE`."""
    if pano.ndim == 3:
        pano = pano[None]
    if pano.ndim != 4 or pano.shape[1] not in (1, 3):
        raise ValueError(f"expected a B x 3 x H x W panorama, got shape {tuple(pano.shape)}")
    w, h = LIGHT_SIZE
    if pano.shape[1] == 1:  # already luminance
        lum = pano.clamp_min(0)
    else:
        weights = torch.tensor(_LUMA, dtype=pano.dtype, device=pano.device).view(1, 3, 1, 1)
        lum = (pano.clamp_min(0) * weights).sum(1, keepdim=True)
    if lum.shape[-2:] != (h, w):
        lum = F.interpolate(lum, size=(h, w), mode="area")  # area average: keeps the energy of a small sun
    return lum[:, 0]


def irradiance(pano: Tensor, normals: np.ndarray | Tensor = NORMALS) -> Tensor:
    """Luminance irradiance ``B x N`` a panorama casts on surfaces facing each of ``normals`` (``N x 3``)."""
    lum = _luminance_small(pano)
    if normals is NORMALS:  # the loss's and the figures' normals: their lobes made once per size, device and dtype
        lobe = _cube_lobes(lum.shape[-2], lum.device, lum.dtype)
    else:
        lobe = _cosine_lobes(lum.shape[-2], torch.as_tensor(normals, dtype=lum.dtype, device=lum.device))
    return lum.reshape(lum.shape[0], -1) @ lobe


def _cosine_lobes(height: int, n: Tensor) -> Tensor:
    """``(h*2h) x N`` cosine lobes ``max(0, n . w) dw`` of the normals ``n`` (``N x 3``), in ``n``'s dtype/device."""
    d, omega = pano_directions(height, n.dtype, n.device)
    return (d.reshape(-1, 3) @ n.T).clamp_min(0) * omega.reshape(-1, 1)


@functools.lru_cache(maxsize=8)
def _cube_lobes(height: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    with torch.inference_mode(False), torch.no_grad():  # a plain tensor, even when first made under inference mode
        return _cosine_lobes(height, torch.as_tensor(NORMALS, dtype=dtype, device=device))


@functools.lru_cache(maxsize=8)
def _glossy_kernel(height: int, exponent: float) -> Tensor:
    """``(h*2h) x (h*2h)`` normalised Phong lobes ``max(0, r . w)^exponent dw`` (rows: reflection directions)."""
    d, omega = pano_directions(height)
    d, omega = d.reshape(-1, 3), omega.reshape(-1)
    k = (d @ d.T).clamp_min(0).pow(exponent) * omega[None]
    return k / k.sum(1, keepdim=True)


@functools.lru_cache(maxsize=8)
def _glossy_kernel_on(height: int, exponent: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """:func:`_glossy_kernel` in ``dtype`` on ``device``, made once (16 MiB in float32: a copy per call cost a
    conversion on the CPU and a host-to-device copy on a GPU at every training step of the lighting loss)."""
    with torch.inference_mode(False), torch.no_grad():
        return _glossy_kernel(height, exponent).to(device=device, dtype=dtype)


def glossy(pano: Tensor, exponent: float = GLOSSY_EXPONENTS[0], height: int = GLOSSY_HEIGHT) -> Tensor:
    """The panorama prefiltered by a Phong lobe of ``exponent`` (what a glossy surface reflects in each direction):
    ``B x h x 2h`` luminance at ``h = height``, each value the lobe-weighted mean radiance around that direction."""
    lum = _luminance_small(pano)
    if lum.shape[-2] != height:
        lum = F.interpolate(lum[:, None], size=(height, 2 * height), mode="area")[:, 0]
    k = _glossy_kernel_on(height, float(exponent), lum.device, lum.dtype)
    return (lum.reshape(lum.shape[0], -1) @ k.T).reshape(lum.shape)


def _smoothed_peaks(lum: Tensor, d: Tensor, count: int, apart_deg: float) -> Tensor:
    """``B x count x 3`` directions of the highest values of the luminance ``lum`` (``B x h x 2h``) smoothed by a 3x3
    box (columns wrap, rows clamp; a single hot pixel does not win), each at least ``apart_deg`` from those before
    (the first is the peak itself)."""
    padded = F.pad(F.pad(lum[:, None], (1, 1, 0, 0), mode="circular"), (0, 0, 1, 1), mode="replicate")
    smooth = F.avg_pool2d(padded, 3, stride=1)[:, 0].reshape(lum.shape[0], -1)
    dirs, peaks = d.reshape(-1, 3), []
    for i in range(count):
        peaks.append(dirs[smooth.argmax(1)])  # B x 3
        if i == count - 1:
            break
        near = (dirs[None] * peaks[-1][:, None]).sum(-1) >= math.cos(math.radians(apart_deg))
        smooth = smooth.masked_fill(near, -math.inf)
    return torch.stack(peaks, 1)


def _caps(d: Tensor, centres: Tensor, cap_deg: float) -> Tensor:
    """``B x (h*2h)`` 0/1 weights of the pixels (directions ``d``, ``h x 2h x 3``) within ``cap_deg`` of each of the
    ``B x 3`` ``centres``."""
    return ((d.reshape(1, -1, 3) * centres[:, None]).sum(-1) >= math.cos(math.radians(cap_deg))).to(d.dtype)


def peak_cap(pano: Tensor, cap_deg: float = PEAK_CAP_DEG) -> Tensor:
    """``B x (h*2h)`` 0/1 weights of the pixels within ``cap_deg`` of each panorama's luminance peak (at
    :data:`LIGHT_SIZE`; the peak of the luminance smoothed by a 3x3 box, so a single hot pixel does not win); not
    differentiable (a location)."""
    with torch.no_grad():
        lum = _luminance_small(pano)
        d, _ = pano_directions(lum.shape[-2], lum.dtype, lum.device)
        return _caps(d, _smoothed_peaks(lum, d, 1, 0.0)[:, 0], cap_deg)


def light_margin(pano: Tensor, rivals: int = RIVALS) -> Tensor:
    """Stops (``B``) by which each panorama's brightest light (:func:`brightest_light`) outshines its strongest rival:
    ``log2`` of its energy over the largest energy in a :data:`PEAK_CAP_DEG` cap around each of the next ``rivals``
    peaks of the smoothed luminance, each at least :data:`RIVAL_APART_DEG` from the brightest light and from each
    other (so no two caps overlap, and a sun's aureole is not its own rival). Negative when a rival's cap holds more
    light than the peak's (a large window beside a small hot lamp). Below :data:`KEY_MARGIN_STOPS` a panorama has no
    single brightest light: two softboxes, a row of street lamps."""
    with torch.no_grad():
        lum = _luminance_small(pano)
        d, omega = pano_directions(lum.shape[-2], lum.dtype, lum.device)
        peaks = _smoothed_peaks(lum, d, 1 + rivals, RIVAL_APART_DEG)  # B x (1 + rivals) x 3
        e = lum.reshape(lum.shape[0], -1) * omega.reshape(1, -1)
        energy = torch.stack([(e * _caps(d, peaks[:, i], PEAK_CAP_DEG)).sum(1) for i in range(1 + rivals)], 1)
        return torch.log2((energy[:, 0] + _EPS) / (energy[:, 1:].amax(1) + _EPS))


def light_share(pano: Tensor) -> Tensor:
    """Share (``B``, in ``[0, 1]``) of each panorama's light ``sum L dw`` that its brightest light holds (the
    :data:`PEAK_CAP_DEG` cap of :func:`brightest_light`): ~0.6-0.75 for a clear sky with the sun in view, ~0.03-0.1
    for an overcast sky or an evenly lit room, and the cap's own share of the sphere (0.0076) for uniform light."""
    with torch.no_grad():
        lum = _luminance_small(pano)
        _, omega = pano_directions(lum.shape[-2], lum.dtype, lum.device)
        total = (lum.reshape(lum.shape[0], -1) * omega.reshape(1, -1)).sum(1)
        return (brightest_light(lum[:, None])[0] / total.clamp_min(_EPS)).clamp(0.0, 1.0)


def cap_light(pano: Tensor, cap: Tensor) -> tuple[Tensor, Tensor]:
    """Energy ``sum L dw`` (``B``) and energy-weighted unit direction (``B x 3``) of the light inside ``cap``
    (weights from :func:`peak_cap`, possibly another panorama's); differentiable in ``pano``."""
    lum = _luminance_small(pano)
    d, omega = pano_directions(lum.shape[-2], lum.dtype, lum.device)
    e = lum.reshape(lum.shape[0], -1) * omega.reshape(1, -1) * cap  # B x (h*w)
    vec = (e[:, :, None] * d.reshape(1, -1, 3)).sum(1)  # not a GEMM: rows with equal data sum exactly alike
    return e.sum(1), vec / vec.norm(dim=1, keepdim=True).clamp_min(_EPS)


def brightest_light(pano: Tensor, cap_deg: float = PEAK_CAP_DEG) -> tuple[Tensor, Tensor]:
    """Energy (``B``) and unit direction (``B x 3``) of the light in a cap around each panorama's luminance peak."""
    return cap_light(pano, peak_cap(pano, cap_deg))


def light_stats(pano: Tensor) -> dict[str, Tensor]:
    """``irradiance`` (``B x 26``), ``peak_energy`` (``B``) and ``peak_dir`` (``B x 3``) of panoramas
    (``B x 3 x H x W`` RGB or ``B x 1 x H x W`` luminance)."""
    energy, direction = brightest_light(pano)
    return {"irradiance": irradiance(pano), "peak_energy": energy, "peak_dir": direction}


def _as_tensor(img) -> Tensor:
    """``H x W x 3`` numpy (or a ``B x 3 x H x W`` tensor) -> ``B x 3 x H x W`` float64 tensor."""
    if isinstance(img, Tensor):
        return img.double()
    a = np.asarray(img, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 panorama, got shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]


def light_errors(pred: Tensor, gt: Tensor) -> dict[str, Tensor]:
    """:func:`light_accuracy`'s figures for batches: ``B``-tensors, from ``B x 3 x H x W`` linear panoramas (both
    calibrated to the same LDR input; sizes may differ); ``key_angle`` is NaN where ``gt`` has no key light."""
    # Both in one batch: the same kernels sum both, so equal panoramas give exactly equal figures.
    lum = torch.cat([_luminance_small(pred), _luminance_small(gt.to(pred.dtype))])[:, None]
    stats, b = light_stats(lum), pred.shape[0]
    r = torch.log2((stats["irradiance"][:b] + _EPS) / (stats["irradiance"][b:] + _EPS))
    pr = torch.log2((stats["peak_energy"][:b] + _EPS) / (stats["peak_energy"][b:] + _EPS))
    u, v = stats["peak_dir"][:b], stats["peak_dir"][b:]
    angle = torch.rad2deg(2 * torch.atan2((u - v).norm(dim=1), (u + v).norm(dim=1)))  # stable, exactly 0 at u = v
    key = light_margin(lum[b:]) >= KEY_MARGIN_STOPS
    return {"irr_err": r.abs().mean(1), "irr_bias": r.mean(1), "light_angle": angle, "peak_err": pr.abs(),
            "peak_bias": pr, "key_angle": torch.where(key, angle, torch.full_like(angle, math.nan))}


def light_accuracy(pred, gt) -> dict[str, float | None]:
    """How far a predicted panorama's light is from the ground truth's (module docstring; stops and degrees).

    Args:
        pred, gt: ``H x W x 3`` linear equirectangular panoramas (any sizes), both calibrated to the same LDR input.

    Returns:
        ``irr_err``, ``irr_bias``, ``light_angle``, ``peak_err``, ``peak_bias``, and ``key_angle``: ``light_angle``
        if the ground truth has a key light (:func:`light_margin` at least :data:`KEY_MARGIN_STOPS`), else None.
    """
    out = {k: float(v[0]) for k, v in light_errors(_as_tensor(pred), _as_tensor(gt)).items()}
    return {k: None if math.isnan(v) else v for k, v in out.items()}
