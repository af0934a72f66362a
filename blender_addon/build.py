"""Build the installable extension: ``python -m blender_addon.build [--out dist/] [--platform linux-x64] ...``.

1. Stages ``lanet_hdr/``: the add-on modules, ``blender_manifest.toml``, ``wheels/`` and ``models/``.
2. ``wheels/``: exactly the files the manifest's ``wheels`` list names. ``lanet_hdr_core-*.whl`` is built here
   from ``hdr_core/`` (pure Python, no dependencies declared: Blender has numpy, and the add-on reads and writes
   images with Blender, not OpenCV/OpenEXR); the others (ONNX Runtime, one per platform and per Python that a
   supported Blender uses: :data:`BLENDER_PYTHONS`) are downloaded once with ``pip download --only-binary=:all:``
   into a cache (``--wheel-cache``). Blender installs only the wheel matching its own Python.
3. ``models/<name>/model.onnx`` + ``model.json``: every model in ``hdr_core/weights/<name>/`` (exported with
   torch first if only ``model.safetensors`` is there) and every ``--model`` (an ``.onnx`` file or a checkpoint
   folder). With no model at all the build still works: the add-on then asks for a model in its Preferences.
4. Runs Blender's own extension tool (``bl_pkg/cli/blender_ext.py`` from the ``bpy`` wheel): ``build``
   (``--split-platforms`` when several platforms are built: one zip per platform with only its wheels), then
   ``validate`` on each zip, with the installed ``bpy``'s tool and with that of every other Blender release in
   ``--validate-with`` (default: the oldest and the newest supported, :data:`VALIDATE_WITH`; the tool is taken
   from that release's ``bpy`` wheel, downloaded once, and cached in ``<wheel cache>/validators/``).

Install a zip in Blender with Edit > Preferences > Get Extensions > (menu) Install from Disk, or from a script
with ``bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default")``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parent
REPO = ADDON_DIR.parent
MANIFEST = ADDON_DIR / "blender_manifest.toml"
CORE_DIST = "lanet_hdr_core"
DEFAULT_CACHE = Path.home() / ".cache" / "lanet-hdr" / "wheels"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # reproducible wheels
#: The Python each Blender release series embeds, from the tags of the ``bpy`` wheels on PyPI (2026-12-03:
#: ``pip index versions bpy --python-version 3.11`` lists 4.2.0 .. 5.0.1, ``--python-version 3.13`` lists
#: 5.1.0 .. 5.3.0, 3.12 none). The manifest's wheels must cover every Python here, on every platform.
BLENDER_PYTHONS = {"4.2": "3.11", "4.3": "3.11", "4.4": "3.11", "4.5": "3.11", "5.0": "3.11",
                   "5.1": "3.13", "5.2": "3.13", "5.3": "3.13"}
#: Blender releases whose extension validator checks every zip besides the installed bpy's: the oldest LTS and
#: the newest release (latest patches on 2026-12-03).
VALIDATE_WITH = ("4.2.23", "5.3.0")


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def find_blender_ext() -> Path:
    """``blender_ext.py`` (Blender's extension CLI) inside the installed ``bpy`` wheel."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: the bpy module is not installed (pip install bpy==5.0.1); its blender_ext.py builds "
                         "the extension")
    root = Path(next(iter(spec.submodule_search_locations)))
    hits = sorted(root.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not hits:
        raise SystemExit(f"error: no bl_pkg/cli/blender_ext.py under {root}")
    return hits[-1]


def blender_python(version: str) -> str:
    """The Python of Blender ``version`` (``5.3.0`` -> ``3.13``), from :data:`BLENDER_PYTHONS`."""
    series = ".".join(version.split(".")[:2])
    if series not in BLENDER_PYTHONS:
        raise SystemExit(f"error: Blender {version}: unknown Python (known series: {', '.join(BLENDER_PYTHONS)}; "
                         "add it to BLENDER_PYTHONS in blender_addon/build.py)")
    return BLENDER_PYTHONS[series]


def fetch_validator(version: str, cache: Path = DEFAULT_CACHE) -> Path:
    """``blender_ext.py`` of Blender ``version``: taken once from its ``bpy`` wheel on PyPI, then cached."""
    target = cache / "validators" / f"bpy-{version}" / "blender_ext.py"
    if target.is_file():
        return target
    plat = "manylinux_2_28_x86_64"
    with tempfile.TemporaryDirectory(prefix="lanet-hdr-bpy-") as tmp:
        log(f"downloading the bpy {version} wheel (once) for its extension validator")
        subprocess.run([sys.executable, "-m", "pip", "download", f"bpy=={version}", "--no-deps",
                        "--only-binary=:all:", "--python-version", blender_python(version), "--implementation", "cp",
                        "--platform", plat, "-d", tmp, "--quiet", "--disable-pip-version-check"], check=True)
        wheels = sorted(Path(tmp).glob(f"bpy-{version}-*.whl"))
        if not wheels:
            raise SystemExit(f"error: pip did not fetch a bpy {version} wheel for {plat}")
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [n for n in zf.namelist() if n.endswith("/scripts/addons_core/bl_pkg/cli/blender_ext.py")]
            if not members:
                raise SystemExit(f"error: {wheels[0].name}: no bl_pkg/cli/blender_ext.py inside")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp_target = target.with_suffix(".tmp")
            tmp_target.write_bytes(zf.read(members[0]))
            tmp_target.replace(target)
    return target


def _blender_ext_module(path: Path):
    spec = importlib.util.spec_from_file_location("_lanet_blender_ext", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def wheel_platforms(filename: str, blender_ext) -> list[str]:
    """Blender platforms a wheel file serves (``any`` for pure-Python wheels)."""
    tag = Path(filename).stem.split("-")[-1]
    return ["any"] if tag == "any" else blender_ext.blender_platforms_from_wheel_platform(tag)


# ------------------------------------------------------------------------------------------------ wheels
def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def core_version() -> str:
    text = (REPO / "hdr_core" / "__init__.py").read_text()
    m = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    if not m:
        raise SystemExit("error: no __version__ in hdr_core/__init__.py")
    return m.group(1)


def build_core_wheel(dest: Path) -> Path:
    """A pure-Python wheel of ``hdr_core`` (sources only: no weights, no caches), written reproducibly."""
    version = core_version()
    name = f"{CORE_DIST}-{version}-py3-none-any.whl"
    dist_info = f"{CORE_DIST}-{version}.dist-info"
    files: list[tuple[str, bytes]] = []
    for p in sorted((REPO / "hdr_core").rglob("*")):
        rel = p.relative_to(REPO)
        if p.is_dir() or "__pycache__" in rel.parts or rel.parts[1:2] == ("weights",) or p.suffix in (".pyc", ".pyo"):
            continue
        files.append((rel.as_posix(), p.read_bytes()))
    metadata = (f"Metadata-Version: 2.1\nName: {CORE_DIST.replace('_', '-')}\nVersion: {version}\n"
                "Summary: hdr_core from lanet-hdr (LDR panorama -> calibrated HDR), bundled by the Blender "
                "extension; its inference path needs only numpy and onnxruntime\n"
                "License: MIT\nRequires-Python: >=3.11\n")
    wheel_meta = "Wheel-Version: 1.0\nGenerator: blender_addon.build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files += [(f"{dist_info}/METADATA", metadata.encode()), (f"{dist_info}/WHEEL", wheel_meta.encode()),
              (f"{dist_info}/top_level.txt", b"hdr_core\n")]
    record = "".join(f"{n},{_record_hash(d)},{len(d)}\n" for n, d in files) + f"{dist_info}/RECORD,,\n"
    files.append((f"{dist_info}/RECORD", record.encode()))
    out = dest / name
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, d in files:
            info = zipfile.ZipInfo(n, _ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, d)
    return out


def _tag_python(tag: str) -> str:
    """``cp313`` -> ``3.13`` (a wheel's Python tag as ``pip download --python-version`` takes it)."""
    m = re.fullmatch(r"cp(\d)(\d+)", tag)
    if not m:
        raise SystemExit(f"error: wheel Python tag {tag!r} is not a CPython tag like cp311")
    return f"{m.group(1)}.{m.group(2)}"


def wheel_python(filename: str) -> str | None:
    """The Python (``3.11``) a binary wheel file is for, or None for a pure-Python (``py3``) wheel."""
    tag = Path(filename).stem.split("-")[-3]
    return None if tag.startswith("py") else _tag_python(tag)


def check_python_coverage(manifest: dict, blender_ext) -> None:
    """Every binary dependency has a wheel for every (platform, Blender Python) pair, else a one-line error."""
    binary: dict[str, set[tuple[str, str]]] = {}
    for entry in manifest["wheels"]:
        name = Path(entry).name
        py = wheel_python(name)
        if py is not None:
            for plat in wheel_platforms(name, blender_ext):
                binary.setdefault(name.split("-")[0], set()).add((plat, py))
    need = {(p, py) for p in manifest["platforms"] for py in set(BLENDER_PYTHONS.values())}
    for dist, have in sorted(binary.items()):
        missing = sorted(need - have)
        if missing:
            raise SystemExit(f"error: {MANIFEST}: no {dist} wheel for " +
                             ", ".join(f"{p} / Python {py}" for p, py in missing) +
                             " (add them to the wheels list)")


def fetch_wheel(filename: str, dest: Path, cache: Path) -> Path:
    """Copy ``filename`` from the cache, downloading it from PyPI first if needed (``pip download``)."""
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / filename
    if not cached.is_file():
        parts = Path(filename).stem.split("-")
        dist, version, py, abi, plat = parts[0], parts[1], parts[-3], parts[-2], parts[-1]
        cmd = [sys.executable, "-m", "pip", "download", f"{dist}=={version}", "--no-deps", "--only-binary=:all:",
               "--python-version", _tag_python(py), "--implementation", "cp", "--abi", abi, "--platform", plat,
               "-d", str(cache), "--quiet", "--disable-pip-version-check"]
        log(f"downloading {filename}")
        subprocess.run(cmd, check=True)
        if not cached.is_file():
            got = sorted(p.name for p in cache.glob(f"{dist}-{version}-*.whl"))
            raise SystemExit(f"error: pip did not fetch {filename} (have: {got}); update the manifest's wheels list")
    shutil.copy2(cached, dest / filename)
    return dest / filename


# ------------------------------------------------------------------------------------------------ models
def _onnx_meta(path: Path) -> dict:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    if "model" not in meta:
        raise SystemExit(f"error: {path} is not an hdr_core export (no 'model' metadata)")
    return meta


def _onnx_for_checkpoint(folder: Path, workdir: Path) -> Path | None:
    if (folder / "model.onnx").is_file():
        return folder / "model.onnx"
    if not (folder / "model.safetensors").is_file():
        return None
    try:
        from hdr_core.checkpoint import load_model
        from hdr_core.export import export_onnx
    except ImportError as e:
        log(f"skipping {folder}: no model.onnx and cannot export without torch ({e})")
        return None
    out = workdir / f"{folder.name}.onnx"
    log(f"exporting {folder} to ONNX")
    export_onnx(load_model(folder), out)
    return out


def stage_models(sources: list[Path], models_dir: Path, workdir: Path) -> list[str]:
    """Copy each model (``.onnx`` or checkpoint folder) to ``models_dir/<name>/``; return the names."""
    names: list[str] = []
    for src in sources:
        src = src.resolve()
        onnx = src if src.is_file() else _onnx_for_checkpoint(src, workdir)
        if onnx is None:
            continue
        meta = _onnx_meta(onnx)
        name = meta["model"]
        target = models_dir / name
        if target.exists():
            log(f"model {name}: replacing an earlier one with {src}")
            shutil.rmtree(target)
        target.mkdir(parents=True)
        shutil.copy2(onnx, target / "model.onnx")
        js = (src if src.is_dir() else src.parent) / "model.json"
        if js.is_file() and json.loads(js.read_text()).get("model") == name:
            shutil.copy2(js, target / "model.json")
        else:
            info = {"model": name, "config": json.loads(meta.get("config", "{}")), "source": "onnx metadata"}
            (target / "model.json").write_text(json.dumps(info, indent=2, sort_keys=True))
        names.append(name)
    return names


# ------------------------------------------------------------------------------------------------ staging
def _set_toml_list(text: str, key: str, values: list[str]) -> str:
    body = "[\n" + "".join(f'  "{v}",\n' for v in values) + "]"
    new, n = re.subn(rf"^{key}\s*=\s*\[.*?\]", f"{key} = {body}", text, count=1, flags=re.M | re.S)
    if n != 1:
        raise SystemExit(f"error: no '{key} = [...]' in the manifest")
    return new


def platform_wheels(manifest: dict, platforms: list[str], blender_ext) -> list[str]:
    """The manifest's wheel entries that serve any of ``platforms``."""
    out = []
    for entry in manifest["wheels"]:
        serves = wheel_platforms(Path(entry).name, blender_ext)
        if serves == ["any"] or set(serves) & set(platforms):
            out.append(entry)
    return out


def fetch_only(platforms: list[str] | None, cache: Path) -> list[Path]:
    """Download the third-party wheels for ``platforms`` into ``cache`` (the set-up step; builds then need no
    network)."""
    blender_ext = _blender_ext_module(find_blender_ext())
    manifest = tomllib.loads(MANIFEST.read_text())
    got = []
    with tempfile.TemporaryDirectory() as tmp:
        for entry in platform_wheels(manifest, platforms or list(manifest["platforms"]), blender_ext):
            if not Path(entry).name.startswith(CORE_DIST + "-"):
                got.append(fetch_wheel(Path(entry).name, Path(tmp), cache))
    return [cache / p.name for p in got]


def stage(stage_dir: Path, platforms: list[str], models: list[Path], cache: Path, blender_ext) -> dict:
    """Fill ``stage_dir`` with the extension's files; return a summary."""
    manifest_text = MANIFEST.read_text()
    manifest = tomllib.loads(manifest_text)
    check_python_coverage(manifest, blender_ext)
    unknown = sorted(set(platforms) - set(manifest["platforms"]))
    if unknown:
        raise SystemExit(f"error: platform(s) {unknown} are not in the manifest ({manifest['platforms']})")
    stage_dir.mkdir(parents=True)
    for p in sorted(ADDON_DIR.glob("*.py")):
        if p.name != "build.py":
            shutil.copy2(p, stage_dir / p.name)
    if (ADDON_DIR / "README.md").is_file():
        shutil.copy2(ADDON_DIR / "README.md", stage_dir / "README.md")
    wheels_dir = stage_dir / "wheels"
    wheels_dir.mkdir()
    kept: list[str] = []
    for entry in platform_wheels(manifest, platforms, blender_ext):
        filename = Path(entry).name
        if filename.startswith(CORE_DIST + "-"):
            built = build_core_wheel(wheels_dir)
            if built.name != filename:
                raise SystemExit(f"error: the manifest lists {filename} but hdr_core is version {core_version()}: "
                                 f"put ./wheels/{built.name} in blender_manifest.toml")
        else:
            fetch_wheel(filename, wheels_dir, cache)
        kept.append(entry)
    text = _set_toml_list(manifest_text, "platforms", platforms)
    text = _set_toml_list(text, "wheels", kept)
    (stage_dir / "blender_manifest.toml").write_text(text)
    names = stage_models(models, stage_dir / "models", stage_dir.parent)
    return {"id": manifest["id"], "version": manifest["version"], "wheels": kept, "models": names}


def run_blender_ext(blender_ext_py: Path, *args: str) -> None:
    subprocess.run([sys.executable, str(blender_ext_py), *args], check=True)


def build(out: Path, platforms: list[str] | None = None, models: list[Path] | None = None,
          shipped_models: bool = True, cache: Path = DEFAULT_CACHE,
          validate_with: tuple[str, ...] = VALIDATE_WITH) -> list[Path]:
    """Build the extension zip(s) into ``out``; validate each with the installed bpy's tool and with those of
    the Blender releases ``validate_with``; return the zips' paths."""
    ext_py = find_blender_ext()
    validators = [ext_py] + [fetch_validator(v, cache) for v in validate_with]
    blender_ext = _blender_ext_module(ext_py)
    manifest = tomllib.loads(MANIFEST.read_text())
    platforms = platforms or list(manifest["platforms"])
    sources = list(models or [])
    weights = REPO / "hdr_core" / "weights"
    if shipped_models and weights.is_dir():
        sources = sorted(p for p in weights.iterdir() if p.is_dir()) + sources
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lanet-hdr-build-") as tmp:
        stage_dir = Path(tmp) / manifest["id"]
        info = stage(stage_dir, platforms, sources, cache, blender_ext)
        if not info["models"]:
            log("no model bundled: the add-on will ask for a model file in its Preferences")
        before = set(out.glob("*.zip"))
        stem = f"{info['id']}-{info['version']}"
        if len(platforms) > 1:
            run_blender_ext(ext_py, "build", "--source-dir", str(stage_dir), "--output-dir", str(out),
                            "--split-platforms")
            zips = sorted(out / f"{stem}-{p.replace('-', '_')}.zip" for p in platforms)
        else:
            target = out / f"{stem}-{platforms[0].replace('-', '_')}.zip"
            target.unlink(missing_ok=True)
            run_blender_ext(ext_py, "build", "--source-dir", str(stage_dir), "--output-filepath", str(target))
            zips = [target]
    missing = [z for z in zips if not z.is_file()]
    if missing:
        raise SystemExit(f"error: blender_ext build did not write {missing} (new files: "
                         f"{sorted(set(out.glob('*.zip')) - before)})")
    from importlib.metadata import version

    names = [f"Blender {version('bpy')} (installed bpy)"] + [f"Blender {v}" for v in validate_with]
    for z in zips:
        for validator in validators:
            run_blender_ext(validator, "validate", str(z))
        log(f"{z.name}: valid for {', '.join(names)}")
        log(f"{z} ({z.stat().st_size / 2**20:.1f} MiB; models: {', '.join(info['models']) or 'none'})")
    return zips


def main(argv: list[str] | None = None) -> list[Path]:
    ap = argparse.ArgumentParser(prog="python -m blender_addon.build", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "dist", help="output folder (default: dist/)")
    ap.add_argument("--platform", action="append", dest="platforms",
                    help="build only for this Blender platform (repeatable): linux-x64, windows-x64, macos-arm64")
    ap.add_argument("--model", action="append", type=Path, default=[],
                    help="also bundle this model (.onnx file or checkpoint folder); repeatable")
    ap.add_argument("--no-shipped-models", action="store_true", help="do not bundle hdr_core/weights/*")
    ap.add_argument("--wheel-cache", type=Path, default=DEFAULT_CACHE,
                    help=f"downloaded wheels (default {DEFAULT_CACHE})")
    ap.add_argument("--fetch-only", action="store_true", help="only download the wheels into the cache")
    ap.add_argument("--validate-with", nargs="*", default=list(VALIDATE_WITH), metavar="VERSION",
                    help="also validate with the extension tool of these Blender releases (default: "
                         f"{' '.join(VALIDATE_WITH)}; none: only the installed bpy's)")
    args = ap.parse_args(argv)
    if args.fetch_only:
        return fetch_only(args.platforms, args.wheel_cache)
    return build(args.out, args.platforms, args.model, not args.no_shipped_models, args.wheel_cache,
                 tuple(args.validate_with))


if __name__ == "__main__":
    main()
