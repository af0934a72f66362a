"""Is a new panorama one the project already has, or another copy of a test scene? ``python -m hdr_core.data similar``.

A panorama's signature is its log luminance, area-resized to 128x64 and normalised to zero mean and unit variance;
two panoramas' similarity is the largest correlation of their signatures over every azimuth shift (128 steps of
2.8 deg) and a left-right mirror, so a copy turned, mirrored, re-exposed, resized or re-encoded still scores near 1.
Measured on the project's data (``docs/method-notes.md``, "More panoramas from PyPI"): the same image at two sizes
and encodings (the pmndrs ``sunrise`` against Blender's ``sunrise``) scores 1.00, a copy of Blender's ``forest``
turned by a fraction of a step, mirrored, resized to 256x128 and stored as half floats 0.995; distinct places score
at most 0.91 (``hilly_terrain_01`` against the pmndrs ``night``, two open landscapes), open land under a sky
typically 0.6-0.9. A score above :data:`SAME_IMAGE` flags a copy; the split rules treat a copy of a test image as a
test image (:func:`hdr_core.data.splits.same_image_as_test`). Two photographs of one site are *not* reliably
flagged: the pmndrs ``venice``, the promenade of the test scene ``sunset`` at another time of day, scores 0.85
against Blender's ``night`` and less against ``sunset``. The split rules go by site as well, which needs a look at
the panoramas.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hdr_core.color import luminance

#: Signature size (width, height).
SIGNATURE_SIZE = (128, 64)
#: Scores above this are treated as the same image.
SAME_IMAGE = 0.97


def signature(img: np.ndarray) -> np.ndarray:
    """The ``64 x 128`` normalised log-luminance signature of an ``h x 2h x 3`` linear panorama."""
    lum = np.log(np.maximum(luminance(np.asarray(img, dtype=np.float32)), 1e-4))
    small = cv2.resize(lum, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA).astype(np.float64)
    return (small - small.mean()) / (small.std() + 1e-6)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """The largest correlation of two signatures over every azimuth shift of ``a`` and of its mirror."""
    fa, fb = np.fft.rfft(a, axis=1), np.fft.rfft(b, axis=1)
    fm = np.fft.rfft(a[:, ::-1], axis=1)
    n = a.shape[1]
    # circular cross-correlation along the azimuth, summed over rows, for every shift at once
    corr = np.fft.irfft(np.conj(fb) * fa, n=n, axis=1).sum(0)
    corr_m = np.fft.irfft(np.conj(fb) * fm, n=n, axis=1).sum(0)
    return float(max(corr.max(), corr_m.max()) / a.size)


def nearest(files: list[Path], references: list[Path], top: int = 1) -> list[tuple[Path, list[tuple[float, Path]]]]:
    """For each file, its ``top`` most similar references (``(score, path)``, best first), skipping itself."""
    from hdr_core.io import read_hdr

    refs = {Path(r): signature(read_hdr(r)) for r in references}
    out = []
    for f in map(Path, files):
        s = refs.get(f)
        s = signature(read_hdr(f)) if s is None else s
        scores = sorted(((similarity(s, t), r) for r, t in refs.items() if r.resolve() != f.resolve()),
                        key=lambda x: -x[0])
        out.append((f, scores[:top]))
    return out
