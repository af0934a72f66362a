"""What each training panorama is: manifests, the pmndrs catalogue, site groups and the validation groups file.

Two real folders feed training (``../shared/data/``, or what ``python -m hdr_core.data fetch`` writes):

* the 18 pmndrs scenes (``hdri/``: the 1024x512 Radiance originals, no manifest; or ``fetch pmndrs``: the npm
  package's 512x256 half-float copies, with a manifest). Their class, site group and Poly Haven slug (where known)
  are in :data:`PMNDRS_CATALOG`; where both copies are given, :func:`prefer_originals` keeps the larger one;
* ``hdri_extra/`` (35 scenes) or a ``fetch polyhaven`` folder: ``manifest.json`` (a list, or ``{"panoramas":
  [...]}``) with class, site group, provenance, licence and Poly Haven slug per file.

:func:`read_manifest` gives one normalised entry per file of a folder (``name``, ``file``, ``class``,
``site_group``, ``licence``, ``source``, ...), whatever the folder's origin: it is what ``training.json`` records
and what the split rules (:mod:`hdr_core.data.splits`) and the validation groups work on.

The validation groups file (``configs/data/validation_groups.yaml``) names whole site groups per class; it is fixed
before training and loaded by :func:`load_validation_groups`, which checks it covers at least
:data:`VALIDATION_MINIMUM` groups of each class.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from hdr_core.data.splits import _stem, panorama_files

#: The 18 pmndrs scenes: class (indoor / outdoor / night, as ``hdri_extra/manifest.json``), Poly Haven slug where
#: known (``../shared/data/hdri/README.md``), ``sun`` where the sun is in the panorama. Every scene is its own site
#: group, named after the file.
PMNDRS_CATALOG: dict[str, dict] = {
    "apartment": {"class": "indoor", "polyhaven_slug": "lebombo"},
    "bridge": {"class": "indoor"},  # a glazed footbridge
    "city": {"class": "outdoor", "polyhaven_slug": "potsdamer_platz"},
    "dawn": {"class": "outdoor", "polyhaven_slug": "kiara_1_dawn"},
    "esplanade": {"class": "indoor"},  # a shopping arcade under skylights
    "forest": {"class": "outdoor", "polyhaven_slug": "forest_slope"},
    "hall": {"class": "indoor"},
    "lab": {"class": "indoor"},
    "lobby": {"class": "indoor", "polyhaven_slug": "st_fagans_interior"},
    "night": {"class": "night", "polyhaven_slug": "dikhololo_night"},
    "park": {"class": "outdoor", "sun": True, "polyhaven_slug": "rooitou_park"},
    "sky": {"class": "outdoor", "sun": True},
    "studio": {"class": "indoor", "polyhaven_slug": "studio_small_03"},
    "sunrise": {"class": "outdoor", "sun": True, "polyhaven_slug": "spruit_sunrise"},
    "sunset": {"class": "outdoor"},  # Piazzetta San Marco
    "venice": {"class": "outdoor"},
    "warehouse": {"class": "indoor", "polyhaven_slug": "empty_warehouse_01"},
    "workshop": {"class": "indoor"},
}
PMNDRS_LICENCE = "CC0-1.0 (Poly Haven)"
PMNDRS_SOURCE = "Poly Haven photographs as selected by @pmndrs/assets 1.7.0"

#: Categories a validation groups file must cover, how many site groups of each at least, and the manifest class
#: their panoramas must have.
VALIDATION_MINIMUM = {"sunny_outdoor": 3, "indoor": 3, "night": 1}
VALIDATION_CLASS = {"sunny_outdoor": "outdoor", "indoor": "indoor", "night": "night"}
MANIFEST = "manifest.json"


class ManifestError(ValueError):
    """A manifest or validation groups file that cannot be used."""


def _rows(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: not a readable JSON manifest ({e})") from e
    rows = data.get("panoramas") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "file" in r for r in rows):
        raise ManifestError(f"{path}: expected a list of panorama entries with a 'file' key "
                            "(or {'panoramas': [...]})")
    return rows


def manifest_rows(folder: str | Path) -> dict[str, dict]:
    """The raw entries of ``folder/manifest.json`` keyed by file name (none without a manifest), for a fetcher that
    updates its own files' entries and keeps everyone else's (:func:`write_manifest_rows`)."""
    path = Path(folder) / MANIFEST
    return {r["file"]: r for r in _rows(path)} if path.is_file() else {}


def write_manifest_rows(folder: str | Path, rows: dict[str, dict]) -> Path:
    """Write ``rows`` (:func:`manifest_rows`' form) as ``folder/manifest.json``, sorted by file, atomically."""
    from hdr_core.checkpoint import atomic_write_text

    path = Path(folder) / MANIFEST
    atomic_write_text(path, json.dumps(sorted(rows.values(), key=lambda e: e["file"]), indent=1))
    return path


def is_pmndrs_name_set(stems: set[str]) -> bool:
    """True when a folder's panoramas are (a subset of, at least 3 of) the 18 pmndrs scenes, judged by names."""
    return len(stems) >= 3 and stems <= set(PMNDRS_CATALOG)


def read_manifest(folder: str | Path, files: list[Path] | None = None) -> dict[str, dict]:
    """One normalised entry per panorama file of ``folder`` (keyed by file name), for ``files`` (default: all).

    The folder's ``manifest.json`` where present; for a pmndrs folder the catalogue fills in what the manifest
    lacks (class, site group, Poly Haven slug, licence, source). Every entry has ``name``, ``file``, ``class``
    (``unknown`` if nobody said), ``site_group`` (default: the name) and ``licence``.
    """
    folder = Path(folder)
    listing = panorama_files(folder)
    files = listing if files is None else files
    rows = {r["file"]: dict(r) for r in _rows(folder / MANIFEST)} if (folder / MANIFEST).is_file() else {}
    # Whether the folder is a pmndrs set is judged on the whole folder, not on the files asked about: a run's two
    # validation panoramas from ../shared/data/hdri are pmndrs scenes as much as its thirteen training ones.
    stems = {_stem(f.name) for f in [*listing, *files]} | {_stem(n) for n in rows}
    pmndrs = is_pmndrs_name_set(stems)
    out: dict[str, dict] = {}
    for f in files:
        e = rows.get(f.name, {"file": f.name})
        e.setdefault("name", _stem(f.name))
        if pmndrs:
            cat = PMNDRS_CATALOG[e["name"]]
            e.setdefault("set", "pmndrs")
            for k, v in cat.items():
                e.setdefault(k, v)
            e.setdefault("licence", PMNDRS_LICENCE)
            e.setdefault("source", PMNDRS_SOURCE)
        e.setdefault("class", "unknown")
        e.setdefault("site_group", e["name"])
        e.setdefault("licence", "unknown")
        out[f.name] = e
    return out


def entries_for(files: list[Path]) -> dict[Path, dict]:
    """:func:`read_manifest` entries for a list of files from any folders."""
    by_folder: dict[Path, list[Path]] = {}
    for f in files:
        by_folder.setdefault(Path(f).parent, []).append(Path(f))
    out: dict[Path, dict] = {}
    for folder, fs in by_folder.items():
        entries = read_manifest(folder, sorted(fs))
        out.update({f: {"folder": str(folder), **entries[f.name]} for f in fs})
    return out


def prefer_originals(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Where a pmndrs scene comes from several folders (the 1024x512 originals and the npm 512x256 copies), keep the
    widest copy (manifest ``width``, else the file's own size). Returns ``(kept, dropped)``."""
    entries = entries_for(files)
    by_name: dict[str, list[Path]] = {}
    for f, e in entries.items():
        if e.get("set") == "pmndrs":
            by_name.setdefault(e["name"], []).append(f)
    dropped: list[Path] = []
    for copies in by_name.values():
        if len(copies) > 1:
            widths = {f: entries[f].get("width") or _width(f) for f in copies}
            best = max(copies, key=lambda f: (widths[f], str(f)))
            dropped += [f for f in copies if f != best]
    return sorted(set(files) - set(dropped)), sorted(dropped)


def _width(path: Path) -> int:
    from hdr_core.io import read_hdr

    return int(read_hdr(path).shape[1])


def load_validation_groups(path: str | Path) -> dict:
    """Read a validation groups file: ``groups: {class: [site_group, ...]}`` covering :data:`VALIDATION_MINIMUM`.

    Returns ``{"file", "sha256", "groups": {class: [...]}, "site_groups": [...]}`` (what ``training.json`` records).
    """
    path = Path(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ManifestError(f"{path}: not a readable validation groups file ({e})") from e
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, dict) or not all(isinstance(v, list) for v in groups.values()):
        raise ManifestError(f"{path}: expected 'groups: {{class: [site_group, ...]}}'")
    for cls, n in VALIDATION_MINIMUM.items():
        if len(groups.get(cls, [])) < n:
            raise ManifestError(f"{path}: needs at least {n} '{cls}' site group(s), has {len(groups.get(cls, []))}")
    unknown = sorted(set(groups) - set(VALIDATION_CLASS))
    if unknown:
        raise ManifestError(f"{path}: unknown categories {unknown} (known: {', '.join(VALIDATION_CLASS)})")
    names = [g for v in groups.values() for g in v]
    if len(set(names)) != len(names):
        raise ManifestError(f"{path}: a site group is listed twice")
    return {"file": str(path), "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "groups": {k: list(v) for k, v in groups.items()}, "site_groups": sorted(names)}


def split_by_groups(files: list[Path], groups: dict) -> tuple[list[Path], list[Path]]:
    """``(train, validation)``: every panorama whose site group a validation groups file names is validation.

    Raises :class:`ManifestError` if a named group has no panorama among ``files`` or a panorama's manifest class
    contradicts its category (e.g. an indoor scene listed as ``sunny_outdoor``).
    """
    entries = entries_for(files)
    category = {g: c for c, gs in groups["groups"].items() for g in gs}
    val = [f for f in files if entries[f]["site_group"] in category]
    missing = sorted(set(category) - {entries[f]["site_group"] for f in val})
    if missing:
        raise ManifestError(f"{groups['file']}: validation site group(s) {missing} not found in the data")
    for f in val:
        want, have = VALIDATION_CLASS[category[entries[f]["site_group"]]], entries[f]["class"]
        if have != want:
            raise ManifestError(f"{groups['file']}: {f} is listed as {category[entries[f]['site_group']]} but its "
                                f"manifest class is {have!r}")
    return sorted(set(files) - set(val)), sorted(val)
