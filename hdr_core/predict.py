"""HDR prediction: ``python -m hdr_core.predict INPUT... -o OUT_DIR [options]`` and the :class:`Predictor` API.

LDR images (or folders of them) in, half-float EXR out (``--precision float``: 32-bit), calibrated to the input
(Eq. 1): unsaturated pixels keep the LDR's linear values, so swapping the LDR for the HDR keeps diffuse brightness
and adds the missing light.

The network runs at a working size (default 1024x512 for panoramas); for inputs larger than that the predicted
HDR/LDR gain is upsampled and applied to the full-resolution linear LDR, so texture detail is not lost. That
full-resolution step runs in bands of rows (:data:`BAND_ROWS`, on ``threads`` threads), so an 8K photo needs no
full-size temporaries beyond the linear input and the output; the pixels do not depend on the band height.
Backends: ONNX Runtime (default; needs no torch) or torch. panoLANet needs a 2:1 equirectangular input:
anything else is an error unless ``--fit crop|pad|stretch`` says how to make it 2:1. A partial photo sphere whose
metadata says where it lies on the sphere (GPano XMP, :mod:`hdr_core.gpano`) is placed there first, its uncovered
rest extended from its edges, and the output is the whole panorama.

Bad files are reported on stderr (one line each) and skipped; the exit code is 1 if any input failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdr_core.calibration import TAU, calibrate, scale_from_sums
from hdr_core.color import ldr_to_linear, linear_to_srgb
from hdr_core.errors import ImageError
from hdr_core.resize import linear_taps, resize

LDR_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
#: Shipped weights live here, one folder per model (model.safetensors + model.json [+ model.onnx]).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "panolanet_w24"
#: Rows per band of the full-resolution step (about 25 MB of temporaries per band at 8K).
BAND_ROWS = 256
#: Largest half float: HDR values are clipped to it (also in 32-bit output, so both precisions agree).
HALF_MAX = 65504.0
#: ``ldr_to_linear`` of every 8-bit value, computed exactly as for float inputs ``v / 255``.
_LINEAR_8BIT = ldr_to_linear(np.arange(256, dtype=np.float32) / np.float32(255))


def display_to_linear(ldr: np.ndarray) -> np.ndarray:
    """``ldr_to_linear`` of display values: float in [0, 1], or ``uint8`` (``v / 255``, by table), as float32."""
    if ldr.dtype == np.uint8:
        return _LINEAR_8BIT[ldr]
    return ldr_to_linear(ldr.astype(np.float32))


@dataclass
class Prediction:
    """One prediction at the input's resolution."""

    hdr: np.ndarray  #: HxWx3 float32 linear HDR, calibrated to the input
    ldr_linear: np.ndarray  #: HxWx3 the linearised input
    merge_mask: np.ndarray | None  #: HxW in [0, 1] (panoLANet) or None
    seconds: float
    note: str = ""  #: what was done to the input before predicting (a partial photo sphere placed on the sphere)

    @property
    def peak(self) -> float:
        return float(self.hdr.max())

    @property
    def dynamic_range_stops(self) -> float:
        lo = max(float(np.percentile(self.hdr.mean(-1), 0.1)), 1e-6)
        return float(np.log2(max(self.peak, lo) / lo))


def default_weights(model: str = DEFAULT_MODEL) -> Path:
    folder = WEIGHTS_DIR / model
    if not (folder / "model.json").is_file():
        raise FileNotFoundError(f"{folder}: no shipped weights for {model!r}; pass --weights CHECKPOINT_DIR")
    return folder


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(W, H)``, both positive integers; ``ValueError`` otherwise."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"expected WxH with positive integers, got {text!r}")
    return int(parts[0]), int(parts[1])


def fit_to_2to1(img: np.ndarray, how: str) -> np.ndarray:
    """Make an image 2:1: ``crop`` (centre), ``pad`` (its top and bottom rows repeated / its columns wrapped round)
    or ``stretch``."""
    h, w = img.shape[:2]
    if w == 2 * h:
        return img
    if how == "stretch":
        return resize(img, (max(w, 2 * h), max(w, 2 * h) // 2), "area")
    if how == "crop":
        if w > 2 * h:
            x0 = (w - 2 * h) // 2
            return img[:, x0: x0 + 2 * h]
        h2 = w // 2
        y0 = (h - h2) // 2
        return img[y0: y0 + h2, : 2 * h2]
    if how == "pad":
        if w > 2 * h:
            extra = w // 2 - h
            return np.pad(img, ((extra // 2, extra - extra // 2), (0, 0), (0, 0)), mode="edge")
        w2 = 2 * h
        return np.pad(img, ((0, 0), (0, w2 - w), (0, 0)), mode="wrap")
    raise ValueError(f"fit must be crop, pad or stretch, got {how!r}")


class Predictor:
    """Loads a model once and predicts HDR images from LDR images.

    Args:
        weights: a checkpoint folder (``model.json`` + ``model.safetensors`` and/or ``model.onnx``), or an
            ``.onnx`` file exported by :mod:`hdr_core.export`. Default: the shipped ``model`` weights.
        model: registered model name, used to find shipped weights when ``weights`` is None.
        backend: ``onnx`` (ONNX Runtime, default), ``torch``, or ``auto`` (onnx if importable).
        size: working size ``(width, height)``; None = 1024x512 for panoramas, the input size (capped at 1024
            wide) for LANet on other aspect ratios.
        threads: CPU threads for the backend (None = library default).
        band_rows: rows per band of the full-resolution step (memory bound; the result does not depend on it).
    """

    def __init__(self, weights: str | os.PathLike | None = None, model: str = DEFAULT_MODEL, backend: str = "onnx",
                 size: tuple[int, int] | None = None, threads: int | None = None, band_rows: int = BAND_ROWS):
        path = Path(weights) if weights is not None else default_weights(model)
        if not path.exists():
            raise FileNotFoundError(f"{path}: weights not found")
        if band_rows < 1:
            raise ValueError(f"band_rows must be >= 1, got {band_rows}")
        self.size, self.threads, self.band_rows = size, threads, band_rows
        if backend == "auto":
            try:
                import onnxruntime  # noqa: F401

                backend = "onnx"
            except ImportError:
                backend = "torch"
        if backend not in ("onnx", "torch"):
            raise ValueError(f"backend must be onnx, torch or auto, got {backend!r}")
        self.backend = backend
        self.meta = self._load(path)
        self.is_pano = self.meta["model"].startswith("pano")

    # ------------------------------------------------------------------------------------------- loading
    def _load(self, path: Path) -> dict:
        if self.backend == "torch":
            import torch

            from hdr_core.checkpoint import load_model, read_meta

            if path.suffix == ".onnx":
                raise ValueError(f"{path}: the torch backend needs a checkpoint folder, not an .onnx file")
            if self.threads:
                torch.set_num_threads(self.threads)
            self._torch_model = load_model(path).eval()
            return read_meta(path)
        import onnxruntime as ort

        onnx_path = path if path.suffix == ".onnx" else self._onnx_for(path)
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        if "model" not in meta:
            raise ValueError(f"{onnx_path}: not an hdr_core export (no 'model' metadata)")
        self._pad_multiple = int(meta.get("pad_multiple", "1"))
        if "input_size" in meta:  # a panoLANet graph has one fixed input size
            self.size = tuple(int(v) for v in meta["input_size"].split("x"))
        return {"model": meta["model"], "config": json.loads(meta.get("config", "{}"))}

    @staticmethod
    def _onnx_for(folder: Path) -> Path:
        """``folder/model.onnx`` if present, else an export cached by weight hash (needs torch)."""
        if (folder / "model.onnx").is_file():
            return folder / "model.onnx"
        from hdr_core.checkpoint import load_model, weight_files

        h = hashlib.sha256()
        for f in weight_files(folder):
            h.update(f.read_bytes())
        digest = h.hexdigest()[:16]
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lanet-hdr" / f"{digest}.onnx"
        if not cache.is_file():
            from hdr_core.export import export_onnx

            cache.parent.mkdir(parents=True, exist_ok=True)
            export_onnx(load_model(folder), cache)
        return cache

    # ------------------------------------------------------------------------------------------- inference
    def working_size(self, h: int, w: int) -> tuple[int, int]:
        """``(width, height)`` the network runs at for an ``h x w`` input."""
        if self.size is not None:
            return self.size
        if self.is_pano or w == 2 * h:
            return (1024, 512)
        s = min(1.0, 1024 / max(h, w))
        return (max(2, round(w * s / 2) * 2), max(2, round(h * s / 2) * 2))

    def run_network(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``1x3xHxW`` network input in [-1, 1] -> (log HDR ``1x3xHxW``, merge mask ``1x1xHxW`` or None)."""
        if self.backend == "onnx":
            h, w = x.shape[-2:]
            m = self._pad_multiple
            ph, pw = (-h) % m, (-w) % m
            if ph or pw:  # reflect-pad like the torch model does inside its forward, then crop back
                mode = "reflect" if ph < h and pw < w else "edge"
                x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
            log_hdr, mask = self._session.run(None, {"x": x.astype(np.float32)})
            log_hdr, mask = log_hdr[..., :h, :w], mask[..., :h, :w]
        else:
            import torch

            with torch.inference_mode():
                out = self._torch_model(torch.from_numpy(x.astype(np.float32)))
            log_hdr = out.log_hdr.numpy()
            mask = out.merge_mask.numpy() if out.merge_mask is not None else None
        return log_hdr, (mask if self.is_pano else None)

    def predict(self, ldr: np.ndarray, exposure_boost: float = 1.0, fit: str | None = None,
                full_res_mask: bool = True) -> Prediction:
        """Predict the calibrated HDR of an LDR image (``HxWx3`` display values: float in [0, 1], or ``uint8``,
        which gives the same result as ``ldr / 255`` with a quarter of the memory).

        ``exposure_boost`` g is HDRCNN's "gamma trick", ``y = f(x^(1/g))^g`` on the linear input (1.0 = off):
        it expands the predicted highlights; calibration then restores the LDR's scale. ``full_res_mask=False``
        leaves ``merge_mask`` at the working size (saves an ``HxW`` float array for callers that do not use it).
        """
        t0 = time.perf_counter()
        if ldr.ndim != 3 or ldr.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 image, got shape {ldr.shape}")
        if min(ldr.shape[:2]) < 2:
            raise ValueError(f"too small: {ldr.shape[1]}x{ldr.shape[0]} pixels")
        h, w = ldr.shape[:2]
        if self.is_pano and abs(w / h - 2.0) > 0.01:
            if fit is None:
                raise ValueError(f"{self.meta['model']} needs a 2:1 equirectangular panorama, got {w}x{h} "
                                 "(pass --fit crop|pad|stretch to make it 2:1)")
            ldr = fit_to_2to1(ldr / np.float32(255) if ldr.dtype == np.uint8 else ldr, fit)
            h, w = ldr.shape[:2]
        if exposure_boost <= 0:
            raise ValueError(f"exposure boost must be > 0, got {exposure_boost}")
        lin = np.empty((h, w, 3), np.float32)

        def linearise(rows: slice) -> None:  # per band: no full-size temporaries
            lin[rows] = display_to_linear(ldr[rows])

        self._for_bands(h, linearise)
        ww, wh = self.working_size(h, w)
        small = resize(lin, (ww, wh), "area") if (wh, ww) != (h, w) else lin
        x = (2.0 * small ** (1.0 / exposure_boost) - 1.0).transpose(2, 0, 1)[None]
        log_hdr, mask = self.run_network(x)
        hdr_small = np.exp(exposure_boost * log_hdr[0].transpose(1, 2, 0).astype(np.float64))
        hdr_small = calibrate(hdr_small, small.astype(np.float64))
        if (wh, ww) != (h, w):  # upsample the HDR/LDR gain (in log) and apply it to the full-resolution LDR
            log_gain = np.log(np.maximum(hdr_small, 1e-8)) - np.log(np.maximum(small, 1e-8))
            hdr = self._apply_gain(lin, log_gain.astype(np.float32))
            if mask is not None and full_res_mask:
                mask = resize(mask[0, 0], (w, h), "linear")[None, None]
        else:
            hdr = np.clip(hdr_small, 0.0, HALF_MAX).astype(np.float32)
        return Prediction(hdr, lin, None if mask is None else mask[0, 0], time.perf_counter() - t0)

    def _apply_gain(self, lin: np.ndarray, log_gain: np.ndarray) -> np.ndarray:
        """``calibrate(lin * exp(upsampled log_gain), lin)`` clipped to half range, in bands of rows.

        The bilinear upsampling is separable (OpenCV's rule: half-pixel centres, replicated borders), in float32
        numpy with or without OpenCV: columns first, on the small image, then each band's rows. Eq. 1's sums are
        taken per row and added in one fixed order, so the result is bit-identical for every band height and thread
        count.
        """
        h, w = lin.shape[:2]
        gh, gw = log_gain.shape[:2]

        def taps(n_out: int, n_in: int):  # hdr_core.resize's bilinear rule, weights in float32
            i0, i1, frac = linear_taps(n_out, n_in)
            return i0, i1, frac.astype(np.float32)

        j0, j1, fx = taps(w, gw)
        fx = fx[None, :, None]
        cols = np.take(log_gain, j0, axis=1) * (1.0 - fx) + np.take(log_gain, j1, axis=1) * fx  # gh x w x 3
        i0, i1, frac = taps(h, gh)
        frac = frac[:, None, None]
        hdr = np.empty((h, w, 3), np.float32)
        sums = np.zeros((4, h))  # per row: sum(M lin), sum(M H), sum(lin), sum(H)

        def gain(rows: slice) -> None:
            f = frac[rows]
            band = hdr[rows]
            np.multiply(np.take(cols, i0[rows], axis=0), 1.0 - f, out=band)  # take: much faster than cols[i0]
            band += np.take(cols, i1[rows], axis=0) * f
            np.exp(band, out=band)
            band *= lin[rows]
            # Eq. 1's mask is mean_c(lin) < tau, i.e. (channel sum) / 3 < tau, as calibrate() computes it (the sum
            # over the 3 channels written out: numpy's reduction over a length-3 axis is ten times slower)
            lb = lin[rows]
            lin_c, hdr_c = lb[..., 0] + lb[..., 1] + lb[..., 2], band[..., 0] + band[..., 1] + band[..., 2]
            m = lin_c / 3 < TAU
            sums[0, rows] = np.where(m, lin_c, 0.0).sum(1, dtype=np.float64)
            sums[1, rows] = np.where(m, hdr_c, 0.0).sum(1, dtype=np.float64)
            sums[2, rows] = lin_c.sum(1, dtype=np.float64)
            sums[3, rows] = hdr_c.sum(1, dtype=np.float64)

        self._for_bands(h, gain)
        scale = np.float32(scale_from_sums(*(float(v) for v in sums.sum(1)))[0])

        def finish(rows: slice) -> None:
            band = hdr[rows]
            band *= scale
            np.clip(band, 0.0, HALF_MAX, out=band)

        self._for_bands(h, finish)
        return hdr

    def _for_bands(self, h: int, fn) -> None:
        """``fn(rows)`` for each band of :attr:`band_rows` rows of ``h``, on up to ``threads`` threads (numpy
        releases the GIL); every band writes only its own rows, so the result does not depend on the order."""
        bands = [slice(y0, min(h, y0 + self.band_rows)) for y0 in range(0, h, self.band_rows)]
        workers = min(len(bands), self.threads or os.cpu_count() or 1)
        if workers <= 1:
            for rows in bands:
                fn(rows)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="hdr-band") as pool:
            for _ in pool.map(fn, bands):  # re-raises a band's exception
                pass

    def predict_file(self, path: str | os.PathLike, **kw) -> Prediction:
        from hdr_core.gpano import place_partial_sphere
        from hdr_core.io import read_ldr

        ldr, _ = read_ldr(path)
        try:
            ldr, note = place_partial_sphere(path, ldr)
            pred = self.predict(ldr, **kw)
        except ValueError as e:
            raise ImageError(path, str(e)) from None
        pred.note = note
        return pred


def preview(hdr: np.ndarray, stops: float = 0.0) -> np.ndarray:
    """Tone-mapped display image of a calibrated HDR (Reinhard on luminance-free RGB, then sRGB)."""
    x = hdr * 2.0**stops
    return linear_to_srgb(x / (1.0 + x) * 2.0)


def collect_inputs(items: list[str]) -> list[Path]:
    files: list[Path] = []
    for it in items:
        p = Path(it)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in LDR_SUFFIXES and f.is_file())
        else:
            files.append(p)
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hdr_core.predict", description=__doc__.split("\n")[0])
    ap.add_argument("inputs", nargs="+", help="LDR images or folders of them")
    ap.add_argument("-o", "--out", required=True, help="output folder")
    ap.add_argument("--model", default=DEFAULT_MODEL, help="shipped model to use when --weights is not given")
    ap.add_argument("--weights", help="checkpoint folder or .onnx file")
    ap.add_argument("--backend", default="onnx", choices=["onnx", "torch", "auto"])
    ap.add_argument("--size", help="working size WxH (default 1024x512 for panoramas)")
    ap.add_argument("--exposure-boost", type=float, default=1.0, help="HDRCNN gamma trick g (1.0 = off)")
    ap.add_argument("--fit", choices=["crop", "pad", "stretch"], help="make non-2:1 inputs 2:1 (panoLANet)")
    ap.add_argument("--preview", action="store_true", help="also write a tone-mapped PNG")
    ap.add_argument("--masks", action="store_true", help="also write the merge mask PNG (panoLANet)")
    ap.add_argument("--precision", choices=["half", "float"], default="half",
                    help="EXR number format: half (16-bit, default) or float (32-bit)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    from hdr_core.io import write_exr, write_ldr

    try:
        size = parse_size(args.size) if args.size else None
    except ValueError as e:
        ap.error(f"--size: {e}")
    try:
        predictor = Predictor(args.weights, args.model, args.backend, size, args.threads)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file of that name, no permission, ...
        print(f"error: output folder {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    failures = 0
    for f in collect_inputs(args.inputs):
        try:
            pred = predictor.predict_file(f, exposure_boost=args.exposure_boost, fit=args.fit)
            half = args.precision == "half"  # PIZ: as small as ZIP for half floats, twice as fast to write
            write_exr(out / f"{f.stem}.exr", pred.hdr, half=half, compression="piz" if half else "zip")
            if args.preview:
                write_ldr(out / f"{f.stem}_preview.png", preview(pred.hdr))
            if args.masks and pred.merge_mask is not None:
                write_ldr(out / f"{f.stem}_mask.png", np.repeat(pred.merge_mask[..., None], 3, -1))
            print(f"{f} -> {out / (f.stem + '.exr')} ({pred.seconds:.2f} s, peak {pred.peak:.1f}, "
                  f"{pred.dynamic_range_stops:.1f} stops{'; ' + pred.note if pred.note else ''})")
        except ImageError as e:
            failures += 1
            print(f"skipped {e}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
