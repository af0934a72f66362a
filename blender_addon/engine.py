"""Inference glue between the add-on and :mod:`hdr_core` (no ``bpy``): model lookup, predictor cache, jobs.

Only ONNX Runtime and numpy are needed here (both importable inside Blender once the extension's wheels are
installed); torch and OpenCV are never imported (:mod:`hdr_core.resize` resizes in numpy where OpenCV is absent).

A :class:`Job` runs one prediction (and the optional sun extraction) in a worker thread; ONNX Runtime releases
the GIL, so Blender's UI keeps running, and :meth:`Job.cancel` stops the running graph through ONNX Runtime's
``RunOptions.terminate``.
"""

from __future__ import annotations

import copy
import importlib.util
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Model choice in the UI -> registered model names to look for, in order of preference.
MODEL_FAMILIES = {"PANOLANET": ("panolanet_w24", "panolanet_small", "panolanet"),
                  "LANET": ("lanet_w24", "lanet_small", "lanet")}
#: Shipped models inside the installed extension: ``models/<name>/model.onnx`` (+ ``model.json``).
MODELS_DIR = Path(__file__).resolve().parent / "models"


class ModelNotFoundError(Exception):
    """No model file could be found; the message says where to set one."""


class Cancelled(Exception):
    """The job was cancelled."""


def _hdr_core_weights_dir() -> Path | None:
    spec = importlib.util.find_spec("hdr_core")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "weights"


def model_search_dirs() -> list[Path]:
    """Folders holding ``<name>/model.onnx``: the extension's ``models/``, then ``hdr_core/weights`` if any."""
    dirs = [MODELS_DIR]
    weights = _hdr_core_weights_dir()
    if weights is not None:
        dirs.append(weights)
    return dirs


def find_model(family: str = "PANOLANET", model_path: str = "") -> Path:
    """The ``.onnx`` file to use.

    ``model_path`` (Preferences) wins when set: a ``.onnx`` file, a checkpoint folder with ``model.onnx``, or a
    folder of ``<name>/model.onnx`` folders (then ``family`` picks). Otherwise the shipped models are searched.

    Raises:
        ModelNotFoundError: nothing usable; the message tells the user what to do.
    """
    names = MODEL_FAMILIES.get(family, (family.lower(),))
    if model_path:
        p = Path(model_path).expanduser()
        if p.is_file():
            if p.suffix.lower() != ".onnx":
                raise ModelNotFoundError(f"Model path {p} is not an .onnx file (set it in Preferences > Add-ons)")
            return p
        if p.is_dir():
            for candidate in [p / "model.onnx"] + [p / n / "model.onnx" for n in names]:
                if candidate.is_file():
                    return candidate
            raise ModelNotFoundError(f"No model.onnx in the model folder {p} (set the model in Preferences > Add-ons)")
        raise ModelNotFoundError(f"Model path {p} does not exist (set the model in Preferences > Add-ons)")
    for folder in model_search_dirs():
        for n in names:
            if (folder / n / "model.onnx").is_file():
                return folder / n / "model.onnx"
    label = {"PANOLANET": "panoLANet", "LANET": "LANet"}.get(family, family)
    raise ModelNotFoundError(f"No {label} model is installed: set a model .onnx file in "
                             "Preferences > Add-ons > LANet HDR Environment > Model")


def available_models() -> dict[str, Path]:
    """Shipped models found: registered name -> ``model.onnx``."""
    found: dict[str, Path] = {}
    for folder in model_search_dirs():
        if folder.is_dir():
            for sub in sorted(folder.iterdir()):
                if (sub / "model.onnx").is_file():
                    found.setdefault(sub.name, sub / "model.onnx")
    return found


def predictor_class():
    """:class:`hdr_core.predict.Predictor` (it needs no OpenCV: :mod:`hdr_core.resize` falls back to numpy)."""
    from hdr_core.predict import Predictor

    return Predictor


_PREDICTORS: dict[tuple, object] = {}


def get_predictor(model_file: Path, threads: int = 0):
    """A cached :class:`hdr_core.predict.Predictor` for ``model_file`` (reloaded if the file changed)."""
    st = model_file.stat()
    key = (str(model_file.resolve()), st.st_mtime_ns, st.st_size, int(threads))
    if key not in _PREDICTORS:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as e:
            raise ImportError("ONNX Runtime is not installed (install the extension's zip, which bundles it, or "
                              f"`pip install onnxruntime` into Blender's Python): {e}") from None
        Predictor = predictor_class()
        _PREDICTORS.clear()
        _PREDICTORS[key] = Predictor(model_file, backend="onnx", threads=threads or None)
    return _PREDICTORS[key]


class _CancellableSession:
    """An ``onnxruntime.InferenceSession`` whose ``run`` uses this job's ``RunOptions`` (so it can be terminated)."""

    def __init__(self, session):
        import onnxruntime as ort

        self._session = session
        self.options = ort.RunOptions()

    def run(self, output_names, feeds, run_options=None):
        return self._session.run(output_names, feeds, run_options or self.options)

    def __getattr__(self, name):
        return getattr(self._session, name)


@dataclass
class Result:
    """What a job produced."""

    hdr: np.ndarray  #: the calibrated HDR (full, with the sun)
    world_hdr: np.ndarray  #: what the world texture gets (the HDR, minus the sun if it was extracted)
    peak: float
    dynamic_range_stops: float
    seconds: float  #: prediction + sun extraction
    model: str  #: registered model name
    sun: object | None = None  #: a :class:`.sun.Sun`, or None


def run_prediction(predictor, ldr: np.ndarray, exposure_boost: float = 1.0, extract_sun: bool = False,
                   should_stop=lambda: False) -> Result:
    """Predict the HDR of ``ldr`` (display values ``HxWx3``, float or uint8, 2:1 within tolerance) and optionally
    extract the sun."""
    t0 = time.perf_counter()
    fit = None if ldr.shape[1] == 2 * ldr.shape[0] else "stretch"
    pred = predictor.predict(ldr, exposure_boost=exposure_boost, fit=fit, full_res_mask=False)
    if should_stop():
        raise Cancelled
    world_hdr, sun = pred.hdr, None
    if extract_sun:
        from .sun import extract_sun as _extract

        world_hdr, sun = _extract(pred.hdr)
    return Result(pred.hdr, world_hdr, pred.peak, pred.dynamic_range_stops, time.perf_counter() - t0,
                  predictor.meta["model"], sun)


#: Seconds per megapixel of input measured on the last run (progress estimate), with a first guess.
_SPEED = {"s_per_mpix": 2.0, "base": 0.5}


class Job:
    """One prediction in a worker thread: ``start()``, poll ``done`` / ``progress()``, then ``result``/``error``."""

    def __init__(self, predictor, ldr: np.ndarray, exposure_boost: float = 1.0, extract_sun: bool = False):
        self.predictor = copy.copy(predictor)  # own session wrapper: cancelling one job never stops another
        self.predictor._session = _CancellableSession(predictor._session)
        self.ldr, self.exposure_boost, self.extract_sun = ldr, exposure_boost, extract_sun
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.cancelled = False
        self._thread = threading.Thread(target=self._run, name="lanet-hdr-predict", daemon=True)
        self._t0 = 0.0
        mpix = ldr.shape[0] * ldr.shape[1] / 1e6
        self._expected = _SPEED["base"] + _SPEED["s_per_mpix"] * mpix

    def start(self) -> Job:
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = run_prediction(self.predictor, self.ldr, self.exposure_boost, self.extract_sun,
                                         lambda: self.cancelled)
            mpix = self.ldr.shape[0] * self.ldr.shape[1] / 1e6
            _SPEED["s_per_mpix"] = max(0.01, (self.result.seconds - _SPEED["base"]) / max(mpix, 1e-3))
        except BaseException as e:  # noqa: BLE001  (reported by the operator in the main thread)
            self.error = Cancelled() if self.cancelled else e

    @property
    def done(self) -> bool:
        return self._t0 > 0 and not self._thread.is_alive()

    def progress(self) -> float:
        """A 0..1 estimate (the network is a single call, so this is time-based, never reaching 1 before done)."""
        if self.done:
            return 1.0
        t = time.perf_counter() - self._t0
        return 0.95 * (1.0 - float(np.exp(-t / max(self._expected, 0.1))))

    def cancel(self) -> None:
        self.cancelled = True
        self.predictor._session.options.terminate = True

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

