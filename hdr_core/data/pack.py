"""A compact copy of the training data that travels with the repository (``python -m hdr_core.data pack``).

``pack_panoramas(sources, out, height)`` keeps what training may use (the split rules of :mod:`hdr_core.data.splits`
drop the test scenes' same-site cousins *before* anything is copied; of a pmndrs scene given twice the larger copy is
kept), resizes each panorama to ``height x 2*height`` with the area filter training itself uses
(:func:`hdr_core.data.pairs.resize_pano`) and writes it as a half-float ZIP OpenEXR, one output folder per source
folder. Each folder's ``manifest.json`` holds the source's normalised entries
(:func:`hdr_core.data.catalog.read_manifest`: class, site group, Poly Haven slug, licence, provenance) plus
``packed_from``, the new size and, where a panorama is brighter than half floats hold (65504), the power of two it
was divided by (``packed_scale``: exact in binary floating point, and every pair calibrates its HDR against its
LDR, so a global scale does not reach the loss). Training on the pack applies the same split rules and validation
groups as on the sources: the names, site groups and slugs are the same.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from hdr_core.checkpoint import atomic_write_text
from hdr_core.data.catalog import MANIFEST, entries_for, prefer_originals
from hdr_core.data.pairs import find_hdr_files, resize_pano
from hdr_core.data.splits import filter_training_files
from hdr_core.io import read_hdr, write_exr

__all__ = ["HALF_MAX", "pack_panoramas"]

#: The largest finite half float.
HALF_MAX = 65504.0


def pack_panoramas(sources: list[str | Path], out: str | Path, height: int = 256) -> list[Path]:
    """Pack the usable panoramas of ``sources`` into ``out`` (see the module doc); returns the files written."""
    files = find_hdr_files(sources)
    kept, _ = prefer_originals(filter_training_files(files))
    entries = entries_for(kept)
    out = Path(out)
    by_folder: dict[Path, list[Path]] = {}
    for f in kept:
        by_folder.setdefault(f.parent, []).append(f)
    names: set[str] = set()
    written: list[Path] = []
    for folder, fs in sorted(by_folder.items()):
        name = folder.name
        while name in names:  # two source folders of the same name stay apart
            name += "_"
        names.add(name)
        dest = out / name
        dest.mkdir(parents=True, exist_ok=True)
        rows = []
        for f in sorted(fs):
            img = np.maximum(resize_pano(read_hdr(f), height).astype(np.float32), 0.0)
            peak = float(img.max())
            scale = 2.0 ** -math.ceil(math.log2(peak / HALF_MAX)) if peak > HALF_MAX else 1.0
            target = dest / (entries[f]["name"] + ".exr")
            write_exr(target, img * np.float32(scale), half=True, compression="zip")
            row = {k: v for k, v in entries[f].items() if k != "folder"}
            row.update(file=target.name, width=2 * height, height=height, packed_from=str(f))
            if scale != 1.0:
                row["packed_scale"] = scale
            rows.append(row)
            written.append(target)
        atomic_write_text(dest / MANIFEST, json.dumps(rows, indent=1))
        for lic in sorted(folder.glob("LICENSE*")):  # licence texts the source folder carries go along
            shutil.copyfile(lic, dest / lic.name)
    return written
