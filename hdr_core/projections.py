"""Differentiable panorama projections: P2C / C2P ceiling warps (method.md §3) and perspective crops.

Conventions (method.md §3, reference-code.md §2.3). All images are ``B x C x H x W`` torch tensors.

* **Panorama** ``h x 2h`` equirectangular. Pixel ``(row, col)`` has its centre at zenith angle
  ``theta = (row + 0.5) * pi / h`` (0 = zenith = top row, pi/2 = horizon) and azimuth
  ``phi = (col + 0.5) * pi / h`` in ``[0, 2 pi)``. Columns wrap around; rows clamp (border).
* **Ceiling** ``h x h``: a virtual pinhole camera looking straight up, field of view 120 deg edge to edge,
  ``d = tan(60 deg) = sqrt(3)``, placed ``c = 1 / (sqrt(2) d) = 1 / sqrt(6)`` sphere radii *below* the centre so the
  square's corners land on the horizon. Image-plane coordinates ``x, y`` lie in ``(-1, 1)`` with pixel centres at
  ``+-(1 - 1/h)``; rows map to ``x`` and columns to ``y``, both descending (reference code):
  ``row = (1 - x) h / 2 - 0.5``, ``col = (1 - y) h / 2 - 0.5``. With this convention the ceiling image is an
  unmirrored upward view of a panorama that is itself unmirrored when seen from inside the sphere.
* **P2C** (ceiling ``rho = sqrt(x^2 + y^2)`` -> sphere): ``alpha = arctan(rho d)``,
  ``theta = alpha + arcsin(sin(alpha) / (sqrt(2) d))``, ``phi = atan2(y, x) mod 2 pi``.
* **C2P** (sphere -> ceiling, ``theta < pi/2``): ``rho = sqrt(2) sin(theta) / (1 + sqrt(2) d cos(theta))``,
  ``x = rho cos(phi)``, ``y = rho sin(phi)``.
* **Coverage** of the ceiling on the panorama: ``(theta < pi/2) & |x| < 1 & |y| < 1``; it contains every direction
  with ``theta < 80.7 deg`` and about 46.6 % of the panorama's pixels.

Sampling is bilinear with ``F.grid_sample(align_corners=False)`` on constant grids that are built in float64 once
per ``(size, device, dtype)`` and cached, so a module calling these functions exports to ONNX (GridSample, opset
>= 16) with the grids folded in as constants.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CEILING_FOV_DEG", "CEILING_D", "CEILING_CAMERA_OFFSET", "STANDARD_YAWS", "STANDARD_PITCHES",
    "pano_angles", "ceiling_to_sphere", "sphere_to_ceiling", "ceiling_coverage_mask",
    "pano_to_ceiling", "ceiling_to_pano", "perspective_crop", "standard_views", "random_view",
]

#: Ceiling camera field of view, edge to edge (method.md §3).
CEILING_FOV_DEG = 120.0
#: ``d = tan(fov / 2) = sqrt(3)``.
CEILING_D = math.tan(math.radians(CEILING_FOV_DEG / 2))
#: The ceiling camera sits ``1 / (sqrt(2) d) = 1 / sqrt(6)`` sphere radii below the centre.
CEILING_CAMERA_OFFSET = 1.0 / (math.sqrt(2.0) * CEILING_D)
#: Azimuths (yaw, degrees) and elevations (pitch, degrees) of :func:`standard_views` (paper §5.2: 6 x 3 views).
STANDARD_YAWS = (0.0, 60.0, 120.0, 180.0, 240.0, 300.0)
STANDARD_PITCHES = (-30.0, 0.0, 30.0)

_GRID_DTYPE = torch.float64  # grids are computed in float64, then cast


# ----------------------------------------------------------------------------------------------------------------
# Closed-form mappings (element-wise, differentiable)
# ----------------------------------------------------------------------------------------------------------------

def pano_angles(height: int, device: torch.device | str | None = None,
                dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Zenith and azimuth of the panorama's pixel centres.

    Args:
        height: Panorama height ``h`` (width ``2h``).
        device: Device of the result.
        dtype: Floating dtype of the result.

    Returns:
        ``(theta, phi)``, each ``h x 2h``: ``theta = (row + 0.5) pi / h``, ``phi = (col + 0.5) pi / h``.
    """
    step = math.pi / height
    theta = (torch.arange(height, dtype=_GRID_DTYPE) + 0.5) * step
    phi = (torch.arange(2 * height, dtype=_GRID_DTYPE) + 0.5) * step
    theta, phi = torch.meshgrid(theta, phi, indexing="ij")
    return theta.to(device=device, dtype=dtype), phi.to(device=device, dtype=dtype)


def ceiling_to_sphere(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """P2C geometry (method.md §3): ceiling image-plane point -> direction on the sphere.

    ``alpha = arctan(rho d)``, ``theta = alpha + arcsin(sin(alpha) / (sqrt(2) d))``, ``phi = atan2(y, x) mod 2 pi``.

    Args:
        x: Ceiling coordinate along the rows, in ``[-1, 1]`` (``x = 1 - (2 row + 1) / h`` at pixel centres).
        y: Ceiling coordinate along the columns, in ``[-1, 1]``.

    Returns:
        ``(theta, phi)`` in radians.
    """
    rho = torch.sqrt(x * x + y * y)
    alpha = torch.atan(rho * CEILING_D)
    theta = alpha + torch.asin(torch.sin(alpha) * CEILING_CAMERA_OFFSET)
    phi = torch.remainder(torch.atan2(y, x), 2 * math.pi)
    return theta, phi


def sphere_to_ceiling(theta: Tensor, phi: Tensor) -> tuple[Tensor, Tensor]:
    """C2P geometry (method.md §3): direction on the sphere -> ceiling image-plane point.

    ``rho = sqrt(2) sin(theta) / (1 + sqrt(2) d cos(theta))``, ``x = rho cos(phi)``, ``y = rho sin(phi)``.
    Only meaningful for ``theta < pi / 2`` (the ray must hit the plane in front of the camera).

    Args:
        theta: Zenith angle in radians.
        phi: Azimuth in radians.

    Returns:
        ``(x, y)``; the point is on the ceiling image iff ``|x| < 1`` and ``|y| < 1``.
    """
    rho = math.sqrt(2.0) * torch.sin(theta) / (1.0 + math.sqrt(2.0) * CEILING_D * torch.cos(theta))
    return rho * torch.cos(phi), rho * torch.sin(phi)


def _pano_grid(theta: Tensor, phi: Tensor, height: int) -> Tensor:
    """Sphere directions -> ``grid_sample`` coordinates on the panorama padded by one wrapped column per side."""
    col = torch.remainder(phi, 2 * math.pi) * (height / math.pi) - 0.5  # in [-0.5, 2h - 0.5)
    u = (2.0 * (col + 1.0) + 1.0) / (2 * height + 2) - 1.0
    v = theta * (2.0 / math.pi) - 1.0  # (2 row + 1) / h - 1, with row = theta h / pi - 0.5
    return torch.stack([u, v], dim=-1)


def _sample_pano(pano: Tensor, grid: Tensor) -> Tensor:
    """Bilinear lookup, azimuth wraps, rows clamp; ``grid`` (``1|B x H x W x 2``) comes from :func:`_pano_grid`."""
    padded = torch.cat([pano[..., -1:], pano, pano[..., :1]], dim=-1)
    grid = grid.expand(pano.shape[0], -1, -1, -1)
    return F.grid_sample(padded, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ----------------------------------------------------------------------------------------------------------------
# Cached grids
# ----------------------------------------------------------------------------------------------------------------

def _ceiling_xy(height: int) -> tuple[Tensor, Tensor]:
    """Ceiling pixel centres: ``x`` descends down the rows, ``y`` across the columns (float64, ``h x h``)."""
    t = 1.0 - (2.0 * torch.arange(height, dtype=_GRID_DTYPE) + 1.0) / height
    return torch.meshgrid(t, t, indexing="ij")


def _c2p_geometry(height: int) -> tuple[Tensor, Tensor]:
    """C2P grid (``1 x h x 2h x 2``, ceiling ``grid_sample`` coordinates) and coverage mask (``h x 2h``), float64."""
    theta, phi = pano_angles(height, dtype=_GRID_DTYPE)
    x, y = sphere_to_ceiling(theta, phi)
    mask = (theta < math.pi / 2) & (x.abs() < 1) & (y.abs() < 1)
    # grid_sample (u, v) = (column, row) coordinates; col = (1 - y) h / 2 - 0.5  ->  u = -y, and v = -x.
    grid = torch.stack([-y, -x], dim=-1).where(mask[..., None], torch.zeros((), dtype=_GRID_DTYPE))
    return grid[None], mask


@lru_cache(maxsize=32)
def _grids(kind: str, height: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """Build (once per key) the constant sampling grids. Always plain tensors, even under inference mode."""
    with torch.inference_mode(False), torch.no_grad():
        if kind == "p2c":
            x, y = _ceiling_xy(height)
            out = (_pano_grid(*ceiling_to_sphere(x, y), height)[None],)
        elif kind == "c2p":
            grid, mask = _c2p_geometry(height)
            out = (grid, mask[None, None])
        else:  # pragma: no cover
            raise ValueError(kind)
        return tuple(t.to(device=device, dtype=dtype) for t in out)


def _sampling_dtype(dtype: torch.dtype) -> torch.dtype:
    """P2C / C2P sample in float32 at least: a bfloat16 grid (autocast's activations, bf16 training) holds a
    coordinate in [-1, 1] to 2^-8, over a pixel off at 256 columns; the image is cast up for the lookup and back."""
    return dtype if dtype == torch.float64 else torch.float32


def _in_dtype(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x.to(dtype)`` without the no-op: a traced ``.to`` to the same dtype stays in the graph (a Cast in ONNX)."""
    return x if x.dtype == dtype else x.to(dtype)


def _check_pano(pano: Tensor) -> int:
    if not torch.jit.is_tracing() and (pano.dim() != 4 or pano.shape[-1] != 2 * pano.shape[-2]):
        raise ValueError(f"expected a B x C x h x 2h panorama, got shape {tuple(pano.shape)}")
    return int(pano.shape[-2])


# ----------------------------------------------------------------------------------------------------------------
# P2C / C2P
# ----------------------------------------------------------------------------------------------------------------

def ceiling_coverage_mask(height: int, device: torch.device | str | None = None,
                          dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixels of an ``h x 2h`` panorama that the ceiling view covers (method.md §3, reference ``c2p_mask``).

    Args:
        height: Panorama height ``h``.
        device: Device of the result.
        dtype: Dtype of the result.

    Returns:
        ``1 x 1 x h x 2h`` tensor, 1 where ``theta < pi/2 & |x| < 1 & |y| < 1``, else 0.
    """
    device = torch.empty(0, device=device).device  # normalise ("cuda" -> "cuda:0") for the cache key
    return _grids("c2p", int(height), device, dtype)[1]


def pano_to_ceiling(pano: Tensor) -> Tensor:
    """P2C (method.md §3): resample the upper hemisphere of a panorama to the ``h x h`` ceiling view.

    Each ceiling pixel ``(x, y)`` looks up the panorama at ``theta = alpha + arcsin(sin(alpha) / (sqrt(2) d))``,
    ``alpha = arctan(rho d)``, ``phi = atan2(y, x) mod 2 pi`` (bilinear, azimuth wraps, rows clamp).

    Args:
        pano: ``B x C x h x 2h`` panorama.

    Returns:
        ``B x C x h x h`` ceiling image. Differentiable with respect to ``pano``.
    """
    height = _check_pano(pano)
    (grid,) = _grids("p2c", height, pano.device, _sampling_dtype(pano.dtype))
    return _in_dtype(_sample_pano(_in_dtype(pano, grid.dtype), grid), pano.dtype)


def ceiling_to_pano(ceil: Tensor) -> Tensor:
    """C2P (method.md §3): warp an ``h x h`` ceiling image back onto the ``h x 2h`` panorama.

    Each panorama pixel with ``theta < pi/2`` looks up the ceiling at ``x = rho cos(phi)``, ``y = rho sin(phi)``,
    ``rho = sqrt(2) sin(theta) / (1 + sqrt(2) d cos(theta))`` (bilinear, border clamp); pixels outside
    :func:`ceiling_coverage_mask` are 0.

    Args:
        ceil: ``B x C x h x h`` ceiling image.

    Returns:
        ``B x C x h x 2h`` panorama. Differentiable with respect to ``ceil``.
    """
    if not torch.jit.is_tracing() and (ceil.dim() != 4 or ceil.shape[-1] != ceil.shape[-2]):
        raise ValueError(f"expected a B x C x h x h ceiling image, got shape {tuple(ceil.shape)}")
    grid, mask = _grids("c2p", int(ceil.shape[-2]), ceil.device, _sampling_dtype(ceil.dtype))
    out = F.grid_sample(_in_dtype(ceil, grid.dtype), grid.expand(ceil.shape[0], -1, -1, -1), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return _in_dtype(out * mask, ceil.dtype)


# ----------------------------------------------------------------------------------------------------------------
# Perspective crops (single-image training pairs, paper §5.2)
# ----------------------------------------------------------------------------------------------------------------

def _as_batch(v: float | Tensor, device: torch.device) -> Tensor:
    return torch.as_tensor(v, device=device).to(_GRID_DTYPE).reshape(-1)


def perspective_crop(pano: Tensor, yaw: float | Tensor, pitch: float | Tensor, fov_deg: float,
                     size: int | tuple[int, int]) -> Tensor:
    """Pinhole view from the centre of the panorama sphere (bilinear, azimuth wraps).

    Angles are in **degrees**. ``yaw = 0`` looks at the centre column of the panorama (``phi = 180 deg``); positive
    yaw turns towards larger columns: the view's centre is at ``phi = 180 deg + yaw``. ``pitch`` is the elevation
    of the optical axis (``+90`` = zenith, ``-90`` = nadir). The camera has no roll; its rows run top to bottom and
    its columns towards increasing ``phi``, so a narrow crop at pitch 0 is an unmirrored piece of the panorama.
    Pixels are square: the vertical field of view follows from the aspect ratio.

    Args:
        pano: ``B x C x h x 2h`` panorama.
        yaw: Azimuth of the view in degrees, a float or a length-``B`` tensor.
        pitch: Elevation of the view in degrees, a float or a length-``B`` tensor.
        fov_deg: Horizontal field of view in degrees, edge to edge (``< 180``).
        size: Output size, ``S`` or ``(H, W)``.

    Returns:
        ``B x C x H x W`` view. Differentiable with respect to ``pano`` (and to tensor ``yaw``/``pitch``).
    """
    height = _check_pano(pano)
    out_h, out_w = (size, size) if isinstance(size, int) else size
    yaw_r = torch.deg2rad(_as_batch(yaw, pano.device))[:, None, None]
    pitch_r = torch.deg2rad(_as_batch(pitch, pano.device))[:, None, None]
    phi0 = yaw_r + math.pi
    tan_h = math.tan(math.radians(fov_deg) / 2)
    kw = {"dtype": _GRID_DTYPE, "device": pano.device}
    u = ((2.0 * torch.arange(out_w, **kw) + 1.0) / out_w - 1.0) * tan_h  # right
    v = (1.0 - (2.0 * torch.arange(out_h, **kw) + 1.0) / out_h) * tan_h * out_h / out_w  # up
    v, u = torch.meshgrid(v, u, indexing="ij")
    # ray = forward + u * right + v * up, in the frame where (theta, phi) -> (sin t cos p, sin t sin p, cos t):
    # forward = (cp cy, cp sy, sp), right = d/dphi = (-sy, cy, 0), up = (-sp cy, -sp sy, cp).
    cp, sp, cy, sy = torch.cos(pitch_r), torch.sin(pitch_r), torch.cos(phi0), torch.sin(phi0)
    rx = cp * cy + u * -sy + v * (-sp * cy)
    ry = cp * sy + u * cy + v * (-sp * sy)
    rz = sp + v * cp
    theta = torch.atan2(torch.sqrt(rx * rx + ry * ry), rz)
    phi = torch.atan2(ry, rx)
    grid = _pano_grid(theta, phi, height).to(pano.dtype)
    return _sample_pano(pano, grid)


def standard_views() -> list[tuple[float, float]]:
    """The 18 fixed ``(yaw, pitch)`` views (degrees) for single-image pairs (paper §5.2: 6 azimuths x 3 elevations).

    Yaw 0, 60, ..., 300 and pitch -30, 0, +30 degrees (the paper does not give the elevations; these are ours).
    """
    return [(yaw, pitch) for pitch in STANDARD_PITCHES for yaw in STANDARD_YAWS]


def random_view(rng, pitch_range: tuple[float, float] = (-45.0, 45.0)) -> tuple[float, float]:
    """A random ``(yaw, pitch)`` in degrees: yaw uniform in ``[0, 360)``, pitch uniform in ``pitch_range``.

    Args:
        rng: ``numpy.random.Generator``.
        pitch_range: Elevation range in degrees.
    """
    return float(rng.uniform(0.0, 360.0)), float(rng.uniform(*pitch_range))
