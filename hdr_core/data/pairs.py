"""On-the-fly LDR/HDR training pairs from HDR panoramas (paper §5.2; method.md §1).

One pair: augment the panorama (azimuth, flip, exposure, white balance) -> optionally a perspective crop
(stage 1) or the whole panorama at the working size (stage 2) -> an LDR style (:mod:`hdr_core.looks`: the
virtual camera by default, or one drawn per pair from ``PairConfig.ldr_styles``) -> 8-bit LDR -> linearised
LDR -> HDR calibrated against it (Eq. 1). Segmentation labels (Eq. 6) are computed from the calibrated HDR
batch in the training step (:func:`hdr_core.masks.segmentation_labels`).

Every item is a pure function of ``(seed, index)``: the same index always gives the same pair, in any worker
process and after a resume, which is what makes resumed and distributed training exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hdr_core.augment import apply_pano_augment, draw_inserted_light, draw_pano_augment, insert_light
from hdr_core.calibration import calibrate
from hdr_core.camera import CameraConfig, draw_camera, expose, virtual_camera
from hdr_core.color import ldr_to_linear
from hdr_core.data.splits import HDR_SUFFIXES
from hdr_core.io import read_hdr
from hdr_core.lighting import light_share
from hdr_core.looks import LDR_STYLES, make_ldr
from hdr_core.projections import perspective_crop, standard_views
from hdr_core.resize import resize_to


@dataclass
class PairConfig:
    """How pairs are made."""

    mode: str = "crop"  #: "crop" (stage 1: perspective crops) or "pano" (stage 2: whole panoramas)
    crop_size: int = 256
    crop_fov: tuple[float, float] = (60.0, 100.0)  #: horizontal field of view range, degrees
    crop_pitch: tuple[float, float] = (-30.0, 60.0)  #: elevation range, degrees
    pano_height: int = 256  #: stage-2 panoramas are pano_height x 2*pano_height
    store_height: int = 512  #: panoramas are kept in memory at this height (crops sample from it)
    camera: CameraConfig = field(default_factory=CameraConfig)
    #: LDR styles and their mixing weights (one style drawn per pair); the default is the paper's virtual camera only
    ldr_styles: dict[str, float] = field(default_factory=lambda: {"virtual": 1.0})
    #: make every pair in this one style instead (validation per style)
    style: str | None = None
    #: exposure error in stops, ``(lo, hi)``: each pair's LDR is exposed ``2 ** U(lo, hi)`` times what its camera or
    #: look metered (its own generator ``default_rng([seed, i, 2])``, so every other draw stays the same; a fixed
    #: value when ``lo == hi``; ``(0, 0)`` = as metered, the paper's pairs)
    exposure_ev: tuple[float, float] = (0.0, 0.0)
    #: probability that a pair's panorama gets an inserted light (:func:`hdr_core.augment.insert_light`: a sun or
    #: lamp after the azimuth/exposure/white-balance augmentation, before the crop and the LDR), drawn with its own
    #: generator ``default_rng([seed, i, 3])`` so every other draw stays the same; 0 = the paper's pairs
    insert_light: float = 0.0
    #: ``(lo, hi)``: an inserted light holds ``U(lo, hi)`` of its panorama's light
    insert_light_share: tuple[float, float] = (0.3, 0.75)

    def __post_init__(self) -> None:
        check_styles(self.ldr_styles)
        if self.style is not None and self.style not in LDR_STYLES:
            raise ValueError(f"unknown LDR style {self.style!r}; valid styles: {', '.join(LDR_STYLES)}")
        if len(self.exposure_ev) != 2 or not all(np.isfinite(float(v)) for v in self.exposure_ev) \
                or float(self.exposure_ev[0]) > float(self.exposure_ev[1]):
            raise ValueError(f"exposure_ev: expected (lo, hi) with lo <= hi, got {self.exposure_ev}")
        if not 0.0 <= float(self.insert_light) <= 1.0:
            raise ValueError(f"insert_light: expected a probability in [0, 1], got {self.insert_light}")
        lo, hi = (float(v) for v in self.insert_light_share) if len(self.insert_light_share) == 2 else (1.0, 0.0)
        if not 0.0 <= lo <= hi < 1.0:
            raise ValueError(f"insert_light_share: expected (lo, hi) with 0 <= lo <= hi < 1, got "
                             f"{self.insert_light_share}")


def check_styles(weights: dict[str, float]) -> None:
    """Raise ValueError unless ``weights`` maps known LDR styles to non-negative weights with a positive sum."""
    unknown = sorted(set(weights) - set(LDR_STYLES))
    if unknown:
        raise ValueError(f"ldr_styles: unknown style(s) {unknown}; valid styles: {', '.join(LDR_STYLES)}")
    if any(float(w) < 0 for w in weights.values()) or sum(float(w) for w in weights.values()) <= 0:
        raise ValueError(f"ldr_styles: weights must be >= 0 with a positive sum, got {weights}")


def find_hdr_files(sources: list[str | Path]) -> list[Path]:
    """All ``.hdr``/``.exr`` files in the given folders (recursively) or given directly, sorted."""
    files: list[Path] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            files += [f for f in p.rglob("*") if f.suffix.lower() in HDR_SUFFIXES and f.is_file()]
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return sorted(set(files))


def resize_pano(hdr: np.ndarray, height: int) -> np.ndarray:
    """Resize an HDR panorama to ``height x 2*height`` (area filter when shrinking)."""
    return resize_to(hdr, height, 2 * height)


def load_panoramas(files: list[Path], height: int) -> list[np.ndarray]:
    """Read HDR panoramas and resize each to ``height x 2*height`` float32."""
    return [resize_pano(read_hdr(f), height).astype(np.float32) for f in files]


def scene_light_weights(panoramas: list[np.ndarray], strength: float) -> np.ndarray:
    """Sampling weights ``1 + strength * s`` for HDR panoramas (``H x W x 3``), where ``s`` is the share of a
    panorama's light held by its brightest light (:func:`hdr_core.lighting.light_share`): with ``strength > 0``
    panoramas lit by a sun or a lamp are drawn more often than evenly lit ones (a clear sky with the sun, s ~ 0.7,
    ``1 + 0.7 * strength`` times as often as uniform light); 0 gives equal weights."""
    if not np.isfinite(strength) or strength < 0:
        raise ValueError(f"scene light weight must be a number >= 0, got {strength}")
    shares = [float(light_share(torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1)))[None].double())[0])
              for p in panoramas]
    return 1.0 + float(strength) * np.asarray(shares, dtype=np.float64)


class PairDataset(torch.utils.data.Dataset):
    """A virtual, deterministic stream of training pairs over a list of panoramas.

    Item ``i`` is drawn with ``np.random.default_rng([seed, i])``: scene, augmentation, view and camera.
    Validation sets pass ``views="standard"`` to cycle the paper's 6 azimuths x 3 elevations instead of random
    views. ``scenes="cycle"`` makes item ``i``'s panorama ``i % len(panoramas)`` instead of a random one (the draw is
    still made, so every other number of the item is the same), and the standard views then turn once per round of
    panoramas: every panorama counts equally in a validation set of ``k * len(panoramas)`` items.

    The LDR style of item ``i`` is ``config.style`` if set, else drawn from ``config.ldr_styles`` with its own
    generator ``default_rng([seed, i, 1])`` (so the virtual camera's pairs are the same with or without a mix;
    with one style nothing is drawn). The style's own random numbers come from the item's generator.

    Returns dicts with ``ldr`` (``3xHxW`` linear LDR in [0, 1]), ``hdr`` (``3xHxW`` calibrated HDR),
    ``scene`` (index into the panorama list), ``style`` (index into :data:`hdr_core.looks.LDR_STYLES`), and what
    methods with intermediate supervision (SingleHDR, HDRCNN) need: ``display`` (the camera's display values before
    8-bit quantisation), ``hdr_camera`` (the HDR in the camera's linear sensor units after exposure and black
    level, 1 = white point, not clipped: ``clip(hdr_camera, 0, 1)`` is what the response curve saw) and ``crf``
    (``[sigma, n]`` of the response ``(1 + s) v^n / (v^n + s)``). For the other styles ``display`` is the 8-bit
    LDR / 255, ``hdr_camera`` the calibrated HDR, and ``crf`` is NaN (they have no sigmoid response).
    ``extras=False`` leaves those three out (networks trained with the paper's losses never read them); ``ldr``,
    ``hdr``, ``scene`` and ``style`` are the same bits either way.

    ``scene_weights`` (one non-negative number per panorama): item ``i``'s panorama is drawn with these relative
    probabilities instead of uniformly (:func:`scene_light_weights`); None = uniform, the paper's pairs bit for bit.
    Either way the panorama is the item's first draw, one number of its generator, so the rest of the item's draws
    are made the same way (though from a different state of the generator than uniform draws leave it in).
    """

    def __init__(self, panoramas: list[np.ndarray], config: PairConfig, length: int, seed: int = 0,
                 views: str = "random", augment: bool = True, extras: bool = True, scenes: str = "random",
                 scene_weights: list[float] | np.ndarray | None = None):
        if not panoramas:
            raise ValueError("PairDataset: no panoramas")
        self._scene_p = None
        if scene_weights is not None:
            w = np.asarray(scene_weights, dtype=np.float64)
            if w.shape != (len(panoramas),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
                raise ValueError(f"PairDataset: scene_weights must be {len(panoramas)} finite numbers >= 0 with a "
                                 f"positive sum, got {np.asarray(scene_weights).tolist()}")
            self._scene_p = w / w.sum()
        if config.mode not in ("crop", "pano"):
            raise ValueError(f"PairDataset: mode must be 'crop' or 'pano', got {config.mode!r}")
        if scenes not in ("random", "cycle"):
            raise ValueError(f"PairDataset: scenes must be 'random' or 'cycle', got {scenes!r}")
        self.config, self.length, self.seed, self.views, self.augment = config, length, seed, views, augment
        self.scenes = scenes
        self.extras = extras
        h = config.pano_height if config.mode == "pano" else config.store_height
        self.panoramas = [resize_pano(p, h) for p in panoramas]
        self._standard = standard_views()
        names = [s for s, w in config.ldr_styles.items() if float(w) > 0]
        weights = np.array([float(config.ldr_styles[s]) for s in names])
        self._styles, self._weights = names, weights / weights.sum()

    def style_of(self, i: int) -> str:
        """The LDR style of item ``i``."""
        if self.config.style is not None:
            return self.config.style
        if len(self._styles) == 1:
            return self._styles[0]
        return self._styles[int(np.random.default_rng([self.seed, int(i), 1]).choice(len(self._styles),
                                                                                     p=self._weights))]

    def __len__(self) -> int:
        return self.length

    def exposure_ev_of(self, i: int) -> float:
        """The exposure error (stops) of item ``i``'s LDR (:attr:`PairConfig.exposure_ev`)."""
        lo, hi = (float(v) for v in self.config.exposure_ev)
        if lo == hi:
            return lo
        return float(np.random.default_rng([self.seed, int(i), 2]).uniform(lo, hi))

    def inserted_light_of(self, i: int) -> dict | None:
        """The light inserted into item ``i``'s panorama (:func:`hdr_core.augment.draw_inserted_light`), or None
        (:attr:`PairConfig.insert_light`)."""
        c = self.config
        if not c.insert_light:
            return None
        rng = np.random.default_rng([self.seed, int(i), 3])
        if rng.random() >= float(c.insert_light):
            return None
        return draw_inserted_light(rng, tuple(float(v) for v in c.insert_light_share))

    def _view(self, rng: np.random.Generator, i: int) -> tuple[float, float, float]:
        c = self.config
        if self.views == "standard":
            turn = i // len(self.panoramas) if self.scenes == "cycle" else i
            yaw, pitch = self._standard[turn % len(self._standard)]
            return float(yaw), float(pitch), float(np.mean(c.crop_fov))
        return float(rng.uniform(0, 360)), float(rng.uniform(*c.crop_pitch)), float(rng.uniform(*c.crop_fov))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self._make(i)[0]

    def params(self, i: int) -> dict:
        """Everything drawn for item ``i``, JSON-serialisable: ``scene`` (panorama index), ``augment`` (azimuth
        shift, mirror, exposure scale, white-balance gains; absent with ``augment=False``), ``light`` (an inserted
        light, :attr:`PairConfig.insert_light`; absent when none), ``view`` (yaw, pitch, fov
        of a stage-1 crop), ``style`` and ``ldr`` (the virtual camera's draws or the look's parameters,
        :func:`hdr_core.looks.make_ldr`). It replays the item (same generator, same order), so it costs one pair."""
        return self._make(i)[1]

    def _draw_layout(self, rng: np.random.Generator, i: int) -> dict:
        """Item ``i``'s first draws, in order: ``scene``, ``augment`` (:func:`hdr_core.augment.draw_pano_augment`,
        when augmenting) and ``view`` (``(yaw, pitch, fov)``, stage-1 crops). The camera or look draws follow."""
        n = len(self.panoramas)
        d: dict = {"scene": int(rng.integers(n)) if self._scene_p is None else int(rng.choice(n, p=self._scene_p))}
        if self.scenes == "cycle":
            d["scene"] = int(i) % n
        if self.augment:
            d["augment"] = draw_pano_augment(rng, self.panoramas[d["scene"]].shape[1])
        if self.config.mode == "crop":
            d["view"] = self._view(rng, i)
        return d

    def _make(self, i: int) -> tuple[dict[str, torch.Tensor], dict]:
        rng = np.random.default_rng([self.seed, int(i)])
        layout = self._draw_layout(rng, i)
        scene = layout["scene"]
        hdr = self.panoramas[scene]
        params: dict = {"item": int(i), "scene": scene}
        if "augment" in layout:
            hdr = apply_pano_augment(hdr, layout["augment"])
            params["augment"] = {**layout["augment"], "wb": [float(g) for g in layout["augment"]["wb"]]}
        light = self.inserted_light_of(i)
        if light is not None:
            hdr = insert_light(np.asarray(hdr, dtype=np.float32), light)
            params["light"] = light
        if "view" in layout:
            yaw, pitch, fov = layout["view"]
            params["view"] = {"yaw": yaw, "pitch": pitch, "fov": fov}
            t = torch.from_numpy(np.ascontiguousarray(hdr)).permute(2, 0, 1)[None]
            hdr = perspective_crop(t, yaw, pitch, fov, self.config.crop_size)[0].permute(1, 2, 0).numpy()
        hdr = np.maximum(hdr, 0.0).astype(np.float32)
        style = self.style_of(i)
        params["style"] = style
        extra: dict[str, np.ndarray | list[float]] = {}
        ev = self.exposure_ev_of(i)
        if style == "virtual":
            ldr, cam = virtual_camera(hdr, rng, self.config.camera, exposure_ev=ev)
            params["ldr"] = {"style": "virtual", **cam.to_dict(), **({"exposure_ev": ev} if ev else {})}
            lin = ldr_to_linear(ldr.astype(np.float32) / 255.0)
            hdr_cal = calibrate(hdr, lin)
            if self.extras:
                black = 2.0 ** (-cam.dynamic_range_ev)
                extra = {"display": expose(hdr, cam.exposure, cam.dynamic_range_ev, cam.sigma, cam.n),
                         "hdr_camera": np.maximum(hdr * cam.exposure - black, 0.0) / (1.0 - black),
                         "crf": [cam.sigma, cam.n]}
        else:
            ldr, params["ldr"] = make_ldr(hdr, style, rng, exposure_ev=ev)
            display = ldr.astype(np.float32) / 255.0
            lin = ldr_to_linear(display)
            hdr_cal = calibrate(hdr, lin)
            if self.extras:
                extra = {"display": display, "hdr_camera": hdr_cal, "crf": [float("nan"), float("nan")]}
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))  # noqa: E731
        item = {"ldr": to_t(lin), "hdr": to_t(hdr_cal), "scene": torch.tensor(scene),
                "style": torch.tensor(LDR_STYLES.index(style))}
        if extra:
            item.update(display=to_t(extra["display"]), hdr_camera=to_t(extra["hdr_camera"]),
                        crf=torch.tensor(extra["crf"], dtype=torch.float32))
        return item, params


class PairPool(torch.utils.data.Dataset):
    """Items ``0..size-1`` of a :class:`PairDataset`, made once and kept as stacked tensors; item ``i`` is pair
    ``i % size`` (a stream of ``length`` items that cycles through the pool: every pair is seen ``length / size``
    times).

    ``PairPool(ds, size)[i]`` equals ``ds[i % size]`` bit for bit, so with ``size >= len(ds)`` training on the pool is
    training on ``ds``. The pairs are made by a DataLoader with ``workers`` processes; ``device`` holds the pool
    (a GPU's memory: the training loop then only indexes it). ``slots`` (default: all of ``0..size-1``) makes only
    those pairs: a DDP rank that reads only some slots makes only its own (items of other slots raise ``KeyError``).
    """

    def __init__(self, dataset: PairDataset, size: int, workers: int = 0, device: str | torch.device = "cpu",
                 chunk: int = 32, slots=None):
        if size < 1:
            raise ValueError(f"PairPool: size must be >= 1, got {size}")
        self.size, self.length = int(size), len(dataset)
        made = sorted(set(range(self.size) if slots is None else (int(j) for j in slots)))
        if not made or made[0] < 0 or made[-1] >= self.size:
            raise ValueError(f"PairPool: slots must be a non-empty subset of 0..{self.size - 1}")
        self.rows = {j: r for r, j in enumerate(made)}
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, made), batch_size=chunk,
                                             num_workers=workers)
        parts = list(loader)
        self.tensors = {k: torch.cat([p[k] for p in parts]).to(device) for k in parts[0]}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        slot = int(i) % self.size
        if slot not in self.rows:
            raise KeyError(f"PairPool: item {i} is pair {slot}, which this pool did not make (slots given)")
        r = self.rows[slot]
        return {k: v[r] for k, v in self.tensors.items()}

    def nbytes(self) -> int:
        """Memory the pool holds."""
        return sum(v.numel() * v.element_size() for v in self.tensors.values())


class DevicePairs:
    """The virtual camera's pairs of a :class:`PairDataset`, made on the training device as batched torch ops.

    Every random number is drawn exactly as ``PairDataset.__getitem__`` draws it (the same numpy generator per
    item, in the same order: scene, augmentation, view, camera; an inserted light from its own generator), and then
    the work runs batched on ``device``:
    azimuth shift and mirror (gathers), exposure and white balance (the same float32 products), an inserted light
    (:func:`hdr_core.augment.insert_light`, the same function), the perspective crop
    (:func:`hdr_core.projections.perspective_crop`), the mean-value auto-exposure (bisection in float64 on the same
    strided metering pixels), exposure, black level, response, 8-bit rounding, linearisation and calibration (Eq. 1).
    So ``batch(indices)`` matches ``default_collate([dataset[i] for i in indices])``: the same scenes and views, the
    exposures to float64 rounding, the 8-bit codes but for the rare pixel a float32 rounding moves across a code
    boundary (by one code), the HDR to float32 rounding (``tests/test_train_speed.py``).

    Only the ``virtual`` style without JPEG (the paper's pairs); :meth:`supports` says whether a config qualifies.
    """

    def __init__(self, dataset: PairDataset, device: str | torch.device = "cpu"):
        if not self.supports(dataset):
            raise ValueError("DevicePairs: only the virtual camera without JPEG or exposure error (ldr_styles "
                             "{virtual: 1}, jpeg_prob 0, exposure_ev [0, 0])")
        self.ds, self.device = dataset, torch.device(device)
        self.panoramas = [torch.from_numpy(np.ascontiguousarray(p.transpose(2, 0, 1))).to(self.device)
                          for p in dataset.panoramas]

    @staticmethod
    def supports(dataset: PairDataset) -> bool:
        return dataset._styles == ["virtual"] and dataset.config.style in (None, "virtual") and \
            dataset.config.camera.jpeg_prob == 0 and tuple(dataset.config.exposure_ev) == (0.0, 0.0)

    def draws(self, i: int) -> dict:
        """The random numbers of item ``i``, drawn as :class:`PairDataset` draws them."""
        ds, cam = self.ds, self.ds.config.camera
        rng = np.random.default_rng([ds.seed, int(i)])
        layout = ds._draw_layout(rng, i)
        d: dict = {"scene": layout["scene"], **layout.get("augment", {})}
        if "augment" in layout:
            d["scale"], d["wb"] = np.float32(d["scale"]), d["wb"].astype(np.float32)  # as the float32 products
        if "view" in layout:
            d["view"] = layout["view"]
        d["light"] = ds.inserted_light_of(i)
        c = draw_camera(rng, cam)  # its JPEG numbers are drawn, never used here (supports: no JPEG)
        d["dr"], d["sigma"], d["n"] = c["dynamic_range_ev"], c["sigma"], c["n"]
        return d

    def _hdr(self, d: dict) -> torch.Tensor:
        x = self.panoramas[d["scene"]]
        if "shift" in d:
            x = torch.roll(x, d["shift"], dims=-1)
            if d["flip"]:
                x = x.flip(-1)
            x = x * torch.tensor(d["scale"], device=self.device)
            x = x * torch.as_tensor(d["wb"], device=self.device).view(3, 1, 1)
        if d.get("light") is not None:
            x = insert_light(x, d["light"])
        if "view" in d:
            yaw, pitch, fov = d["view"]
            x = perspective_crop(x[None], yaw, pitch, fov, self.ds.config.crop_size)[0]
        return x.clamp_min(0.0)

    def batch(self, indices) -> dict[str, torch.Tensor]:
        """``ldr`` (linear LDR), ``hdr`` (calibrated), ``scene``, ``style`` of the items, ``Bx3xHxW`` on the device."""
        draws = [self.draws(i) for i in indices]
        hdr = torch.stack([self._hdr(d) for d in draws])
        f64 = {"dtype": torch.float64, "device": self.device}
        dr, sigma, n = (torch.tensor([d[k] for d in draws], **f64).view(-1, 1, 1) for k in ("dr", "sigma", "n"))
        exposure = self.auto_exposure(hdr, dr, sigma, n)
        black = 2.0 ** (-dr)
        # the display image in float32, as numpy computes it for a float32 HDR and python-float parameters (each
        # constant rounded to float32 once, from float64)
        f32 = lambda t: t.float().view(-1, 1, 1, 1)  # noqa: E731
        v = (hdr * f32(exposure)).clamp(0.0, 1.0)
        v = ((v - f32(black)) / f32(1.0 - black)).clamp(0.0, 1.0)
        vn = v.pow(f32(n))
        display = f32(1.0 + sigma) * vn / (vn + f32(sigma))
        code = torch.round(display.double() * 255.0).clamp(0, 255)
        lin = ldr_to_linear(code.float() / 255.0)
        return {"ldr": lin, "hdr": calibrate(hdr, lin, channel_axis=1),
                "scene": torch.tensor([d["scene"] for d in draws], device=self.device),
                "style": torch.zeros(len(draws), dtype=torch.int64, device=self.device)}

    def auto_exposure(self, hdr: torch.Tensor, dr: torch.Tensor, sigma: torch.Tensor, n: torch.Tensor,
                      iters: int = 32) -> torch.Tensor:
        """:func:`hdr_core.camera.auto_exposure` for a batch: the same strided metering pixels, bisection in
        float64. ``dr``, ``sigma``, ``n``: ``Bx1x1``. Returns the exposures, ``(B,)`` float64."""
        cam = self.ds.config.camera
        flat = hdr.permute(0, 2, 3, 1).reshape(hdr.shape[0], -1, 3)  # numpy's HxWx3 reshape(-1, 3) order
        step = max(1, flat.shape[1] // cam.metering_pixels)
        sample = flat[:, ::step].double()
        peak = sample.amax(dim=(1, 2))
        if not torch.isfinite(peak).all() or (peak <= 0).any():
            raise ValueError("virtual camera: an HDR image is black or not finite")
        lo, hi = torch.log2(1.0 / peak) - 30.0, torch.log2(1.0 / peak) + 60.0
        black = 2.0 ** (-dr)
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            v = (sample * (2.0 ** mid).view(-1, 1, 1)).clamp(0.0, 1.0)
            v = ((v - black) / (1.0 - black)).clamp(0.0, 1.0)
            vn = v.pow(n)
            mean = ((1.0 + sigma) * vn / (vn + sigma)).mean(dim=(1, 2))
            below = mean < cam.target_mean
            lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
        return 2.0 ** (0.5 * (lo + hi))
