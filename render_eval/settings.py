"""The one documented default configuration of the four-ball evaluation render (method.md §4).

The paper does not publish its camera, resolution, samples or tone mapping, so they are chosen here, written down,
and kept fixed. Ground truth and every prediction are rendered with the same :class:`RenderSettings` and the same
seed; the settings' :meth:`~RenderSettings.digest` is part of every cache key, so a changed setting never reuses
an old render.

Measurements (2026-12-02, ``benchmarks/noise_floor.py``; bpy 5.0.1, Cycles CPU, the project's 2-core x86_64 machine
*shared with two other engineers' test suites*, load average 2-7, so wall times are upper bounds and CPU seconds
(all threads of the process) the better guide). The noise floor is PSNR (dB) / SSIM between two renders that
differ only by the seed, of the public test panoramas calibrated to their virtual-camera LDRs exactly as
``python -m render_eval --from-hdr`` prepares its ground truth; MSE is the paper's (clipped, 1e-3).

Screening on the three noisiest panoramas (courtyard, interior, sunrise; 320x180 unless noted):

===============================================================  ==========  =========  ===========  ======
variant                                                          min PSNR    min SSIM   max MSE      CPU s
===============================================================  ==========  =========  ===========  ======
128 spp, no denoiser, caustics on (the default until 2026-12-02)  24.7        0.587      9.83         15.9
128 spp, caustics off                                            25.5        0.622      8.08         15.4
128 spp, path guiding (surface, deterministic)                   24.6        0.583      9.99         24.5
32 spp + OpenImageDenoise (albedo + normal, accurate prefilter)  34.6        0.977      1.05         6.2
64 spp + OIDN                                                    36.1        0.981      0.70         9.6
64 spp + OIDN + path guiding                                     35.2        0.982      0.96         13.1
64 spp + OIDN, caustics off                                      38.2        0.987      0.34         8.4
128 spp + OIDN, caustics off                                     39.2        0.990      0.27         14.1
128 spp + OIDN, caustics off, 256x144                            38.3        0.986      0.34         8.9
256 spp + OIDN, caustics off                                     40.5        0.991      0.21         26.4
512 spp adaptive (threshold 0.01, min 64) + OIDN, caustics off   41.8        0.993      0.14         48.6
===============================================================  ==========  =========  ===========  ======

256 spp + OIDN, caustics off on all 8 test panoramas: 39.2-48.4 dB (studio 39.2, night 39.6 below 40), SSIM
>= 0.991, 26 CPU s per render. On the two that missed (night / studio, dB): 384 spp 39.3 / 41.2; 256 spp with a
2048 px world importance map 40.1 / 39.1; 256 spp with the AUTOMATIC map 40.2 / 39.1; 384 spp adaptive (0.005, min
128) 39.4 / 41.2: the night scene's small lamps need the finer importance map, the studio's softboxes more samples.
**384 spp + OIDN, caustics off, 2048 map (the default)**: forest 42.9, interior 41.9, night 40.1, studio 41.0 dB
(SSIM >= 0.994), 41-50 CPU s per render at load 3-7; the per-panorama noise floor of all 8 is the ``noise floor``
row of ``docs/results.md`` and is listed in ``scenes/README.md``.

Older measurements (2026-11-22, forest.exr, no denoiser): 32/64/128/256 spp gave 27.1/29.5/31.9/34.1 dB; a 256 px
world map cost 0.8 dB against 1024; the first render of a process also loads the kernels and builds the scene (9 s).
A render at 64x36, 16 spp takes about 0.2 s (the tests use it). Debian's Blender 3.4.1 renders the scene but has no
OpenImageDenoise: there ``--set denoiser=null`` (other settings, other numbers). Renders with the same seed and
settings are equal to ~1e-7 relative, not bitwise (Cycles accumulates samples from several threads); OIDN keeps
that (same seed, same denoised image).

Choices that follow from them:

* 320x180, 384 samples, OpenImageDenoise with albedo and normal passes and the accurate prefilter, applied alike to
  every render (ground truth, noise floor, every method). The denoiser is what lifts SSIM from 0.6-0.8 (where it
  measured mostly render noise) to >= 0.99; its guesses are a function of the render, so a prediction that lights
  the scene like the ground truth still renders like it. A lower resolution at the same cost is noisier after
  denoising (fewer pixels for OIDN to pool).
* No adaptive sampling (the same quality costs more here, and it makes the sample count image-dependent); no path
  guiding (no gain on this scene, 1.5x the cost).
* Caustics off, reflective and refractive: the sun or a lamp focused by the glass and glossy balls onto the plane
  makes fireflies that no denoiser removes reliably (3 dB of noise floor before denoising, more after). The price:
  the glass ball's shadow has no focused light in it, for the ground truth as for every method.
* No clamping (clamping removes energy, i.e. biases exactly the HDR highlights under test).
* World importance map ``MANUAL`` at 2048 px wide: as fine as ``AUTOMATIC`` on the night scene's lamps, without
  rebuilding a map sized from each panorama.
* GT and prediction use the same seed, so their noise is correlated: a prediction that is the GT times k renders
  as k times the GT's render (up to float rounding and the denoiser). The seed-to-seed floor is a pessimistic bound.

Geometry (Blender units, Z up): four spheres of radius 1 resting on a 30x30 diffuse plane at z = 0, centres at
x = -3.45, -1.15, 1.15, 3.45 (left to right in the image: glass, glossy metal, diffuse, mixed diffuse+glossy); the
camera at (0, -11, 2.4) looks at (0, 0, 0.85) with a 40 mm lens on a 36 mm sensor (horizontal field of view 48.5°).
The world's default mapping puts the panorama's centre column at +X and its left/right edges at -X; the camera looks
along +Y, i.e. at the column 1/4 of the way across the panorama (from the left).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["DENOISERS", "SCENE_VERSION", "WORLD_SAMPLING_METHODS", "RenderSettings"]

#: Bumped whenever scene.py builds a different scene from the same settings; part of :meth:`RenderSettings.digest`.
SCENE_VERSION = 1
#: Accepted values of :attr:`RenderSettings.denoiser`.
DENOISERS = (None, "OPENIMAGEDENOISE")
#: Accepted values of :attr:`RenderSettings.world_sampling_method` (Cycles' ``world.cycles.sampling_method``).
WORLD_SAMPLING_METHODS = ("MANUAL", "AUTOMATIC", "NONE")

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class RenderSettings:
    """Everything that determines a four-ball render except the panorama itself.

    Colours are grey levels (linear reflectance). Frozen: derive variants with :meth:`replace`.
    """

    # --- image and sampling -------------------------------------------------------------------------------------
    resolution: tuple[int, int] = (320, 180)
    """Render size in pixels ``(width, height)`` at 100 %."""
    samples: int = 384
    """Cycles path-tracing samples per pixel (adaptive sampling off by default: every pixel gets exactly this many)."""
    seed: int = 0
    """Cycles sampling seed (``scene.cycles.seed``; the animated seed is off). GT and predictions share it."""
    denoiser: str | None = "OPENIMAGEDENOISE"
    """``"OPENIMAGEDENOISE"`` (with albedo and normal passes, accurate prefilter; ships in the bpy wheel and
    Blender's own builds, not in Debian's Blender 3.4), or None."""
    threads: int = 0
    """CPU render threads; 0 = one per logical core. Changes the result only by float rounding (~1e-7)."""
    adaptive_threshold: float = 0.0
    """Cycles adaptive sampling noise threshold; 0 = off (every pixel gets exactly ``samples``)."""
    adaptive_min_samples: int = 0
    """Minimum samples per pixel before adaptive sampling may stop a pixel (0 = Cycles' automatic choice)."""
    path_guiding: bool = False
    """Cycles path guiding (CPU only; surface guiding, deterministic): learns where light comes from during the
    first ``guiding_training_samples`` samples."""
    guiding_training_samples: int = 128
    """Samples used to train the path guiding field (Cycles' default 128)."""

    # --- light paths --------------------------------------------------------------------------------------------
    max_bounces: int = 12
    """Total bounce limit of a path (Blender's default)."""
    diffuse_bounces: int = 4
    """Diffuse bounce limit (Blender's default)."""
    glossy_bounces: int = 4
    """Glossy bounce limit (Blender's default)."""
    transmission_bounces: int = 12
    """Transmission bounce limit: light refracts at least twice through the glass ball (Blender's default)."""
    transparent_bounces: int = 8
    """Transparent bounce limit (nothing in the scene is transparent; Blender's default)."""
    caustics_reflective: bool = False
    """Reflective caustics (sun light focused by the glossy balls onto the plane); off: their fireflies cost ~3 dB
    of noise floor and no denoiser removes them reliably."""
    caustics_refractive: bool = False
    """Refractive caustics (sun light focused by the glass ball onto the plane); off, as the reflective ones."""
    blur_glossy: float = 0.0
    """Cycles "Filter Glossy" (0 = off: no roughness added to glossy paths)."""
    sample_clamp_direct: float = 0.0
    """Clamp of direct-light samples; 0 = off (clamping biases the energy of exactly the highlights under test)."""
    sample_clamp_indirect: float = 0.0
    """Clamp of indirect-light samples; 0 = off (Blender's default is 10)."""
    pixel_filter: str = "BLACKMAN_HARRIS"
    """Pixel reconstruction filter (Blender's default)."""
    filter_width: float = 1.5
    """Pixel filter width in pixels (Blender's default)."""

    # --- film and colour management -----------------------------------------------------------------------------
    film_transparent: bool = False
    """False: the camera sees the world behind the balls, so the background is part of the comparison."""
    film_exposure: float = 1.0
    """Cycles film exposure: a linear multiplier of the rendered values (1 = physical radiance)."""
    view_transform: str = "Standard"
    """View transform of the scene. Renders are read back as linear EXR, which it does not affect."""
    view_exposure: float = 0.0
    """Colour-management exposure (stops); like the view transform it does not affect the linear EXR."""

    # --- world --------------------------------------------------------------------------------------------------
    world_strength: float = 1.0
    """Background strength multiplying the panorama (1: the panorama's values are the radiance)."""
    world_rotation_deg: float = 0.0
    """Rotation of the panorama's lookup about Z in degrees (a Mapping node, inserted only when not 0); +90 renders
    like ``np.roll(pano, W // 4, axis=1)`` at 0."""
    world_sampling_method: str = "MANUAL"
    """World importance-map mode; ``MANUAL`` with a fixed size avoids rebuilding a large map per render."""
    world_map_resolution: int = 2048
    """Width of the world importance map when ``world_sampling_method == "MANUAL"`` (2048, twice a 1k panorama's
    width: small lamps are sampled as finely as ``AUTOMATIC`` does, without rebuilding the map's size per image)."""

    # --- camera -------------------------------------------------------------------------------------------------
    camera_location: Vec3 = (0.0, -11.0, 2.4)
    """Camera position (Blender units, Z up)."""
    camera_target: Vec3 = (0.0, 0.0, 0.85)
    """The point the camera looks at (its up vector is +Z)."""
    camera_lens_mm: float = 40.0
    """Focal length; with the 36 mm sensor width: 48.5° horizontal field of view. No depth of field."""
    camera_sensor_mm: float = 36.0
    """Sensor width (fit horizontally)."""

    # --- geometry -----------------------------------------------------------------------------------------------
    sphere_radius: float = 1.0
    """Radius of the four balls, which rest on the plane (centre height = radius)."""
    sphere_x: tuple[float, float, float, float] = (-3.45, -1.15, 1.15, 3.45)
    """Centre x of the glass, glossy, diffuse and mixed balls (left to right as seen by the camera); y = 0."""
    sphere_segments: tuple[int, int] = (96, 48)
    """UV-sphere segments and rings (smooth shaded)."""
    plane_size: float = 30.0
    """Edge length of the square ground plane at z = 0, centred at the origin."""

    # --- materials (grey reflectances, linear) ------------------------------------------------------------------
    glass_ior: float = 1.45
    """Index of refraction of the glass ball (Principled BSDF, transmission 1)."""
    glass_roughness: float = 0.0
    """Roughness of the glass ball (0 = clear glass)."""
    glass_color: float = 1.0
    """Base colour of the glass ball (1 = colourless)."""
    metal_color: float = 0.9
    """Base colour of the glossy ball (Principled BSDF, metallic 1): about aluminium's reflectance."""
    metal_roughness: float = 0.15
    """Roughness of the glossy ball: a blurred but recognisable reflection."""
    diffuse_albedo: float = 0.8
    """Albedo of the diffuse ball (Diffuse BSDF, Lambertian)."""
    mixed_diffuse_albedo: float = 0.8
    """Albedo of the diffuse part of the mixed ball."""
    mixed_glossy_color: float = 1.0
    """Colour of the glossy part of the mixed ball (Glossy BSDF, multiscatter GGX)."""
    mixed_glossy_roughness: float = 0.2
    """Roughness of the glossy part of the mixed ball."""
    mixed_factor: float = 0.5
    """Mix Shader factor of the mixed ball: 0 = all diffuse, 1 = all glossy."""
    plane_albedo: float = 0.5
    """Albedo of the ground plane (Diffuse BSDF, Lambertian): under a uniform radiance-1 world it renders as 0.5."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # lists (from JSON/YAML) -> tuples, so settings stay hashable
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))
        w, h = self.resolution
        if int(w) < 1 or int(h) < 1:
            raise ValueError(f"resolution must be positive, got {self.resolution}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.denoiser not in DENOISERS:
            raise ValueError(f"denoiser must be one of {DENOISERS}, got {self.denoiser!r}")
        if self.world_sampling_method not in WORLD_SAMPLING_METHODS:
            raise ValueError(f"world_sampling_method must be one of {WORLD_SAMPLING_METHODS}, "
                             f"got {self.world_sampling_method!r}")
        if len(self.sphere_x) != 4:
            raise ValueError(f"sphere_x needs 4 positions, got {len(self.sphere_x)}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if self.adaptive_threshold < 0 or self.adaptive_min_samples < 0:
            raise ValueError(f"adaptive sampling needs threshold >= 0 and min samples >= 0, got "
                             f"{self.adaptive_threshold}, {self.adaptive_min_samples}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-compatible dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RenderSettings:
        """Settings from a dict like :meth:`to_dict`'s; missing keys take their defaults.

        Raises:
            ValueError: Unknown keys or invalid values.
        """
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown render settings: {', '.join(unknown)}")
        return cls(**d)

    def digest(self) -> str:
        """A stable sha256 hex digest of the settings (sorted-key JSON, with :data:`SCENE_VERSION`)."""
        payload = json.dumps({"scene_version": SCENE_VERSION, "settings": self.to_dict()}, sort_keys=True,
                             separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    def replace(self, **kw: Any) -> RenderSettings:
        """A copy with the given fields changed (validated like the constructor)."""
        return dataclasses.replace(self, **kw)
