"""HDR panorama sources and their manifests.

- ``pmndrs``: the 18 CC0 Poly Haven panoramas of the npm package ``@pmndrs/assets`` (512x256, half-float EXR
  stored base64 in ``hdri/<name>.exr.js``), fetched with ``npm pack`` (the npm registry is reachable where PyPI
  is) and decoded to ``<name>.exr``. Training and validation data (split rules: :mod:`hdr_core.data.splits`).
- ``blender``: the 8 world HDRIs inside the installed ``bpy`` wheel (``datafiles/studiolights/world``), CC0,
  1024x512: the **public test set**, never trained on.
- any folder of ``.hdr``/``.exr`` panoramas.

A manifest (``manifest.json``) per folder records, for each panorama: name, source, licence, resolution,
peak value, median luminance, dynamic range in stops and split group.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from hdr_core.checkpoint import atomic_write_bytes, atomic_write_text
from hdr_core.color import luminance
from hdr_core.data.splits import BLENDER_TEST_SCENES, PMNDRS_TEST_SITE, panorama_files

PMNDRS_PACKAGE = "@pmndrs/assets"
PMNDRS_VERSION = "1.7.0"
EXR_MAGIC = b"\x76\x2f\x31\x01"
_DATA_URL = "data:application/exr;base64,"


def decode_exr_js(text: str, name: str = "<exr.js>") -> bytes:
    """The EXR bytes inside a pmndrs ``export default 'data:application/exr;base64,...'`` module."""
    start = text.find(_DATA_URL)
    if start < 0:
        raise ValueError(f"{name}: no base64 EXR data URL found")
    start += len(_DATA_URL)
    end = min(i for i in (text.find("'", start), text.find('"', start), text.find("`", start)) if i >= 0)
    data = base64.b64decode(text[start:end], validate=True)
    if not data.startswith(EXR_MAGIC):
        raise ValueError(f"{name}: decoded data is not an OpenEXR file")
    return data


def fetch_pmndrs(out_dir: str | Path, version: str = PMNDRS_VERSION, npm: str = "npm") -> list[Path]:
    """Fetch ``@pmndrs/assets@version`` with ``npm pack`` and write its 18 panoramas as ``out_dir/<name>.exr``.

    Idempotent: existing files are kept. Returns the EXR paths (sorted) and writes ``manifest.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if shutil.which(npm) is None:
        raise RuntimeError(f"`{npm}` not found: install Node.js/npm to fetch {PMNDRS_PACKAGE}")
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([npm, "pack", f"{PMNDRS_PACKAGE}@{version}", "--pack-destination", tmp, "--silent"],
                             capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if res.returncode != 0 or not tarballs:
            raise RuntimeError(f"npm pack {PMNDRS_PACKAGE}@{version} failed: {res.stderr.strip()[-500:]}")
        extract_pmndrs_tarball(tarballs[0], out)
    files = sorted(out.glob("*.exr"))
    write_manifest(out, source=f"npm {PMNDRS_PACKAGE}@{version} (Poly Haven photographs)", licence="CC0-1.0",
                   split=lambda stem: "test-site (never train)" if stem in PMNDRS_TEST_SITE else "train/val")
    return files


def extract_pmndrs_tarball(tgz: str | Path, out: Path) -> list[Path]:
    """Decode every ``package/hdri/<name>.exr.js`` of a pmndrs tarball to ``out/<name>.exr`` (kept if present)."""
    written = []
    with tarfile.open(tgz) as tar:
        for member in tar.getmembers():
            if not (member.isfile() and member.name.startswith("package/hdri/") and member.name.endswith(".exr.js")):
                continue
            dest = out / f"{Path(member.name).name[: -len('.exr.js')]}.exr"
            if not dest.exists():
                atomic_write_bytes(dest, decode_exr_js(tar.extractfile(member).read().decode(), member.name))
            written.append(dest)
    return sorted(written)


def blender_studiolights_dir() -> Path | None:
    """The ``datafiles/studiolights/world`` folder of the installed ``bpy`` wheel, or None without bpy."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    folders = sorted(root.glob("*/datafiles/studiolights/world"))
    return folders[0] if folders else None


def blender_hdri(name: str) -> Path:
    """One world HDRI of the public test set (``forest``, ``city``, ...) from the installed ``bpy`` wheel."""
    folder = blender_studiolights_dir()
    if folder is None:
        raise RuntimeError("the bpy wheel is not installed (pip install bpy==5.0.1), or it has no studio lights")
    path = folder / f"{name}.exr"
    if not path.is_file():
        raise RuntimeError(f"no studio-light HDRI named {name!r} in {folder}")
    return path


def blender_test_set() -> list[Path]:
    """The public test set: the 8 world HDRIs shipped in the installed ``bpy`` wheel."""
    return [blender_hdri(n) for n in BLENDER_TEST_SCENES]


def panorama_stats(path: Path) -> dict:
    """Resolution, peak, median luminance and dynamic range (stops between the 0.1th percentile and the peak)."""
    from hdr_core.io import read_hdr

    img = read_hdr(path)
    lum = luminance(img)
    lo = max(float(np.percentile(lum, 0.1)), 1e-8)
    return {"width": int(img.shape[1]), "height": int(img.shape[0]), "peak": float(img.max()),
            "median_luminance": float(np.median(lum)), "dynamic_range_stops": float(np.log2(max(lum.max(), lo) / lo))}


def manifest_entry(path: Path, source: str, licence: str, split: str = "train/val", **fields) -> dict:
    """One panorama's manifest entry: name, file, source, licence, split, ``fields`` and :func:`panorama_stats`."""
    return {"name": path.stem, "file": path.name, "source": source, "licence": licence, "split": split, **fields,
            **panorama_stats(path)}


def write_manifest(folder: str | Path, source: str, licence: str, split=lambda stem: "train/val") -> Path:
    """Write ``folder/manifest.json`` describing every ``.hdr``/``.exr`` panorama in the folder."""
    folder = Path(folder)
    entries = [manifest_entry(f, source, licence, split(f.stem)) for f in panorama_files(folder)]
    path = folder / "manifest.json"
    atomic_write_text(path, json.dumps({"panoramas": entries}, indent=2))
    return path
