"""Synthetic HDR panoramas: random outdoor and indoor scenes rendered by Blender Cycles (``docs/synth.md``).

This module is pure Python (numpy only) and imports no Blender code: the scene parameters, their random sampling and
the resumable generator loop (:func:`generate`, :func:`main`), which takes the renderer as an argument. The Blender
side, which turns a :class:`SynthParams` into an equirectangular Cycles render, is the scene builder
``scenes/synth_panorama.py`` (beside the evaluation scene), whose command line runs this generator with it.

Two kinds of scene, both seen by a 360x180 degree equirectangular camera about 1.6 m above the floor:

* **outdoor**: a Blender Sky Texture (``SINGLE_SCATTERING`` / ``MULTIPLE_SCATTERING`` with a sun disc whose
  elevation goes a little below the horizon for dusk; ``PREETHAM`` / ``HOSEK_WILKIE``, which have no sun disc),
  a large ground plane of random albedo and a few boxes, cylinders and spheres with random diffuse, glossy or
  metallic materials around the camera. A small fraction is *sky only* (no geometry: the lower hemisphere is
  what the sky model gives, black for the scattering models).
* **indoor**: a box room of random size and wall/floor/ceiling albedo, 1-4 emissive ceiling lamps of random
  colour temperature and power, 0-2 window openings with a sky (and a sunlit ground) outside, and a few
  furniture-like boxes.

Every scene is a pure function of ``(seed, index)`` (:func:`sample_params` seeds numpy's ``Generator`` with
``[seed, index]``), so a data set is reproducible from its seed and any panorama can be re-rendered alone.
Distances are metres, angles radians, colours linear RGB reflectances; lamp power is in Blender watts.

Command line (resumable: finished panoramas are skipped; each EXR appears atomically)::

    python scenes/synth_panorama.py --n 1000 --out data/synth --seed 0 --width 512 --samples 32 --progress

(``python -m hdr_core.data.synth`` takes the same arguments but has no renderer: it checks them and a finished
folder, and says to use the command above when anything is left to render.)

writes ``synth_00000.exr`` ... (float32 linear RGB), a sidecar ``synth_00000.json`` per panorama (its parameters
and render settings) and ``manifest.json`` (:func:`hdr_core.data.sources.write_manifest`; source ``synthetic``,
licence CC0-1.0, split group ``synthetic``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DENOISERS", "KINDS", "LAMP_DEPTH", "LAMP_SHAPES", "MATERIAL_KINDS", "SHAPES", "SKY_TYPES", "SUN_DISC_SKY_TYPES",
    "SYNTH_VERSION", "WALLS", "LampParams", "MaterialParams", "ObjectParams", "RoomParams", "SkyParams",
    "SynthParams", "WindowParams", "generate", "main", "panorama_name", "sample_params", "sun_direction",
]

#: Bumped whenever the same ``(seed, index)`` samples a different scene or the renderer builds it differently.
SYNTH_VERSION = 1
KINDS = ("outdoor", "indoor")
#: Sky models of Blender 5.0's Sky Texture. The two scattering models draw a sun disc; the last two do not.
SKY_TYPES = ("SINGLE_SCATTERING", "MULTIPLE_SCATTERING", "PREETHAM", "HOSEK_WILKIE")
SUN_DISC_SKY_TYPES = ("SINGLE_SCATTERING", "MULTIPLE_SCATTERING")
SHAPES = ("box", "cylinder", "sphere")
MATERIAL_KINDS = ("diffuse", "glossy", "metal")
LAMP_SHAPES = ("panel", "disc")
#: Room walls by the axis direction of their outward normal.
WALLS = ("+x", "-x", "+y", "-y")

Vec3 = tuple[float, float, float]

# --- sampling ranges (documented defaults in one place) ---------------------------------------------------------

_SKY_TYPE_WEIGHTS = (0.3, 0.4, 0.15, 0.15)
_DUSK_FRACTION = 0.12  # of scattering skies: sun between 6 degrees below and 3 degrees above the horizon
_SUN_ELEVATION_DEG = (3.0, 75.0)
_DUSK_ELEVATION_DEG = (-6.0, 3.0)
_SUN_SIZE_DEG = (0.5, 0.6)  # angular diameter (the real sun: 0.53)
_CAMERA_HEIGHT = (1.5, 1.7)
_GROUND_COLORS = (  # linear albedos: grass, dry grass, soil, sand, asphalt, concrete, snow
    (0.06, 0.12, 0.03), (0.25, 0.21, 0.09), (0.14, 0.09, 0.05), (0.45, 0.37, 0.25), (0.06, 0.06, 0.06),
    (0.30, 0.30, 0.28), (0.80, 0.82, 0.85))
_LAMP_POWER_W = (15.0, 200.0)  # per lamp, log-uniform
_LAMP_TEMPERATURE_K = (2700.0, 6500.0)
#: Depth of a ceiling fixture: its glowing underside hangs this far below the ceiling.
LAMP_DEPTH = 0.04


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def _rv(v: Any, nd: int = 4) -> tuple[float, ...]:
    return tuple(_r(x, nd) for x in v)


class _Params:
    """Shared behaviour of the parameter dataclasses: JSON lists become tuples, ``to_dict``/``from_dict``."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, list):
                object.__setattr__(self, f.name, tuple(v))

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-compatible dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Any:
        """Parameters from a dict like :meth:`to_dict`'s.

        Raises:
            ValueError: Unknown or missing keys.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {', '.join(unknown)}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ValueError(f"{cls.__name__}: {e}") from e


@dataclass(frozen=True)
class MaterialParams(_Params):
    """A surface (Principled BSDF): diffuse, glossy dielectric or metal."""

    kind: str
    """One of :data:`MATERIAL_KINDS`."""
    color: Vec3
    """Base colour (linear reflectance)."""
    roughness: float = 0.8
    """Principled roughness (0 = mirror)."""
    metallic: float = 0.0
    """Principled metallic (1 for ``metal``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in MATERIAL_KINDS:
            raise ValueError(f"material kind must be one of {MATERIAL_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class ObjectParams(_Params):
    """A box, cylinder or sphere standing on the ground (or the floor)."""

    shape: str
    """One of :data:`SHAPES`."""
    location: Vec3
    """Centre of the object's bounding box."""
    size: Vec3
    """Extents along the object's own x, y, z (a sphere or cylinder uses x as its diameter)."""
    rotation_z: float
    """Rotation about the vertical axis."""
    material: MaterialParams

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}")
        if isinstance(self.material, dict):
            object.__setattr__(self, "material", MaterialParams.from_dict(self.material))


@dataclass(frozen=True)
class SkyParams(_Params):
    """Blender's Sky Texture (the world). Unused fields of the chosen model are kept for the record."""

    sky_type: str
    """One of :data:`SKY_TYPES`."""
    sun_elevation: float
    """Sun elevation above the horizon (negative: below, dusk)."""
    sun_rotation: float
    """Blender's sun rotation about +Z: 0 puts the sun towards +Y, pi/2 towards +X (:func:`sun_direction`)."""
    sun_size: float = math.radians(0.545)
    """Angular diameter of the sun disc (scattering models)."""
    sun_intensity: float = 1.0
    """Multiplier of the sun disc's radiance (scattering models)."""
    altitude: float = 0.0
    """Observer altitude in metres (scattering models)."""
    air_density: float = 1.0
    """Air (Rayleigh) density multiplier (scattering models)."""
    aerosol_density: float = 1.0
    """Aerosol (Mie, haze) density multiplier (scattering models; ``dust_density`` before Blender 5.0)."""
    ozone_density: float = 1.0
    """Ozone density multiplier (scattering models)."""
    turbidity: float = 2.2
    """Atmospheric turbidity (``PREETHAM``, ``HOSEK_WILKIE``)."""
    ground_albedo: float = 0.3
    """Ground albedo of the sky model (``HOSEK_WILKIE``)."""
    strength: float = 1.0
    """Background strength (1: the sky model's radiance as is)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sky_type not in SKY_TYPES:
            raise ValueError(f"sky_type must be one of {SKY_TYPES}, got {self.sky_type!r}")

    @property
    def has_sun_disc(self) -> bool:
        """True for the scattering models, which draw the sun (above the horizon)."""
        return self.sky_type in SUN_DISC_SKY_TYPES

    @property
    def sun_direction(self) -> Vec3:
        """Unit vector towards the sun (world coordinates, Z up)."""
        return sun_direction(self.sun_elevation, self.sun_rotation)


@dataclass(frozen=True)
class RoomParams(_Params):
    """A closed box room centred on the origin in x/y, floor at z = 0."""

    size: Vec3
    """Inner extents (x, y, height)."""
    walls: MaterialParams
    floor: MaterialParams
    ceiling: MaterialParams

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("walls", "floor", "ceiling"):
            if isinstance(getattr(self, name), dict):
                object.__setattr__(self, name, MaterialParams.from_dict(getattr(self, name)))


@dataclass(frozen=True)
class WindowParams(_Params):
    """A rectangular opening in one wall of the room."""

    wall: str
    """One of :data:`WALLS`."""
    offset: float
    """Centre of the opening along the wall, from the wall's middle (along +y for x walls, +x for y walls)."""
    sill: float
    """Height of the opening's bottom edge above the floor."""
    width: float
    height: float


@dataclass(frozen=True)
class LampParams(_Params):
    """An emissive ceiling fixture: a thin box or disc whose underside glows."""

    shape: str
    """One of :data:`LAMP_SHAPES`."""
    location: Vec3
    """Centre of the glowing underside."""
    size: tuple[float, float]
    """Extents in x, y (a disc uses x as its diameter)."""
    temperature: float
    """Colour temperature in kelvin (black body)."""
    power: float
    """Emitted power in Blender watts (emission strength = power / area)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shape not in LAMP_SHAPES:
            raise ValueError(f"lamp shape must be one of {LAMP_SHAPES}, got {self.shape!r}")

    @property
    def area(self) -> float:
        """Area of the glowing underside."""
        w, d = self.size
        return math.pi * w * w / 4.0 if self.shape == "disc" else w * d


@dataclass(frozen=True)
class SynthParams(_Params):
    """Everything that determines one synthetic panorama (besides the render settings)."""

    seed: int
    index: int
    kind: str
    """One of :data:`KINDS`."""
    sky: SkyParams
    camera: Vec3
    """Camera position; it looks along +X (the panorama's centre column) with +Z up."""
    ground: MaterialParams | None
    """The ground plane (z = 0 outdoors, just below the floor indoors); None for a sky-only panorama."""
    objects: tuple[ObjectParams, ...] = ()
    """Outdoor objects, or indoor furniture."""
    room: RoomParams | None = None
    lamps: tuple[LampParams, ...] = ()
    windows: tuple[WindowParams, ...] = ()
    version: int = SYNTH_VERSION

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        conv = {"sky": SkyParams, "ground": MaterialParams, "room": RoomParams}
        for name, cls in conv.items():
            if isinstance(getattr(self, name), dict):
                object.__setattr__(self, name, cls.from_dict(getattr(self, name)))
        for name, cls in (("objects", ObjectParams), ("lamps", LampParams), ("windows", WindowParams)):
            object.__setattr__(self, name, tuple(cls.from_dict(v) if isinstance(v, dict) else v
                                                 for v in getattr(self, name)))
        if self.kind == "indoor" and self.room is None:
            raise ValueError("an indoor scene needs a room")

    @property
    def sky_only(self) -> bool:
        """True when the scene has no geometry at all: the camera sees only the world."""
        return self.room is None and self.ground is None and not self.objects and not self.lamps

    @property
    def world_visible(self) -> bool:
        """False for a closed room (no windows): no ray ever reaches the world."""
        return self.kind == "outdoor" or bool(self.windows)

    def replace(self, **kw: Any) -> SynthParams:
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **kw)


def sun_direction(elevation: float, rotation: float) -> Vec3:
    """Unit vector towards a sun at ``elevation`` with Blender's Sky Texture ``sun_rotation`` convention.

    Measured on Blender 5.0: rotation 0 puts the sun towards +Y and rotation increases clockwise seen from above
    (pi/2 towards +X).
    """
    c = math.cos(elevation)
    return (c * math.sin(rotation), c * math.cos(rotation), math.sin(elevation))


# --- random scenes ----------------------------------------------------------------------------------------------

def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _sample_sky(rng: np.random.Generator) -> SkyParams:
    sky_type = SKY_TYPES[int(rng.choice(len(SKY_TYPES), p=_SKY_TYPE_WEIGHTS))]
    scattering = sky_type in SUN_DISC_SKY_TYPES
    lo, hi = _DUSK_ELEVATION_DEG if scattering and rng.random() < _DUSK_FRACTION else _SUN_ELEVATION_DEG
    return SkyParams(
        sky_type=sky_type,
        sun_elevation=_r(math.radians(rng.uniform(lo, hi)), 5),
        sun_rotation=_r(rng.uniform(0.0, 2.0 * math.pi), 5),
        sun_size=_r(math.radians(rng.uniform(*_SUN_SIZE_DEG)), 6),
        sun_intensity=1.0,
        altitude=_r(_log_uniform(rng, 1.0, 3000.0), 1),
        air_density=_r(rng.uniform(0.6, 1.6)),
        aerosol_density=_r(_log_uniform(rng, 0.1, 6.0)),
        ozone_density=_r(rng.uniform(0.3, 2.5)),
        turbidity=_r(rng.uniform(1.8, 8.0)),
        ground_albedo=_r(rng.uniform(0.05, 0.5)),
        strength=1.0,
    )


def _sample_color(rng: np.random.Generator, lo: float, hi: float, saturation: float) -> Vec3:
    """A colour of linear albedo in [lo, hi] (its mean), tinted by up to ``saturation``."""
    level = rng.uniform(lo, hi)
    tint = 1.0 + saturation * rng.uniform(-1.0, 1.0, 3)
    c = np.clip(level * tint / tint.mean(), 0.01, 0.95)
    return _rv(c)


def _sample_material(rng: np.random.Generator, kinds: tuple[str, ...] = ("diffuse", "glossy", "metal"),
                     p: tuple[float, ...] = (0.55, 0.3, 0.15), albedo: tuple[float, float] = (0.04, 0.85),
                     saturation: float = 0.6) -> MaterialParams:
    kind = kinds[int(rng.choice(len(kinds), p=p))]
    if kind == "metal":
        return MaterialParams("metal", _sample_color(rng, 0.5, 0.95, 0.25), _r(rng.uniform(0.05, 0.5)), 1.0)
    color = _sample_color(rng, *albedo, saturation)
    rough = rng.uniform(0.02, 0.35) if kind == "glossy" else rng.uniform(0.6, 1.0)
    return MaterialParams(kind, color, _r(rough), 0.0)


def _sample_ground(rng: np.random.Generator) -> MaterialParams:
    base = np.asarray(_GROUND_COLORS[int(rng.integers(len(_GROUND_COLORS)))])
    c = np.clip(base * rng.uniform(0.7, 1.3) * (1.0 + 0.15 * rng.uniform(-1.0, 1.0, 3)), 0.01, 0.9)
    return MaterialParams("diffuse", _rv(c), _r(rng.uniform(0.7, 1.0)), 0.0)


def _sample_outdoor_object(rng: np.random.Generator, cam: Vec3) -> ObjectParams:
    shape = SHAPES[int(rng.choice(3, p=(0.5, 0.25, 0.25)))]
    building = shape == "box" and rng.random() < 0.25
    if building:
        size = (rng.uniform(4.0, 20.0), rng.uniform(4.0, 20.0), rng.uniform(3.0, 25.0))
        dist = rng.uniform(12.0, 60.0)
    elif shape == "box":
        size = tuple(rng.uniform(0.3, 3.0, 3))
        dist = _log_uniform(rng, 2.0, 30.0)
    elif shape == "cylinder":
        diameter = rng.uniform(0.1, 2.0)
        size = (diameter, diameter, rng.uniform(0.3, 6.0))
        dist = _log_uniform(rng, 2.0, 30.0)
    else:
        diameter = rng.uniform(0.3, 3.0)
        size = (diameter, diameter, diameter)
        dist = _log_uniform(rng, 2.0, 30.0)
    dist = max(dist, 0.5 * math.hypot(size[0], size[1]) + 0.8)  # never around or against the camera
    theta = rng.uniform(0.0, 2.0 * math.pi)
    loc = (cam[0] + dist * math.cos(theta), cam[1] + dist * math.sin(theta), size[2] / 2.0)
    material = _sample_material(rng, p=(0.8, 0.15, 0.05) if building else (0.55, 0.3, 0.15))
    return ObjectParams(shape, _rv(loc), _rv(size), _r(rng.uniform(0.0, math.pi)), material)


def _sample_outdoor(rng: np.random.Generator, seed: int, index: int, sky_only: bool) -> SynthParams:
    sky = _sample_sky(rng)
    cam = (0.0, 0.0, _r(rng.uniform(*_CAMERA_HEIGHT), 3))
    if sky_only:
        return SynthParams(seed, index, "outdoor", sky, cam, ground=None)
    ground = _sample_ground(rng)
    objects = tuple(_sample_outdoor_object(rng, cam) for _ in range(int(rng.integers(0, 9))))
    return SynthParams(seed, index, "outdoor", sky, cam, ground, objects)


def _wall_length(wall: str, room: Vec3) -> float:
    return room[1] if wall in ("+x", "-x") else room[0]


def _sample_windows(rng: np.random.Generator, room: Vec3) -> tuple[WindowParams, ...]:
    n = int(rng.choice(3, p=(0.25, 0.45, 0.3)))
    walls = [WALLS[int(k)] for k in rng.permutation(len(WALLS))[:n]]  # one window per wall
    out = []
    for wall in walls:
        length = _wall_length(wall, room)
        width = rng.uniform(0.6, min(2.8, length - 0.8))
        sill = rng.uniform(0.2, 1.1)
        height = rng.uniform(0.8, max(0.9, min(2.2, room[2] - sill - 0.2)))
        height = min(height, room[2] - sill - 0.15)
        free = (length - width) / 2.0 - 0.3
        offset = rng.uniform(-free, free)
        out.append(WindowParams(wall, _r(offset), _r(sill), _r(width), _r(height)))
    return tuple(out)


def _sample_lamps(rng: np.random.Generator, room: Vec3) -> tuple[LampParams, ...]:
    n = int(rng.integers(1, 5))
    temperature = rng.uniform(*_LAMP_TEMPERATURE_K)  # one fixture type per room, small spread
    out = []
    for _ in range(n):
        shape = LAMP_SHAPES[int(rng.integers(2))]
        if shape == "panel":
            size = (rng.uniform(0.2, 1.2), rng.uniform(0.2, 1.2))
        else:
            d = rng.uniform(0.15, 0.6)
            size = (d, d)
        x = rng.uniform(-0.4, 0.4) * room[0]
        y = rng.uniform(-0.4, 0.4) * room[1]
        z = room[2] - LAMP_DEPTH
        t = float(np.clip(temperature + rng.normal(0.0, 150.0), 1800.0, 8000.0))
        out.append(LampParams(shape, _rv((x, y, z)), _rv(size), _r(t, 1), _r(_log_uniform(rng, *_LAMP_POWER_W), 2)))
    return tuple(out)

_FURNITURE = {  # kind: ((width range), (depth range), (height range))
    "table": ((0.8, 2.0), (0.6, 1.2), (0.7, 0.8)),
    "cabinet": ((0.5, 2.0), (0.35, 0.6), (0.8, 2.2)),
    "sofa": ((1.4, 2.4), (0.8, 1.0), (0.4, 0.9)),
    "bed": ((1.0, 2.0), (1.9, 2.2), (0.4, 0.6)),
    "crate": ((0.3, 0.8), (0.3, 0.8), (0.3, 0.8)),
}


def _sample_furniture(rng: np.random.Generator, room: Vec3, cam: Vec3) -> tuple[ObjectParams, ...]:
    out = []
    kinds = tuple(_FURNITURE)
    for _ in range(int(rng.integers(1, 7))):
        kind = kinds[int(rng.integers(len(kinds)))]
        w, d, h = (rng.uniform(*r) for r in _FURNITURE[kind])
        w, d = min(w, room[0] - 0.4), min(d, room[1] - 0.4)
        for _attempt in range(10):
            if rng.random() < 0.6:  # against a wall, its back to it
                wall = WALLS[int(rng.integers(4))]
                along = _wall_length(wall, room)
                rot = {"+x": math.pi / 2, "-x": -math.pi / 2, "+y": 0.0, "-y": math.pi}[wall]
                t = rng.uniform(-1.0, 1.0) * max(0.0, (along - w) / 2.0 - 0.05)
                if wall in ("+x", "-x"):
                    sgn = 1.0 if wall == "+x" else -1.0
                    x, y = sgn * (room[0] / 2.0 - d / 2.0 - 0.02), t
                else:
                    sgn = 1.0 if wall == "+y" else -1.0
                    x, y = t, sgn * (room[1] / 2.0 - d / 2.0 - 0.02)
            else:
                rot = rng.uniform(0.0, math.pi)
                x = rng.uniform(-0.5, 0.5) * (room[0] - 1.0)
                y = rng.uniform(-0.5, 0.5) * (room[1] - 1.0)
            if math.hypot(x - cam[0], y - cam[1]) > 0.5 * math.hypot(w, d) + 0.35:
                material = _sample_material(rng, p=(0.6, 0.3, 0.1), albedo=(0.05, 0.8))
                out.append(ObjectParams("box", _rv((x, y, h / 2.0)), _rv((w, d, h)), _r(rot), material))
                break
    return tuple(out)


def _sample_indoor(rng: np.random.Generator, seed: int, index: int) -> SynthParams:
    sky = _sample_sky(rng)
    room = (rng.uniform(3.0, 9.0), rng.uniform(3.0, 9.0), rng.uniform(2.4, 3.6))
    cam = (rng.uniform(-0.3, 0.3) * room[0], rng.uniform(-0.3, 0.3) * room[1], rng.uniform(*_CAMERA_HEIGHT))
    walls = MaterialParams("diffuse", _sample_color(rng, 0.3, 0.85, 0.3), _r(rng.uniform(0.7, 1.0)))
    floor = _sample_material(rng, kinds=("diffuse", "glossy"), p=(0.5, 0.5), albedo=(0.06, 0.5), saturation=0.5)
    if floor.kind == "glossy":  # polished wood, tiles: a blurred reflection
        floor = dataclasses.replace(floor, roughness=_r(rng.uniform(0.15, 0.5)))
    ceiling = MaterialParams("diffuse", _sample_color(rng, 0.6, 0.9, 0.1), 0.9)
    room_p = RoomParams(_rv(room), walls, floor, ceiling)
    windows = _sample_windows(rng, room)
    lamps = _sample_lamps(rng, room)
    furniture = _sample_furniture(rng, room, cam)
    return SynthParams(seed, index, "indoor", sky, _rv(cam, 3), _sample_ground(rng), furniture, room_p, lamps,
                       windows)


def sample_params(seed: int, i: int, indoor_fraction: float = 0.4, sky_only_fraction: float = 0.05) -> SynthParams:
    """The parameters of synthetic panorama ``i`` of the data set ``seed``: a pure function of its arguments.

    Args:
        seed: Data-set seed.
        i: Panorama index (>= 0).
        indoor_fraction: Probability of an indoor scene.
        sky_only_fraction: Probability that an outdoor scene is only the sky (no ground, no objects).

    Returns:
        The scene; numpy's ``Generator`` is seeded with ``[seed, i]``, so the same arguments give the same scene
        in any process.
    """
    if i < 0 or seed < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, i={i}")
    for name, v in (("indoor_fraction", indoor_fraction), ("sky_only_fraction", sky_only_fraction)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    rng = np.random.default_rng([int(seed), int(i)])
    u_kind, u_sky_only = rng.random(2)
    if u_kind < indoor_fraction:
        return _sample_indoor(rng, int(seed), int(i))
    return _sample_outdoor(rng, int(seed), int(i), sky_only=bool(u_sky_only < sky_only_fraction))


# --- command line -----------------------------------------------------------------------------------------------

#: ``--denoiser`` values: ``auto`` = OpenImageDenoise except for sky-only panoramas (scenes/synth_panorama.py).
DENOISERS = ("auto", "none", "OPENIMAGEDENOISE")
MANIFEST_SOURCE = "synthetic"
MANIFEST_LICENCE = "CC0-1.0 (generated)"
MANIFEST_SPLIT = "synthetic"


def panorama_name(i: int) -> str:
    """The file stem of panorama ``i``: ``synth_00042``."""
    return f"synth_{i:05d}"


def _render_record(args: argparse.Namespace) -> dict[str, Any]:
    """The render settings a sidecar records (a finished panorama is reused only if they match)."""
    return {"width": int(args.width), "height": int(args.width) // 2, "samples": int(args.samples),
            "denoiser": args.denoiser}


def _is_done(exr: Path, sidecar: Path, params: SynthParams, render: dict[str, Any]) -> bool:
    """True if ``exr`` exists and its sidecar shows the same scene and render settings.

    Raises:
        RuntimeError: ``exr`` exists but was made from another scene or other settings (another seed, size...).
    """
    if not exr.is_file():
        return False
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        meta = None
    if meta is None or meta.get("params") != params.to_dict() or any(
            meta.get("render", {}).get(k) != v for k, v in render.items()):
        raise RuntimeError(f"{exr} exists but was made with other parameters or settings (see {sidecar.name}); "
                           "use another --out folder")
    return True


#: What renders one panorama: ``render(params, width=, samples=, threads=, denoiser=, info=) -> HxWx3 float32``
#: (``scenes/synth_panorama.render_synth``).
Renderer = Any


def generate(n: int, out: str | Path, seed: int = 0, width: int = 512, samples: int = 32,
             indoor_fraction: float = 0.4, sky_only_fraction: float = 0.05, start: int = 0, threads: int = 0,
             denoiser: str = "auto", progress: bool = False, renderer: Renderer | None = None) -> dict[str, Any]:
    """Render panoramas ``start .. start + n - 1`` into ``out`` (skipping finished ones) and write the manifest.

    Needs ``renderer`` (:data:`Renderer`) when anything is left to render. Other arguments are those of the command
    line (``--help``).

    Returns:
        ``{"rendered": k, "skipped": m, "seconds": [per rendered panorama], "manifest": path}``.
    """
    args = argparse.Namespace(width=width, samples=samples, denoiser=denoiser)
    return _generate(n, Path(out), seed, indoor_fraction, sky_only_fraction, start, threads, args, progress, renderer)


@contextlib.contextmanager
def _quiet_stdout():
    """Send file descriptor 1 to /dev/null (Blender logs every saved render there); stderr is kept."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _generate(n: int, out: Path, seed: int, indoor_fraction: float, sky_only_fraction: float, start: int,
              threads: int, args: argparse.Namespace, progress: bool, renderer: Renderer | None) -> dict[str, Any]:
    from tqdm import tqdm

    from hdr_core.checkpoint import atomic_write_text
    from hdr_core.data.sources import write_manifest
    from hdr_core.io import write_exr

    if n < 0 or start < 0:
        raise ValueError("--n and --start must be >= 0")
    if args.width < 4 or args.width % 2:
        raise ValueError(f"--width must be an even number >= 4, got {args.width}")
    if args.samples < 1:
        raise ValueError(f"--samples must be >= 1, got {args.samples}")
    if args.denoiser not in DENOISERS:
        raise ValueError(f"--denoiser must be one of {', '.join(DENOISERS)}, got {args.denoiser!r}")
    out.mkdir(parents=True, exist_ok=True)
    render = _render_record(args)
    stats: dict[str, Any] = {"rendered": 0, "skipped": 0, "seconds": []}
    bar = tqdm(range(start, start + n), disable=not progress, unit="pano", dynamic_ncols=True)
    for i in bar:
        params = sample_params(seed, i, indoor_fraction, sky_only_fraction)
        stem = panorama_name(i)
        exr, sidecar = out / f"{stem}.exr", out / f"{stem}.json"
        if _is_done(exr, sidecar, params, render):
            stats["skipped"] += 1
            continue
        if renderer is None:
            raise RuntimeError(f"{exr}: rendering needs the Blender scene builder: run `python "
                               "scenes/synth_panorama.py` with the same arguments")
        bar.set_postfix_str(f"{stem} {params.kind}")
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        denoiser = None if args.denoiser == "none" else args.denoiser
        with _quiet_stdout():
            img = renderer(params, width=args.width, samples=args.samples, threads=threads, denoiser=denoiser,
                         info=info)
        seconds = time.perf_counter() - t0
        # the sidecar first, the EXR last: an EXR (written atomically) marks a finished panorama
        atomic_write_text(sidecar, json.dumps({"params": params.to_dict(), "render": {**render, **info,
                                                                                      "seconds": round(seconds, 2)}},
                                              indent=1))
        write_exr(exr, img)
        stats["rendered"] += 1
        stats["seconds"].append(seconds)
    bar.close()
    stats["manifest"] = write_manifest(out, MANIFEST_SOURCE, MANIFEST_LICENCE, split=lambda stem: MANIFEST_SPLIT)
    return stats


def main(argv: list[str] | None = None, renderer: Renderer | None = None,
         prog: str = "python -m hdr_core.data.synth") -> int:
    """The command line; ``renderer`` renders a panorama (None: only check arguments and finished panoramas)."""
    ap = argparse.ArgumentParser(prog=prog,
                                 description="Render synthetic HDR panoramas (random outdoor/indoor Cycles scenes).")
    g = ap.add_argument_group("Data set")
    g.add_argument("--n", type=int, required=True, help="number of panoramas")
    g.add_argument("--out", required=True, help="output folder (resumable: finished panoramas are skipped)")
    g.add_argument("--seed", type=int, default=0, help="data-set seed (default 0)")
    g.add_argument("--start", type=int, default=0, help="index of the first panorama (for shards; default 0)")
    g.add_argument("--indoor-fraction", type=float, default=0.4, help="share of indoor scenes (default 0.4)")
    g.add_argument("--sky-only-fraction", type=float, default=0.05,
                   help="share of outdoor scenes that are only the sky (default 0.05)")
    r = ap.add_argument_group("Rendering")
    r.add_argument("--width", type=int, default=512, help="panorama width; height = width / 2 (default 512)")
    r.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel (default 32)")
    r.add_argument("--threads", type=int, default=0, help="CPU threads (default 0: all)")
    r.add_argument("--denoiser", choices=DENOISERS, default="auto",
                   help="auto (default): OpenImageDenoise except for sky-only panoramas; none; or OPENIMAGEDENOISE "
                        "for all (docs/synth.md)")
    ap.add_argument("--progress", action="store_true", help="show a progress bar")
    args = ap.parse_args(argv)
    try:
        stats = _generate(args.n, Path(args.out), args.seed, args.indoor_fraction, args.sky_only_fraction,
                          args.start, args.threads, args, args.progress, renderer)
    except (RuntimeError, ValueError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    secs = stats["seconds"]
    mean = f", {sum(secs) / len(secs):.1f} s per panorama" if secs else ""
    print(f"rendered {stats['rendered']}, skipped {stats['skipped']}{mean}; manifest: {stats['manifest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
