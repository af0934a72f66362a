"""Split rules: the public test set never reaches training (``../shared/data/hdri/README.md``).

The public test set is the 8 world HDRIs shipped with Blender (``datafiles/studiolights/world``). Three of the
18 Poly Haven panoramas of ``@pmndrs/assets`` show the same site as a test image and are never trained on:
``sunrise`` (the same image as Blender's sunrise, spruit_sunrise), ``venice`` (the promenade of Blender's
sunset, venice_sunset) and ``studio`` (the studio of Blender's studio). Note that pmndrs's ``city``, ``forest``
and ``night`` are *other* places than Blender's files of the same names, so rules are per source.
"""

from __future__ import annotations

from pathlib import Path

#: Blender's studio-light worlds: the public test set.
BLENDER_TEST_SCENES = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
#: The 18 panoramas of @pmndrs/assets (and ../shared/data/hdri).
PMNDRS_SCENES = ("apartment", "bridge", "city", "dawn", "esplanade", "forest", "hall", "lab", "lobby", "night",
                 "park", "sky", "studio", "sunrise", "sunset", "venice", "warehouse", "workshop")
#: pmndrs scenes that share a site with a test scene: never train or tune on them.
PMNDRS_TEST_SITE = ("sunrise", "venice", "studio")


class SplitViolation(ValueError):
    """A test-set panorama (or a same-site cousin) was about to be used for training or validation."""


def is_blender_test_file(path: str | Path) -> bool:
    """True for a file inside a Blender ``studiolights/world`` folder."""
    parts = Path(path).resolve().parts
    return len(parts) >= 3 and parts[-3:-1] == ("studiolights", "world")


def is_pmndrs_folder(paths: list[Path]) -> bool:
    """True when a folder's panoramas are (a subset of) the pmndrs set, judged by names."""
    stems = {_stem(p) for p in paths}
    return len(stems) >= 3 and stems <= set(PMNDRS_SCENES)


def _stem(p: str | Path) -> str:
    name = Path(p).name
    for suffix in (".exr.js", ".hdr", ".exr"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(p).stem


def check_training_files(paths: list[Path]) -> None:
    """Raise :class:`SplitViolation` if any file is a test panorama or a same-site cousin of one."""
    for p in paths:
        if is_blender_test_file(p):
            raise SplitViolation(f"{p}: a Blender studio-light HDRI is in the public test set; never train on it")
    groups: dict[Path, list[Path]] = {}
    for p in paths:
        groups.setdefault(Path(p).parent, []).append(Path(p))
    for files in groups.values():
        if is_pmndrs_folder(files):
            bad = sorted(str(f) for f in files if _stem(f) in PMNDRS_TEST_SITE)
            if bad:
                raise SplitViolation(f"{bad[0]}: shares its site with a public test scene "
                                     f"({', '.join(PMNDRS_TEST_SITE)} are never trained on)")


def filter_training_files(paths: list[Path]) -> list[Path]:
    """Drop test panoramas and same-site cousins (for callers that pass a whole folder)."""
    keep = [Path(p) for p in paths if not is_blender_test_file(p)]
    groups: dict[Path, list[Path]] = {}
    for p in keep:
        groups.setdefault(p.parent, []).append(p)
    out = []
    for files in groups.values():
        pm = is_pmndrs_folder(files)
        out += [f for f in files if not (pm and _stem(f) in PMNDRS_TEST_SITE)]
    return sorted(out)
