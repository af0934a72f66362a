"""Image metrics for the render-based evaluation (method.md §4, Table 4) and for panoramas. No ``bpy``.

On renders (predicted vs ground-truth lighting, both calibrated, rendered with the same settings):

* ``psnr`` / ``ssim``: on display-encoded renders (:func:`render_eval.display.display_encode`: 0 EV, clip, sRGB),
  ``data_range=1``. SSIM is Wang et al. 2004 as in their MATLAB code: Gaussian window sigma 1.5 (11x11),
  population covariances, K1 = 0.01, K2 = 0.03, averaged over RGB (scikit-image).
* ``mse_1e3``: the paper's "MSE (1e-3)" column: MSE of the display-referred *linear* renders clipped to [0, 1]
  (:func:`mse_display`; 1.0 = the LDR input's white, the display's clip point at the renders' 0 EV exposure),
  times 1e3. Bounded like the paper's renders (its panoLANet scores 1.35e-3), so one sun reflection cannot
  dominate a mean.
* ``mse_hdr_1e3``: the unbounded MSE of the linear calibrated renders, times 1e3, for HDR readers (it is dominated by
  the brightest pixels: a sun's reflection in the glossy ball weighs more than the rest of the image).
* ``vdp_jod``: **VDP (ColorVideoVDP JOD)** (Mantiuk et al., "ColorVideoVDP: a visual difference predictor for
  image, video and display distortions", SIGGRAPH 2024; package ``cvvdp``). The paper's "VDP" column is the
  HDR-VDP-2 Q score, which has no Python implementation; ColorVideoVDP is its successor by the same group. Its
  JOD scale (10 = identical, higher is better) is *not* comparable with HDR-VDP-2 Q values: never label it
  "HDR-VDP-2". It models contrast, so a global brightness change alone costs little (a textured render times 4
  still scores 10.0 on this display): it judges structure and relative lighting; ``mse_1e3`` judges level.
* ``flip`` (opt-in): HDR-FLIP mean error (Andersson et al. 2021, package ``flip-evaluator``; lower is better).

Display model and photometric anchor (VDP, FLIP and PU21 all use them):

* Photometry: cvvdp's shipped ``standard_hdr_linear`` display: 30-inch 4K HDR monitor, linear BT.709 input in
  cd/m2, peak 1500 cd/m2, contrast 1e6:1, 10 lux ambient, 0.5 % screen reflectance. Input above the peak is
  clipped by the display model (as a real display would); below 0.005 cd/m2 it is raised to 0.005.
* Geometry: the same model's 3840x2160 30-inch panel seen from 0.7472 m (two display heights), i.e.
  :data:`VDP_PPD` ~ 75.4 pixels per degree; a render is shown 1:1 at the centre. FLIP gets the same ppd.
* Anchor: linear 1.0 = :data:`ANCHOR_CD_M2` = 203 cd/m2, the HDR reference (diffuse) white of ITU-R BT.2408.
  Calibrated renders are on the LDR's scale (the LDR white is 1.0, see ``display.py``), so the LDR-visible part
  of the scene is shown at SDR-in-HDR levels and highlights get 1500/203 ~ 7.4x (2.9 stops) of headroom before
  the display clips them.

On panoramas (no rendering), :func:`pano_metrics`:

* ``si_mse_lin``: ``min_s mean((s*pred - gt)^2) / mean(gt^2)`` with the least-squares ``s = <pred,gt>/<pred,pred>``
  (closed form ``1 - <pred,gt>^2 / (<pred,pred><gt,gt>)``): a normalised, scale-invariant linear MSE in [0, 1],
  comparable across panoramas (0 = equal up to a global scale; 1 = orthogonal or all-zero prediction).
* ``si_mse_log``: ``mean(d^2) - mean(d)^2`` with ``d = log(max(pred, 1e-8)) - log(max(gt, 1e-8))`` over all
  pixels and channels (Eigen et al. 2014, lambda = 1): the variance of the log ratio. No upper clamp, so suns
  are not flattened.
* ``pu21_psnr`` / ``pu21_ssim``: PU21 (Mantiuk & Azimi, PCS 2021; ``banding_glare`` variant, the encoder shipped
  as ``pycvvdp.utils.PU``) of absolute values ``linear * ANCHOR_CD_M2`` (the encoder clips to [0.005, 1e4]
  cd/m2). As in the PU21 reference code (gfxdisp/pu21 ``pu21_metric.m``): PSNR on the encoded RGB, SSIM on the
  encoded luminance, both with peak / dynamic range :data:`PU21_DATA_RANGE` = 256 (PU21 maps 100 cd/m2 to ~256,
  the SDR white). cvvdp's own PU metric classes are not used: in cvvdp 0.5.7 they fail on construction with a display
  name (``NameError`` in ``vq_metric.set_display_model``).

cvvdp and torchvision (why :func:`import_pycvvdp` exists). ``import pycvvdp`` imports torchvision for two
pure-Python pieces: ``torchvision.transforms.GaussianBlur`` (the metric's PU dilation and texture masking) and
``torchvision.ops.MLP`` (the ML variants, unused here). PyPI's torchvision 0.28.0 (the release paired with torch
2.13.0) is built against the CUDA torch wheel: its ``_C.so`` needs ``libc10_cuda.so``, which the CPU torch wheel
lacks, so it does not load. torchvision tolerates that (``extension._has_ops()`` becomes False) everywhere but
in ``torchvision/_meta_registrations.py``, whose unguarded ``register_fake("torchvision::nms")`` raises
``RuntimeError: operator torchvision::nms does not exist`` and aborts ``import torchvision`` (pytorch/pytorch#122494;
the usual fix, the ``+cpu`` torchvision wheel from PyTorch's own index, is not on PyPI). The guard retries
the import with that one module replaced by an empty module: it only declares fake-tensor kernels for the native
ops that did not load, so nothing the metric runs is changed or faked (GaussianBlur is plain ``conv2d``). Native
torchvision ops (nms, roi_align, ...) stay unavailable, as they already were. With a torchvision that loads
normally the guard does nothing. Install (never let pip touch torch)::

    pip install --no-deps cvvdp==0.5.7 torchvision==0.28.0
    pip install "ffmpeg-python>=0.2.0" "imageio>=2.19.5" "huggingface_hub>=0.33.4" "einops>=0.8.1" \
        "PyEXR>=0.3.10" "scipy>=1.10.0" "matplotlib>=3.8.0"

(cvvdp's requirement ``ffmpeg>=1.4`` is an unrelated PyPI package that overwrites ffmpeg-python's ``ffmpeg``
module; it is left out.) The metric runs on the CPU with one torch thread (:data:`VDP_THREADS`, restored
afterwards): the project's machines have two cores shared with other jobs, where OpenMP's busy-waiting second
thread competes with them. Cost of one JOD, one thread: ~0.06 s at 320x180, ~0.6 s at 1024x512 (two threads on
an idle machine: ~0.45 s), plus ~3.5 s once for importing torch, torchvision and pycvvdp.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
import types
from collections.abc import Iterator

import numpy as np

from hdr_core.color import luminance
from render_eval.display import DISPLAY_EXPOSURE, display_encode

#: cd/m2 of linear 1.0 (ITU-R BT.2408 HDR reference white). Used by VDP and PU21.
ANCHOR_CD_M2 = 203.0
#: cvvdp display model (photometry and geometry), shipped in cvvdp's ``display_models.json``.
VDP_DISPLAY = "standard_hdr_linear"
#: Pixels per degree of :data:`VDP_DISPLAY` (30-inch 3840x2160 at 0.7472 m); also given to FLIP.
VDP_PPD = 75.40244934516305
#: torch threads used while cvvdp runs.
VDP_THREADS = 1
#: PU21 peak value for PSNR and dynamic range for SSIM (PU21 reference code).
PU21_DATA_RANGE = 256.0
#: Lower clamp before logs in ``si_mse_log``.
LOG_EPS = 1e-8
#: SSIM settings (Wang et al. 2004 MATLAB reference): Gaussian window, sigma 1.5, population covariance.
SSIM_KW = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}

#: Key -> display name of every metric this module reports.
METRIC_NAMES = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "mse_1e3": "MSE (1e-3)",
    "mse_hdr_1e3": "HDR-MSE (1e-3, unbounded)",
    "vdp_jod": "VDP (ColorVideoVDP JOD)",
    "flip": "HDR-FLIP",
    "si_mse_lin": "si-MSE (linear)",
    "si_mse_log": "si-MSE (log)",
    "pu21_psnr": "PU21-PSNR (dB)",
    "pu21_ssim": "PU21-SSIM",
    "irr_err": "irradiance error (stops)",
    "irr_bias": "irradiance bias (stops)",
    "light_angle": "brightest-light direction error (deg)",
    "key_angle": "key-light direction error (deg; one clear brightest light only)",
    "peak_err": "brightest-light energy error (stops)",
    "peak_bias": "brightest-light energy bias (stops)",
}
#: Key -> True if a higher value is better.
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "mse_1e3": False, "mse_hdr_1e3": False, "vdp_jod": True, "flip": False,
                    "si_mse_lin": False, "si_mse_log": False, "pu21_psnr": True, "pu21_ssim": True,
                    "irr_err": False, "irr_bias": False, "light_angle": False, "key_angle": False, "peak_err": False,
                    "peak_bias": False}
#: Signed metrics (a bias: 0 is best, the sign says too bright or too dark); left out of "better" counts.
SIGNED_METRICS = ("irr_bias", "peak_bias")


# ----------------------------------------------------------------------------------------------- validation

def _check_pair(pred, gt, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate an image pair and return it as float64. ``kind``: "linear" (>= 0) or "display" ([0, 1])."""
    pred, gt = np.asarray(pred, dtype=np.float64), np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    if not (pred.ndim == 2 or (pred.ndim == 3 and pred.shape[-1] == 3)) or min(pred.shape[:2]) < 1:
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {pred.shape}")
    for name, a in (("prediction", pred), ("ground truth", gt)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} has NaN or infinite values")
        if a.min() < 0:
            raise ValueError(f"{name} has negative values (min {a.min():g}); {kind} images must be >= 0")
        if kind == "display" and a.max() > 1:
            raise ValueError(f"{name} has display values above 1 (max {a.max():g}); expected [0, 1]")
    return pred, gt


# ------------------------------------------------------------------------------------------ render metrics

def _psnr(pred: np.ndarray, gt: np.ndarray, data_range: float) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    if np.array_equal(pred, gt):
        return float("inf")
    return float(peak_signal_noise_ratio(gt, pred, data_range=data_range))


def _ssim(pred: np.ndarray, gt: np.ndarray, data_range: float) -> float:
    from skimage.metrics import structural_similarity

    if min(gt.shape[:2]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels (Gaussian window), got {gt.shape[:2]}")
    axis = -1 if gt.ndim == 3 else None
    return float(structural_similarity(gt, pred, data_range=data_range, channel_axis=axis, **SSIM_KW))


def psnr(pred_disp, gt_disp) -> float:
    """PSNR (dB) of display-encoded images in [0, 1] (``data_range=1``); ``inf`` for identical images."""
    return _psnr(*_check_pair(pred_disp, gt_disp, "display"), 1.0)


def ssim(pred_disp, gt_disp) -> float:
    """SSIM of display-encoded images in [0, 1] (Gaussian sigma 1.5, ``data_range=1``, mean over RGB)."""
    return _ssim(*_check_pair(pred_disp, gt_disp, "display"), 1.0)


def mse_linear(pred, gt) -> float:
    """Plain MSE of linear images over all pixels and channels, unbounded (``mse_hdr_1e3`` / 1e3)."""
    pred, gt = _check_pair(pred, gt, "linear")
    return float(np.mean((pred - gt) ** 2))


def mse_display(pred, gt) -> float:
    """MSE of linear renders clipped to [0, 1] at the renders' display exposure (``mse_1e3`` / 1e3, the paper's)."""
    pred, gt = _check_pair(pred, gt, "linear")
    return _mse_display(pred, gt)


def _mse_display(pred: np.ndarray, gt: np.ndarray) -> float:
    scale = 2.0**DISPLAY_EXPOSURE
    return float(np.mean((np.clip(pred * scale, 0, 1) - np.clip(gt * scale, 0, 1)) ** 2))


# ---------------------------------------------------------------------------------------- cvvdp (guarded)

def _import_torchvision() -> types.ModuleType:
    """``import torchvision``, tolerating native ops that do not load beside this torch (module docstring)."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    try:
        import torchvision
    except ImportError as e:
        raise ImportError("cvvdp needs torchvision's Python code; install it without touching torch: "
                          "pip install --no-deps torchvision==0.28.0") from e
    except RuntimeError as e:
        ext = sys.modules.get("torchvision.extension")
        if "torchvision::" not in str(e) or ext is None or ext._has_ops():
            raise
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        # Fake-tensor kernels for the native ops that failed to load: nothing to register.
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        torchvision = importlib.import_module("torchvision")
    return torchvision


def import_pycvvdp() -> types.ModuleType:
    """Import ``pycvvdp`` (ColorVideoVDP) through the torchvision guard. Raises ImportError with install steps."""
    if "pycvvdp" in sys.modules:
        return sys.modules["pycvvdp"]
    _import_torchvision()
    try:
        return importlib.import_module("pycvvdp")
    except ImportError as e:
        raise ImportError(f"ColorVideoVDP is not usable ({e}). Install: pip install --no-deps cvvdp==0.5.7 "
                          "torchvision==0.28.0, then its other requirements (render_eval/metrics.py)") from e


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@functools.lru_cache(maxsize=1)
def _cvvdp_metric():
    import torch

    pycvvdp = import_pycvvdp()
    return pycvvdp.cvvdp(display_name=VDP_DISPLAY, device=torch.device("cpu"), heatmap=None, quiet=True)


def vdp_jod(pred_linear, gt_linear, anchor: float = ANCHOR_CD_M2) -> float:
    """VDP (ColorVideoVDP JOD) of a linear render against the reference; 10 = identical, higher is better.

    Args:
        pred_linear: linear calibrated render, HxWx3 (or HxW), >= 0.
        gt_linear: reference render, same shape.
        anchor: cd/m2 of linear 1.0 (:data:`ANCHOR_CD_M2`).

    Returns:
        The JOD score on :data:`VDP_DISPLAY` (module docstring).
    """
    pred, gt = _check_pair(pred_linear, gt_linear, "linear")
    metric = _cvvdp_metric()
    test = np.ascontiguousarray(pred * anchor, dtype=np.float32)
    ref = np.ascontiguousarray(gt * anchor, dtype=np.float32)
    with _torch_threads(VDP_THREADS):
        q, _ = metric.predict(test, ref, dim_order="HWC" if ref.ndim == 3 else "HW")
    return float(q)


def flip(pred_linear, gt_linear) -> float:
    """HDR-FLIP mean error (0 = identical, lower is better) of linear renders, at :data:`VDP_PPD` (opt-in).

    HDR-FLIP takes relative linear values: it picks its exposure range from the reference, so no anchor is needed.
    Raises ImportError if ``flip-evaluator`` is not installed.
    """
    return _flip(*_check_pair(pred_linear, gt_linear, "linear"))


def _flip(pred: np.ndarray, gt: np.ndarray) -> float:
    try:
        import flip_evaluator
    except ImportError as e:
        raise ImportError("HDR-FLIP is opt-in and needs `pip install flip-evaluator==1.7`") from e
    if gt.ndim == 2:
        pred, gt = np.repeat(pred[..., None], 3, -1), np.repeat(gt[..., None], 3, -1)
    _, mean_err, _ = flip_evaluator.evaluate(np.ascontiguousarray(gt, dtype=np.float32),
                                             np.ascontiguousarray(pred, dtype=np.float32), "HDR",
                                             applyMagma=False, parameters={"ppd": VDP_PPD})
    return float(mean_err)


def render_metrics(pred_linear, gt_linear, vdp: bool = True, flip: bool = False) -> dict[str, float]:
    """All render metrics of a linear calibrated render against the reference render.

    Returns:
        ``{"psnr", "ssim", "mse_1e3", "mse_hdr_1e3"}`` plus ``"vdp_jod"`` if ``vdp`` and ``"flip"`` if ``flip``
        (display names in :data:`METRIC_NAMES`).
    """
    pred, gt = _check_pair(pred_linear, gt_linear, "linear")
    pred_d, gt_d = display_encode(pred), display_encode(gt)
    out = {"psnr": _psnr(pred_d, gt_d, 1.0), "ssim": _ssim(pred_d, gt_d, 1.0),
           "mse_1e3": _mse_display(pred, gt) * 1e3, "mse_hdr_1e3": float(np.mean((pred - gt) ** 2)) * 1e3}
    if vdp:
        out["vdp_jod"] = vdp_jod(pred, gt)
    if flip:
        out["flip"] = _flip(pred, gt)
    return out


# ---------------------------------------------------------------------------------------- panorama metrics

def si_mse_lin(pred, gt) -> float:
    """Normalised scale-invariant MSE of linear images: ``min_s mean((s*pred - gt)^2) / mean(gt^2)``, in [0, 1]."""
    pred, gt = _check_pair(pred, gt, "linear")
    gg = float(np.sum(gt * gt))
    if gg == 0:
        raise ValueError("si_mse_lin: the ground truth is zero everywhere")
    pp, pg = float(np.sum(pred * pred)), float(np.sum(pred * gt))
    s = pg / pp if pp > 0 else 0.0
    return float(np.sum((s * pred - gt) ** 2) / gg)


def si_mse_log(pred, gt) -> float:
    """Scale-invariant log MSE: ``mean(d^2) - mean(d)^2``, ``d = log(max(pred, 1e-8)) - log(max(gt, 1e-8))``."""
    pred, gt = _check_pair(pred, gt, "linear")
    d = np.log(np.maximum(pred, LOG_EPS)) - np.log(np.maximum(gt, LOG_EPS))
    return float(max(np.mean(d * d) - np.mean(d) ** 2, 0.0))


def pu21_encode(linear, anchor: float = ANCHOR_CD_M2) -> np.ndarray:
    """PU21 values (``banding_glare``) of linear images mapped to cd/m2 with ``anchor``; 100 cd/m2 -> ~256."""
    import_pycvvdp()
    from pycvvdp.utils import PU

    return np.asarray(PU().encode(np.asarray(linear, dtype=np.float64) * anchor), dtype=np.float64)


def pu21_psnr(pred, gt, anchor: float = ANCHOR_CD_M2) -> float:
    """PU21-PSNR (dB) of linear images: PSNR of PU21-encoded RGB with peak :data:`PU21_DATA_RANGE`."""
    pred, gt = _check_pair(pred, gt, "linear")
    return _psnr(pu21_encode(pred, anchor), pu21_encode(gt, anchor), PU21_DATA_RANGE)


def pu21_ssim(pred, gt, anchor: float = ANCHOR_CD_M2) -> float:
    """PU21-SSIM of linear images: SSIM of PU21-encoded luminance, dynamic range :data:`PU21_DATA_RANGE`."""
    pred, gt = _check_pair(pred, gt, "linear")
    if gt.ndim == 3:
        pred, gt = luminance(pred), luminance(gt)
    return _ssim(pu21_encode(pred, anchor), pu21_encode(gt, anchor), PU21_DATA_RANGE)


def pano_metrics(pred_hdr, gt_hdr) -> dict[str, float]:
    """Metrics of a calibrated HDR panorama against the ground truth, without rendering.

    Returns:
        ``{"si_mse_lin", "si_mse_log", "pu21_psnr", "pu21_ssim"}`` (module docstring; names in
        :data:`METRIC_NAMES`).
    """
    pred, gt = _check_pair(pred_hdr, gt_hdr, "linear")
    return {"si_mse_lin": si_mse_lin(pred, gt), "si_mse_log": si_mse_log(pred, gt),
            "pu21_psnr": pu21_psnr(pred, gt), "pu21_ssim": pu21_ssim(pred, gt)}


# ---------------------------------------------------------------------------------------------- light accuracy

def light_metrics(pred_hdr, gt_hdr) -> dict[str, float | None]:
    """How far the light a calibrated panorama casts is from the ground truth's, without rendering.

    :func:`hdr_core.lighting.light_accuracy`: ``irr_err`` (mean ``|log2|`` irradiance ratio over 26 surface
    normals, stops), ``irr_bias`` (its signed mean: +1 = twice too bright), ``light_angle`` (degrees between the
    brightest lights' directions), ``key_angle`` (the same, or None where the ground truth has no single brightest
    light: :func:`hdr_core.lighting.light_margin`), ``peak_err`` / ``peak_bias`` (``|log2|`` / ``log2`` of the
    brightest light's energy ratio, stops).
    """
    from hdr_core.lighting import light_accuracy

    pred, gt = _check_pair_shapes_free(pred_hdr, gt_hdr)
    return light_accuracy(pred, gt)


def _check_pair_shapes_free(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_check_pair` for linear panoramas, but the two may differ in size (light is measured on both
    shrunk to one working size)."""
    out = []
    for name, a in (("prediction", pred), ("ground truth", gt)):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"{name}: expected an HxWx3 panorama, got shape {a.shape}")
        if not np.all(np.isfinite(a)) or a.min() < 0:
            raise ValueError(f"{name} has NaN, infinite or negative values")
        out.append(a)
    return out[0], out[1]
