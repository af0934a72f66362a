"""Render the four-ball scene lit by a panorama; a content-addressed cache of renders; the seed-to-seed noise floor.

:func:`render_panorama` returns the render as a linear float32 array (written as EXR by Cycles and read back:
Render Result pixels cannot be read in background mode). The scene is built once per process and settings (the seed
is applied per render and does not rebuild it); between renders only the world image is swapped.

:class:`RenderCache` stores ``<key>.exr`` (linear float32) and ``<key>.png`` (display encoded: fixed exposure,
clip, sRGB) per render, keyed by the panorama's content, the settings, the seed and the Blender version, so ground
truth renders are made once. Entries appear atomically: the EXR is moved into place last, so a killed run leaves
at most a hidden temp file, never an entry.

``bpy`` is imported lazily: ``import render_eval.render`` works without Blender.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import sys
import tempfile
import time
import uuid
from typing import Any

from render_eval.settings import RenderSettings

__all__ = ["RenderCache", "check_supported", "noise_floor", "panorama_digest", "render_current_scene",
           "render_current_scene_array", "render_panorama", "render_stats", "render_to_file"]

_CACHE_VERSION = b"render_eval.cache/1"
_stats = {"renders": 0, "builds": 0}


def render_stats() -> dict[str, int]:
    """Counters of this process: ``renders`` (Cycles renders) and ``builds`` (scene builds)."""
    return dict(_stats)


def _import_bpy() -> Any:
    """``import bpy``; before the first import, point ``BLENDER_USER_RESOURCES`` at a temp dir unless it is set."""
    if "bpy" not in sys.modules:
        os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender-user-"))
    import bpy

    return bpy


def _scene_key(settings: RenderSettings) -> str:
    """The key of the built scene: everything but the per-render seed."""
    return settings.replace(seed=0).digest()


def _ensure_scene(settings: RenderSettings) -> Any:
    """Build the scene unless the current one was built from the same settings and is intact; return it."""
    bpy = _import_bpy()
    from render_eval import scene as sc

    key = _scene_key(settings)
    s = bpy.context.scene
    intact = (s is not None and s.get(sc.SCENE_KEY_PROP) == key and s.camera is not None and s.world is not None
              and all(f"Ball_{k}" in bpy.data.objects for k in sc.BALL_KINDS) and "Plane" in bpy.data.objects)
    if not intact:
        sc.build_four_ball_scene(settings, key=key)
        _stats["builds"] += 1
    return bpy.context.scene


def check_supported(settings: RenderSettings) -> None:
    """Raise RuntimeError (one line, with the way out) if this Blender cannot render ``settings``."""
    _import_bpy()
    from render_eval import blender_compat as bc

    if settings.denoiser is not None and settings.denoiser not in bc.available_denoisers():
        version = ".".join(map(str, bc.blender_version()))
        raise RuntimeError(f"this Blender ({version}) has no {settings.denoiser}, which the render settings use; run "
                           "with the bpy wheel or an official Blender build, or pass --set denoiser=null (other "
                           "settings: numbers not comparable with the defaults')")


def render_to_file(hdr: Any, settings: RenderSettings | None = None, out_exr: str | os.PathLike | None = None,
                   seed: int | None = None) -> str:
    """Render the scene lit by ``hdr`` and write the linear float32 EXR (needs no numpy for a file panorama).

    Args:
        hdr: A panorama file (EXR/HDR) or a float ``HxWx3`` linear array.
        settings: Render settings; defaults if None.
        out_exr: Destination ``.exr`` (written atomically); a temp file if None.
        seed: Overrides ``settings.seed`` for this render.

    Returns:
        The path of the written EXR.
    """
    if hdr is None:
        raise TypeError("render_to_file: no panorama given")
    _import_bpy()
    from render_eval import scene as sc

    settings = settings or RenderSettings()
    if seed is not None:
        settings = settings.replace(seed=int(seed))
    scene = _ensure_scene(settings)
    sc.apply_render_settings(settings, scene)
    sc.set_world_hdr(hdr, settings)
    if out_exr is None:
        out_exr = os.path.join(sc.temp_dir(), f"render-{uuid.uuid4().hex}.exr")
    return render_current_scene(out_exr)


def render_current_scene(out_exr: str | os.PathLike) -> str:
    """Render the current scene as it is set up and write the EXR atomically (a temp file, then a rename).

    Args:
        out_exr: Destination ``.exr``; its folder must exist.

    Returns:
        The absolute path of the written EXR.
    """
    bpy = _import_bpy()
    out = os.path.abspath(os.fspath(out_exr))
    if not out.lower().endswith(".exr"):
        raise ValueError(f"{out}: the render output must be an .exr file")
    folder = os.path.dirname(out)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: output folder does not exist")
    scene = bpy.context.scene
    tmp = os.path.join(folder, f".{os.path.basename(out)[:-4]}.tmp{uuid.uuid4().hex[:8]}.exr")
    try:
        scene.render.filepath = tmp
        bpy.ops.render.render(write_still=True, scene=scene.name)
        _stats["renders"] += 1
        if not os.path.isfile(tmp):
            raise RuntimeError(f"Cycles wrote no image to {tmp}")
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    return out


def render_current_scene_array() -> Any:
    """Render the current scene as it is set up and return the image (float32 ``HxWx3`` linear RGB).

    Render Result pixels can't be read headless, so this goes through a temporary EXR, deleted afterwards.
    """
    from render_eval import scene as sc

    path = render_current_scene(os.path.join(sc.temp_dir(), f"render-{uuid.uuid4().hex}.exr"))
    try:
        return sc.read_exr(path)
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


def render_panorama(hdr: Any, settings: RenderSettings | None = None, out_exr: str | os.PathLike | None = None,
                    seed: int | None = None) -> Any:
    """Render the four-ball scene lit by a panorama.

    Args:
        hdr: A panorama file (EXR/HDR) or a float ``HxWx3`` linear array.
        settings: Render settings; defaults if None.
        out_exr: Also keep the render as this ``.exr`` (written atomically); otherwise a temp file is deleted.
        seed: Overrides ``settings.seed`` for this render (the scene is not rebuilt).

    Returns:
        float32 ``HxWx3`` linear RGB (``H, W = settings.resolution[::-1]``).
    """
    from render_eval.scene import read_exr

    path = render_to_file(hdr, settings, out_exr, seed)
    try:
        return read_exr(path)
    finally:
        if out_exr is None:
            with contextlib.suppress(OSError):
                os.remove(path)


def panorama_digest(hdr: Any) -> str:
    """sha256 of a panorama's content: the file's bytes, or an array's shape and float32 pixel bytes."""
    h = hashlib.sha256()
    if isinstance(hdr, str | os.PathLike):
        h.update(b"file\0")
        with open(hdr, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    else:
        import numpy as np

        a = np.ascontiguousarray(hdr, dtype=np.float32)
        h.update(f"array\0float32\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class RenderCache:
    """Renders stored by content hash in ``folder`` as ``<key>.exr`` + ``<key>.png``.

    The key is sha256 of (panorama content, settings digest with the effective seed, Blender version), so the same
    panorama rendered with the same settings is rendered once, whoever asks.

    Attributes:
        folder: The cache folder (created if missing).
        hits: Renders served from the cache by this object.
        misses: Renders made by this object.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = os.path.abspath(os.fspath(folder))
        os.makedirs(self.folder, exist_ok=True)
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(hdr: Any, settings: RenderSettings | None = None, seed: int | None = None) -> str:
        """The cache key of rendering ``hdr`` with ``settings`` (``seed`` overriding ``settings.seed``)."""
        bpy = _import_bpy()
        settings = settings or RenderSettings()
        if seed is not None:
            settings = settings.replace(seed=int(seed))
        h = hashlib.sha256(_CACHE_VERSION)
        for part in (panorama_digest(hdr), settings.digest(), bpy.app.version_string):
            h.update(b"\0" + part.encode())
        return h.hexdigest()

    def paths(self, key: str) -> tuple[str, str]:
        """``(exr_path, png_path)`` of a key."""
        return os.path.join(self.folder, f"{key}.exr"), os.path.join(self.folder, f"{key}.png")

    def __contains__(self, key: str) -> bool:
        return all(os.path.isfile(p) for p in self.paths(key))

    def render(self, hdr: Any, settings: RenderSettings | None = None, seed: int | None = None) -> Any:
        """The render of ``hdr`` (float32 ``HxWx3`` linear), from the cache or rendered and stored.

        Args:
            hdr: A panorama file (EXR/HDR) or a float ``HxWx3`` linear array.
            settings: Render settings; defaults if None.
            seed: Overrides ``settings.seed``.
        """
        from hdr_core.io import read_hdr, write_ldr
        from render_eval.display import display_encode

        settings = settings or RenderSettings()
        key = self.key(hdr, settings, seed)
        exr, png = self.paths(key)
        if os.path.isfile(exr):
            img = read_hdr(exr)
            if not os.path.isfile(png):
                write_ldr(png, display_encode(img))
            self.hits += 1
            return img
        for stale in glob.glob(os.path.join(self.folder, f".{key}.tmp*")):  # left by a killed run
            with contextlib.suppress(OSError):
                os.remove(stale)
        tmp = os.path.join(self.folder, f".{key}.tmp{uuid.uuid4().hex[:8]}.exr")
        try:
            img = render_panorama(hdr, settings, out_exr=tmp, seed=seed)
            write_ldr(png, display_encode(img))
            os.replace(tmp, exr)  # the EXR appears last: it marks a complete entry
        finally:
            with contextlib.suppress(OSError):
                os.remove(tmp)
        self.misses += 1
        return img


def noise_floor(hdr: Any, settings: RenderSettings | None = None, seeds: tuple[int, int] = (0, 1)) -> dict[str, Any]:
    """How much two renders differ that differ only by the seed: the best score any prediction can reach.

    Args:
        hdr: A panorama file (EXR/HDR) or a float ``HxWx3`` linear array.
        settings: Render settings; defaults if None.
        seeds: The two seeds.

    Returns:
        ``psnr`` (dB, display-encoded renders, data range 1), ``mse`` (linear), ``seeds``, ``samples`` and
        ``seconds`` (mean wall time per render).
    """
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio

    from render_eval.display import display_encode

    settings = settings or RenderSettings()
    t0 = time.perf_counter()
    a, b = (render_panorama(hdr, settings, seed=s) for s in seeds)
    seconds = (time.perf_counter() - t0) / 2
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    psnr = float(peak_signal_noise_ratio(display_encode(a), display_encode(b), data_range=1.0))
    return {"psnr": psnr, "mse": mse, "seeds": tuple(seeds), "samples": settings.samples, "seconds": seconds}
