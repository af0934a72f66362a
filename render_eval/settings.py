"""The one documented default configuration of the four-ball evaluation render (method.md §4).

The paper does not publish its camera, resolution, samples or tone mapping, so they are chosen here, written down,
and kept fixed. Ground truth and every prediction are rendered with the same :class:`RenderSettings` and the same
seed; the settings' :meth:`~RenderSettings.digest` is part of every cache key, so a changed setting never reuses
an old render.

Measurements (2026-11-22, 2-core x86_64 shared with other jobs, bpy 5.0.1, Cycles CPU, Blender's ``forest.exr``
world; wall time of one render including scene sync, world importance map and EXR write):

Seed-to-seed noise floor = PSNR (dB, display-encoded) / linear MSE between two renders differing only by the seed
(``render_eval.render.noise_floor``), and seconds per render (the machine's load varied from 1 to 2.5):

=============================================  ===========  ========  ======
forest.exr, 320x180 unless noted               PSNR (dB)    MSE       s
=============================================  ===========  ========  ======
32 spp                                         27.1         0.054     2.4-2.8
64 spp                                         29.5         0.027     4.3-5.7
**128 spp (default)**                          **31.9**     0.0148    8.5-11
256 spp                                        34.1         0.0073    15-26
128 spp, world map MANUAL 256                  31.1         0.0177    8.5
128 spp, world map AUTOMATIC (1024 px)         32.4         0.0145    14-19
128 spp, caustics off                          34.8         0.0079    8.7-11
32 spp + OpenImageDenoise                      35.4         0.0098    4.2-4.4
480x270, 32 spp + OpenImageDenoise             37.7         0.0126    7.6-13.5
128 spp, map 256, threads=1 (same images as   31.1         0.0177    15.3
with 2 threads up to float rounding)
=============================================  ===========  ========  ======

Other worlds at the default: sunrise.exr 26.2 dB (30.0 with caustics off), interior.exr 25.9 dB (26.7): their
suns (up to 3e4) make caustic fireflies. The first render of a process also loads the kernels and builds the
scene (9 s in all at the default). A render at 64x36, 16 spp takes about 0.2 s (the tests use it). Debian's
Blender 3.4.1 renders the default scene in 7.9 s; its render of forest.exr differs from bpy 5.0.1's by 31.7 dB,
i.e. by about the noise floor (region means within 1 %).

Renders with the same seed and settings are equal to ~1e-7 relative, not bitwise (Cycles accumulates samples
from several threads).

Choices that follow from them:

* 320x180, 128 samples, no denoiser. Denoising makes the error depend on the denoiser's guesses (which differ
  between GT and prediction renders) and OpenImageDenoise is missing from Debian's Blender 3.4; it stays
  available as an option (``denoiser="OPENIMAGEDENOISE"``).
* No adaptive sampling (it saves nothing at <= 256 samples and makes the sample count image-dependent).
* No clamping (clamping removes energy, i.e. biases exactly the HDR highlights under test). The price is
  occasional fireflies from the sun through the glossy/glass balls, which the seed-to-seed noise floor includes.
* World importance map ``MANUAL`` at 1024 px wide: ``AUTOMATIC`` rebuilds a map sized from the panorama every
  render (about 2 s more per render); a fixed 1024 map nearly matches its noise for 1024x512 panoramas, while a
  256 map is 0.8 dB noisier.
* Caustics stay on (Blender's default; the sun focused by the glass ball is part of what an HDR light does),
  although turning them off would raise the noise floor by about 3 dB.
* GT and prediction use the same seed, so their noise is correlated: a prediction that is the GT times k renders
  as k times the GT's render (up to float rounding). The seed-to-seed floor is a pessimistic bound.

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
    samples: int = 128
    """Cycles path-tracing samples per pixel (adaptive sampling off: every pixel gets exactly this many)."""
    seed: int = 0
    """Cycles sampling seed (``scene.cycles.seed``; the animated seed is off). GT and predictions share it."""
    denoiser: str | None = None
    """None, or ``"OPENIMAGEDENOISE"`` (not in Debian's Blender 3.4 build)."""
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
    caustics_reflective: bool = True
    """Keep reflective caustics (sun light focused by the glossy balls onto the plane)."""
    caustics_refractive: bool = True
    """Keep refractive caustics (sun light focused by the glass ball onto the plane)."""
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
    world_map_resolution: int = 1024
    """Width of the world importance map when ``world_sampling_method == "MANUAL"`` (1024: as fine as
    ``AUTOMATIC`` for 1024x512 panoramas, without rebuilding it from the image size every render)."""

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
