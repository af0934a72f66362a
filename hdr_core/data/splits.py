"""Split rules: the public test set never reaches training or validation (``../shared/data/hdri/README.md``).

The public test set is the 8 world HDRIs shipped with Blender (``datafiles/studiolights/world``). Three of the
18 Poly Haven panoramas of ``@pmndrs/assets`` show the same site as a test image and are never trained on:
``sunrise`` (the same image as Blender's sunrise, spruit_sunrise), ``venice`` (the promenade of Blender's
sunset, venice_sunset) and ``studio`` (the studio of Blender's studio). Note that pmndrs's ``city``, ``forest``
and ``night`` are *other* places than Blender's files of the same names, so rules are per source.

For manifest-described folders (``hdri_extra``, ``fetch polyhaven``) the rule goes by Poly Haven slug
(:data:`TEST_SITE_SLUGS`, :data:`TEST_SITE_SLUG_PATTERNS`) and by a manifest ``split`` that starts with ``test``.
Poly Haven's *Studio Small* series (``studio_small_NN``) is one studio photographed under different set-ups:
``studio_small_05`` of ``hdri_extra`` shows the same cyclorama, curtains and stands as Blender's ``studio``
(``studio_small_01``) even though its content differs, so the whole series counts as the test studio's site.

Validation and training must also not share a site group (:func:`check_site_groups`).

Names and slugs can be lost (a file renamed, a folder without a manifest), so a file is also checked by content,
where ``bpy`` is installed: a panorama whose signature matches a test image's above
:data:`hdr_core.data.similarity.SAME_IMAGE` (turned, mirrored, re-exposed, resized or re-encoded: a copy) is a test
panorama whatever its name (:func:`same_image_as_test`). A second photograph of a test site is not caught that way;
the name and slug rules above are for those.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

#: Blender's studio-light worlds: the public test set.
BLENDER_TEST_SCENES = ("city", "courtyard", "forest", "interior", "night", "studio", "sunrise", "sunset")
#: The 18 panoramas of @pmndrs/assets (and ../shared/data/hdri).
PMNDRS_SCENES = ("apartment", "bridge", "city", "dawn", "esplanade", "forest", "hall", "lab", "lobby", "night",
                 "park", "sky", "studio", "sunrise", "sunset", "venice", "warehouse", "workshop")
#: pmndrs scenes that share a site with a test scene: never train or tune on them.
PMNDRS_TEST_SITE = ("sunrise", "venice", "studio")
#: Poly Haven slugs of test scenes or of the same sites -> the test scene.
TEST_SITE_SLUGS = {"spruit_sunrise": "sunrise", "venice_sunset": "sunset", "studio_small_01": "studio",
                   "studio_small_03": "studio"}
#: Slug patterns of whole Poly Haven series shot at a test scene's site -> the test scene.
TEST_SITE_SLUG_PATTERNS = ((re.compile(r"studio_small_\d+"), "studio"),)
#: The panorama files the data tools read: Radiance HDR and OpenEXR.
HDR_SUFFIXES = (".hdr", ".exr")


def panorama_files(folder: str | Path) -> list[Path]:
    """The ``.hdr``/``.exr`` files directly in ``folder`` (not its sub-folders), sorted; none if it is no folder."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in HDR_SUFFIXES) if folder.is_dir() else []


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


def test_site_of_slug(slug: str | None) -> str | None:
    """The test scene a Poly Haven slug shares its site with, or None."""
    if not slug:
        return None
    if slug in TEST_SITE_SLUGS:
        return TEST_SITE_SLUGS[slug]
    return next((scene for pat, scene in TEST_SITE_SLUG_PATTERNS if pat.fullmatch(slug)), None)


@lru_cache(maxsize=1)
def _test_signatures() -> tuple[tuple[str, object], ...]:
    """The public test set's content signatures, from the installed ``bpy`` (none without it)."""
    from hdr_core.data.similarity import signature
    from hdr_core.data.sources import blender_studiolights_dir
    from hdr_core.io import read_hdr

    folder = blender_studiolights_dir()
    if folder is None:
        return ()
    out = []
    for name in BLENDER_TEST_SCENES:
        try:
            out.append((name, signature(read_hdr(folder / f"{name}.exr"))))
        except (OSError, ValueError):  # a damaged bpy install: the name rules still hold for that scene
            continue
    return tuple(out)


@lru_cache(maxsize=1024)  # 32 KiB each
def _signature(path: str, mtime_ns: int, size: int):
    from hdr_core.data.similarity import signature
    from hdr_core.io import read_hdr

    return signature(read_hdr(path)).astype("float32")


def same_image_as_test(path: str | Path) -> tuple[str, float] | None:
    """``(test scene, score)`` if ``path`` holds a copy of a public test image (content score above
    :data:`hdr_core.data.similarity.SAME_IMAGE`), else None; None too without ``bpy`` or for an unreadable file
    (reading it later says what is wrong)."""
    from hdr_core.data.similarity import SAME_IMAGE, similarity

    tests = _test_signatures()
    if not tests:
        return None
    try:
        st = Path(path).stat()
        sig = _signature(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    except (OSError, ValueError):
        return None
    score, name = max((similarity(sig, t), n) for n, t in tests)
    return (name, score) if score > SAME_IMAGE else None


def violations(paths: list[Path]) -> dict[Path, str]:
    """Every file that must not be trained or validated on, with the reason."""
    from hdr_core.data.catalog import entries_for

    out: dict[Path, str] = {}
    rest = []
    for p in map(Path, paths):
        if is_blender_test_file(p):
            out[p] = "a Blender studio-light HDRI is in the public test set; never train on it"
        else:
            rest.append(p)
    groups: dict[Path, list[Path]] = {}
    for p in rest:
        groups.setdefault(p.parent, []).append(p)
    for files in groups.values():
        pmndrs = is_pmndrs_folder(files)
        entries = entries_for(files)
        for f in files:
            e = entries.get(f, {})
            scene = test_site_of_slug(e.get("polyhaven_slug") or e.get("slug"))
            if pmndrs and _stem(f) in PMNDRS_TEST_SITE:
                out[f] = (f"shares its site with a public test scene ({', '.join(PMNDRS_TEST_SITE)} are never "
                          "trained on)")
            elif scene:
                slug = e.get("polyhaven_slug") or e.get("slug")
                out[f] = f"Poly Haven {slug} shares its site with test scene {scene}"
            elif str(e.get("split", "")).startswith("test"):
                out[f] = f"its manifest marks it as {e['split']!r}"
            elif (copy := same_image_as_test(f)) is not None:
                out[f] = (f"the same image as test scene {copy[0]} by content (score {copy[1]:.3f}, "
                          "hdr_core.data.similarity)")
    return out


def check_training_files(paths: list[Path]) -> None:
    """Raise :class:`SplitViolation` if any file is a test panorama or a same-site cousin of one."""
    bad = violations(paths)
    if bad:
        f = sorted(bad)[0]
        raise SplitViolation(f"{f}: {bad[f]}")


def filter_training_files(paths: list[Path]) -> list[Path]:
    """Drop test panoramas and same-site cousins (for callers that pass a whole folder)."""
    bad = violations(paths)
    return sorted(Path(p) for p in paths if Path(p) not in bad)


def check_site_groups(train: list[Path], val: list[Path]) -> None:
    """Raise :class:`SplitViolation` if a site group has panoramas in both training and validation."""
    from hdr_core.data.catalog import entries_for

    entries = entries_for(list(train) + list(val))
    tg = {entries[Path(f)]["site_group"]: f for f in train}
    for f in val:
        g = entries[Path(f)]["site_group"]
        if g in tg:
            raise SplitViolation(f"{f}: its site group {g!r} is also in training ({tg[g]}); hold out whole groups")
