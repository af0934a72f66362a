"""A PCA basis of inverse camera response functions: **our replacement for EMoR** (used by SingleHDR's linearisation).

SingleHDR (Liu et al. 2020) predicts the inverse CRF as ``g = g0 + H_inv w`` with the 11-component inverse EMoR
basis of Grossberg & Nayar (``invemor.txt``, built from the 201 DoRF curves; reference-code.md §3.2). Those data files
are not obtainable in this project (no package on PyPI ships them), so this module builds its own basis the same way:
mean + the first ``K = 11`` principal components of a broad family of monotone inverse CRFs, sampled at 1024 evenly
spaced display values in [0, 1]. Every curve has ``g(0) = 0`` and ``g(1) = 1``. The family (:func:`inverse_crf_family`):

* the virtual camera's sigmoid response ``f(v) = (1 + s) v^n / (v^n + s)`` (HDRCNN's family, also the one
  :mod:`hdr_core.camera` uses), inverted analytically, for ``s`` in [0.05, 5] and ``n`` in [0.4, 2.5] (20 x 20 grid);
* gamma curves ``g(d) = d^gamma``, gamma in [0.6, 3.5];
* logarithmic responses ``f(v) = log(1 + a v) / log(1 + a)``, a in [1, 1000];
* the sRGB EOTF and the inverse Rec. 709 OETF;
* S-shaped (film-like) responses ``f(v) = v^p / (v^p + c (1 - v)^p)``, p in [0.6, 2], c in [0.2, 5];
* seeded random compositions (gamma, then an S-curve) and convex mixtures of two curves of the family.

The basis is stored in ``crf_basis.npz`` beside this file (float32: ``x``, ``g0``, ``hinv`` = 1024 x 11 orthonormal
columns, ``std`` = the family's standard deviation along each, ``explained`` = fraction of the family's variance
per component, ``num_curves``). :func:`build_basis` rebuilds
it deterministically (a test checks the file against it); :func:`load_basis` falls back to building it when the file
is missing. Regenerate with ``python -c "from hdr_core.models import crf_basis; crf_basis.main()"``.

The model's outputs are therefore *not* compatible with weights trained on EMoR; the curves it can represent differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["N_SAMPLES", "N_COMPONENTS", "BASIS_FILE", "sigmoid_crf", "sigmoid_inverse_crf", "inverse_crf_family",
           "build_basis", "load_basis", "project"]

N_SAMPLES = 1024
N_COMPONENTS = 11
BASIS_FILE = Path(__file__).with_name("crf_basis.npz")
_SEED = 20200614  # fixes the random compositions and mixtures


def sigmoid_crf(v, sigma, n):
    """The virtual camera's response ``(1 + sigma) v^n / (v^n + sigma)`` (numpy or torch, broadcasting)."""
    vn = v**n
    return (1.0 + sigma) * vn / (vn + sigma)


def sigmoid_inverse_crf(d, sigma, n):
    """Analytic inverse of :func:`sigmoid_crf`: ``(d sigma / (1 + sigma - d))^(1/n)`` for ``d`` in [0, 1]."""
    return (d * sigma / (1.0 + sigma - d)) ** (1.0 / n)


def _srgb_eotf(d: np.ndarray) -> np.ndarray:
    return np.where(d <= 0.04045, d / 12.92, ((d + 0.055) / 1.055) ** 2.4)


def _rec709_inverse_oetf(d: np.ndarray) -> np.ndarray:
    return np.where(d < 0.081, d / 4.5, ((d + 0.099) / 1.099) ** (1 / 0.45))


def _s_curve_inverse(d: np.ndarray, p: float, c: float) -> np.ndarray:
    """Inverse of ``f(v) = v^p / (v^p + c (1 - v)^p)``."""
    with np.errstate(divide="ignore", over="ignore"):  # d = 0: q = inf -> 0
        q = ((1.0 - d) / (c * d)) ** (1.0 / p)
    return 1.0 / (1.0 + q)


def inverse_crf_family(n_samples: int = N_SAMPLES) -> np.ndarray:
    """The curves the basis is fitted to: ``num_curves x n_samples`` float64, each monotone with g(0)=0, g(1)=1."""
    d = np.linspace(0.0, 1.0, n_samples)
    curves = []
    for s in np.geomspace(0.05, 5.0, 20):
        for n in np.geomspace(0.4, 2.5, 20):
            curves.append(sigmoid_inverse_crf(d, s, n))
    curves += [d**g for g in np.geomspace(0.6, 3.5, 60)]
    curves += [((1.0 + a) ** d - 1.0) / a for a in np.geomspace(1.0, 1000.0, 40)]
    curves += [_srgb_eotf(d), _rec709_inverse_oetf(d)]
    for p in np.linspace(0.6, 2.0, 10):
        for c in np.geomspace(0.2, 5.0, 10):
            curves.append(_s_curve_inverse(d, p, c))
    rng = np.random.default_rng(_SEED)
    for _ in range(100):  # gamma, then an S-curve: g = (S^-1(d))^gamma
        p, c, g = rng.uniform(0.6, 2.0), np.exp(rng.uniform(np.log(0.3), np.log(3.0))), rng.uniform(1.0, 3.0)
        curves.append(_s_curve_inverse(d, p, c) ** g)
    base = np.stack(curves)
    i, j = rng.integers(0, len(base), (2, 200))
    w = rng.uniform(0.0, 1.0, (200, 1))
    fam = np.concatenate([base, w * base[i] + (1.0 - w) * base[j]])
    fam[:, 0], fam[:, -1] = 0.0, 1.0
    return fam


def build_basis(n_components: int = N_COMPONENTS, n_samples: int = N_SAMPLES) -> dict[str, np.ndarray]:
    """PCA of :func:`inverse_crf_family`: ``{"x", "g0", "hinv", "std", "explained", "num_curves"}`` (float32).

    ``std`` is the standard deviation of the family's coordinates along each component (singular value /
    sqrt(num_curves)); ``hinv * std`` is a basis in which the family's weights have unit variance.

    Components are the right singular vectors of the centred family (orthonormal columns of ``hinv``), each with
    the sign that makes its largest-magnitude entry positive, so the result is reproducible.
    """
    fam = inverse_crf_family(n_samples)
    g0 = fam.mean(0)
    _, s, vt = np.linalg.svd(fam - g0, full_matrices=False)
    comps = vt[:n_components]
    idx = np.abs(comps).argmax(1)
    comps *= np.sign(comps[np.arange(n_components), idx])[:, None]
    var = s**2
    return {"x": np.linspace(0.0, 1.0, n_samples).astype(np.float32), "g0": g0.astype(np.float32),
            "hinv": comps.T.astype(np.float32), "std": (s[:n_components] / np.sqrt(len(fam))).astype(np.float32),
            "explained": (var[:n_components] / var.sum()).astype(np.float32), "num_curves": np.array(len(fam))}


def load_basis(path: str | Path = BASIS_FILE) -> dict[str, np.ndarray]:
    """The stored basis (``crf_basis.npz``), or :func:`build_basis` if the file is missing."""
    path = Path(path)
    if not path.is_file():
        return build_basis()
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def project(curves: np.ndarray, basis: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Least-squares reconstruction of ``curves`` (``... x 1024``) in the basis: ``g0 + H (H^T (g - g0))``."""
    b = basis or load_basis()
    h = b["hinv"].astype(np.float64)
    return b["g0"] + ((curves - b["g0"]) @ h) @ h.T


def main() -> Path:
    """Write ``crf_basis.npz`` beside this module."""
    np.savez_compressed(BASIS_FILE, **build_basis())
    return BASIS_FILE


if __name__ == "__main__":
    print(main())
