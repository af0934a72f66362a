"""HDR prediction: ``python -m hdr_core.predict INPUT... -o OUT_DIR [options]`` and the :class:`Predictor` API.

LDR images (or folders of them) in, float32 EXR out, calibrated to the input (Eq. 1): unsaturated pixels keep
the LDR's linear values, so swapping the LDR for the HDR keeps diffuse brightness and adds the missing light.

The network runs at a working size (default 1024x512 for panoramas); for inputs larger than that the predicted
HDR/LDR gain is upsampled and applied to the full-resolution linear LDR, so texture detail is not lost.
Backends: ONNX Runtime (default; needs no torch) or torch. panoLANet needs a 2:1 equirectangular input:
anything else is an error unless ``--fit crop|pad|stretch`` says how to make it 2:1.

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

from hdr_core.calibration import calibrate
from hdr_core.color import ldr_to_linear, linear_to_srgb
from hdr_core.errors import ImageError
from hdr_core.resize import resize

LDR_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Shipped weights live here, one folder per model (model.safetensors + model.json [+ model.onnx]).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_MODEL = "panolanet_small"


@dataclass
class Prediction:
    """One prediction at the input's resolution."""

    hdr: np.ndarray  #: HxWx3 float32 linear HDR, calibrated to the input
    ldr_linear: np.ndarray  #: HxWx3 the linearised input
    merge_mask: np.ndarray | None  #: HxW in [0, 1] (panoLANet) or None
    seconds: float

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
    """Make an image 2:1: ``crop`` (centre), ``pad`` (black rows top and bottom / columns wrapped) or ``stretch``."""
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
    """

    def __init__(self, weights: str | os.PathLike | None = None, model: str = DEFAULT_MODEL, backend: str = "onnx",
                 size: tuple[int, int] | None = None, threads: int | None = None):
        path = Path(weights) if weights is not None else default_weights(model)
        if not path.exists():
            raise FileNotFoundError(f"{path}: weights not found")
        self.size, self.threads = size, threads
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

    def predict(self, ldr: np.ndarray, exposure_boost: float = 1.0, fit: str | None = None) -> Prediction:
        """Predict the calibrated HDR of an LDR image (display values in [0, 1], ``HxWx3``).

        ``exposure_boost`` g is HDRCNN's "gamma trick", ``y = f(x^(1/g))^g`` on the linear input (1.0 = off):
        it expands the predicted highlights; calibration then restores the LDR's scale.
        """
        t0 = time.perf_counter()
        if ldr.ndim != 3 or ldr.shape[2] != 3 or min(ldr.shape[:2]) < 2:
            raise ValueError(f"expected an HxWx3 image, got shape {ldr.shape}")
        h, w = ldr.shape[:2]
        if self.is_pano and abs(w / h - 2.0) > 0.01:
            if fit is None:
                raise ValueError(f"{self.meta['model']} needs a 2:1 equirectangular panorama, got {w}x{h} "
                                 "(pass --fit crop|pad|stretch to make it 2:1)")
            ldr = fit_to_2to1(ldr, fit)
            h, w = ldr.shape[:2]
        if exposure_boost <= 0:
            raise ValueError(f"exposure boost must be > 0, got {exposure_boost}")
        lin = ldr_to_linear(ldr.astype(np.float32))
        ww, wh = self.working_size(h, w)
        small = resize(lin, (ww, wh), "area") if (wh, ww) != (h, w) else lin
        x = (2.0 * small ** (1.0 / exposure_boost) - 1.0).transpose(2, 0, 1)[None]
        log_hdr, mask = self.run_network(x)
        hdr_small = np.exp(exposure_boost * log_hdr[0].transpose(1, 2, 0).astype(np.float64))
        hdr_small = calibrate(hdr_small, small.astype(np.float64))
        if (wh, ww) != (h, w):  # upsample the HDR/LDR gain (in log) and apply it to the full-resolution LDR
            log_gain = np.log(np.maximum(hdr_small, 1e-8)) - np.log(np.maximum(small, 1e-8))
            log_gain = resize(log_gain.astype(np.float32), (w, h), "linear")
            hdr = calibrate(lin * np.exp(log_gain), lin)
            if mask is not None:
                mask = resize(mask[0, 0], (w, h), "linear")[None, None]
        else:
            hdr = hdr_small
        hdr = np.clip(hdr, 0.0, 65504.0).astype(np.float32)
        return Prediction(hdr, lin, None if mask is None else mask[0, 0], time.perf_counter() - t0)

    def predict_file(self, path: str | os.PathLike, **kw) -> Prediction:
        from hdr_core.io import read_ldr

        ldr, _ = read_ldr(path)
        try:
            return self.predict(ldr, **kw)
        except ValueError as e:
            raise ImageError(path, str(e)) from None


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
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for f in collect_inputs(args.inputs):
        try:
            pred = predictor.predict_file(f, exposure_boost=args.exposure_boost, fit=args.fit)
            write_exr(out / f"{f.stem}.exr", pred.hdr)
            if args.preview:
                write_ldr(out / f"{f.stem}_preview.png", preview(pred.hdr))
            if args.masks and pred.merge_mask is not None:
                write_ldr(out / f"{f.stem}_mask.png", np.repeat(pred.merge_mask[..., None], 3, -1))
            print(f"{f} -> {out / (f.stem + '.exr')} ({pred.seconds:.2f} s, peak {pred.peak:.1f}, "
                  f"{pred.dynamic_range_stops:.1f} stops)")
        except ImageError as e:
            failures += 1
            print(f"skipped {e}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
