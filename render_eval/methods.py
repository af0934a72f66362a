"""The methods a benchmark compares: predictions on disk, training-free baselines, and hdr_core models.

``--method`` forms on the command line:

- ``NAME=DIR``: predicted HDR panoramas ``DIR/<stem>.exr|.hdr`` made elsewhere;
- ``NAME`` where NAME is a baseline of :data:`render_eval.baselines.BASELINES` (``ldr``, ``akyuz``, ``masia``,
  ``koeo``): computed here from the LDR input;
- ``NAME=model:WEIGHTS`` (a checkpoint folder or ``.onnx`` of any registered model: LANet, panoLANet or a ported
  baseline, e.g. ``hdrcnn_small=model:runs/hdrcnn_small_stage2/model``) or ``NAME=model`` with NAME a shipped
  model (``panolanet_small``...): predicted here with :class:`hdr_core.predict.Predictor` (ONNX Runtime), at
  ``--model-size`` if given;
- ``gt``: the ground truth itself (the sanity row: perfect up to the noise floor).

Every prediction is calibrated against the LDR input (Eq. 1) before it lights the scene, whatever its source.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HDR_SUFFIXES = (".exr", ".hdr")


@dataclass(frozen=True)
class Method:
    """One compared method: ``kind`` is ``dir``, ``baseline``, ``model`` or ``gt``."""

    name: str
    kind: str
    arg: str = ""

    def signature(self, model_size: tuple[int, int] | None = None, weights: bool = True) -> str:
        """What a cached result row was computed with: a row of another signature is recomputed, not reused. A
        model's includes a digest of its files (:func:`weights_digest`), so weights retrained or shipped anew in the
        same folder are not taken for the old ones; ``weights=False`` leaves it out (the form of rows cached before
        2026-12-07)."""
        size = f"@{model_size[0]}x{model_size[1]}" if self.kind == "model" and model_size else ""
        digest = ""
        if self.kind == "model" and weights:
            try:
                digest = f"#{weights_digest(self.weights_path())}"
            except FileNotFoundError:  # no such shipped model: predicting says so, in the row
                digest = "#-"
        return f"{self.kind}:{self.arg}{size}{digest}"

    def weights_path(self) -> Path:
        """A model's checkpoint folder or ``.onnx`` file (a shipped model's folder when given by name)."""
        if self.arg:
            return Path(self.arg)
        from hdr_core.predict import default_weights

        return default_weights(self.name)

    def describe(self) -> str:
        return {"dir": f"predictions in {self.arg}", "baseline": f"training-free operator {self.arg}",
                "model": f"hdr_core model {self.arg}", "gt": "ground truth (sanity)"}[self.kind]


def weights_digest(path: str | Path) -> str:
    """12 hex digits of the SHA-256 of what a model predicts with: an ``.onnx`` file, or a checkpoint folder's
    ``.onnx``, ``.safetensors`` and ``.json`` files but ``training.json`` (names and bytes). Cached per file size and
    modification time, so a benchmark hashes each model once. ``-`` if the path does not exist (the run then fails
    on it with its own error)."""
    p = Path(path)
    if not p.exists():
        return "-"
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file() and f.name != "training.json"
                                           and f.suffix in (".onnx", ".safetensors", ".json"))
    return _digest(tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@functools.lru_cache(maxsize=64)
def _digest(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in files:
        h.update(Path(name).name.encode() + b"\0")
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


def parse_method(spec: str) -> Method:
    """Parse one ``--method`` value (see the module docstring)."""
    from render_eval.baselines import BASELINES

    name, _, arg = spec.partition("=")
    if not name or not name.replace("_", "").replace("-", "").replace(".", "").isalnum():
        raise ValueError(f"--method {spec!r}: the name must be letters, digits, '_', '-' or '.'")
    if not arg:
        if name == "gt":
            return Method("gt", "gt")
        if name in BASELINES:
            return Method(name, "baseline", name)
        raise ValueError(f"--method {spec!r}: not a baseline ({', '.join(BASELINES)}); give NAME=DIR or "
                         "NAME=model:WEIGHTS")
    if arg == "model" or arg.startswith("model:"):
        return Method(name, "model", arg.partition(":")[2])
    if not Path(arg).is_dir():
        raise ValueError(f"--method {spec!r}: {arg} is not a folder")
    return Method(name, "dir", arg)


def find_file(folder: str | Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    """``folder/<stem><suffix>`` for the first suffix that exists (case-insensitive suffix), else None."""
    folder = Path(folder)
    for s in suffixes:
        for cand in (folder / f"{stem}{s}", folder / f"{stem}{s.upper()}"):
            if cand.is_file():
                return cand
    return None


class MethodRunner:
    """Produces a method's (uncalibrated) HDR panorama for one input; loads each model once.

    ``model_size`` ``(width, height)`` is the working size of every hdr_core model (None: each model's own default,
    :meth:`hdr_core.predict.Predictor.working_size`; a panoLANet graph always runs at its fixed size).
    """

    def __init__(self, threads: int | None = None, model_size: tuple[int, int] | None = None):
        self._predictors: dict[str, object] = {}
        self.threads, self.model_size = threads, model_size

    def predict(self, method: Method, stem: str, ldr: np.ndarray, gt: np.ndarray) -> np.ndarray:
        from hdr_core.errors import ImageError
        from hdr_core.io import read_hdr

        if method.kind == "gt":
            return gt
        if method.kind == "baseline":
            from render_eval.baselines import BASELINES

            return np.asarray(BASELINES[method.arg](ldr), np.float32)
        if method.kind == "dir":
            path = find_file(method.arg, stem, HDR_SUFFIXES)
            if path is None:
                raise ImageError(Path(method.arg) / f"{stem}.exr", f"no prediction of {method.name} for {stem}")
            return read_hdr(path)
        key = method.signature()  # with the weights' digest: files replaced in place get a new predictor
        predictor = self._predictors.get(key)
        if predictor is None:
            from hdr_core.predict import Predictor

            kw = {"weights": method.arg} if method.arg else {"model": method.name}
            predictor = self._predictors[key] = Predictor(**kw, backend="onnx", threads=self.threads,
                                                          size=self.model_size)
        return predictor.predict(ldr, fit="stretch").hdr
