"""Nine more real HDR panoramas from the ``open3d`` wheel on PyPI: ``python -m hdr_core.data fetch open3d --out DIR``.

Open3D's viewer ships its image-based-lighting environments inside the wheel, as Filament cube maps
(``open3d/resources/<name>_skybox.ktx``): KTX 1 files of six 256x256 faces of ``GL_R11F_G11F_B10F`` packed floats
(unsigned 11/11/10-bit floats: 6/6/5 mantissa bits, 5 exponent bits, at most 65024 / 65024 / 64512), in the OpenGL
cube-map face order and orientation. Nine of them are real HDR panoramas, photographs of places with the light people
light scenes with (:data:`SKYBOXES`): a sun over a coast, a sun through park trees, a sun in a street, street lamps
and a lit skyline at night, a lamp-lit interior, a colonnade, a shaded park and an overcast square. ``default`` is a
synthetic grey gradient (peak 0.9) and is left out.

Where Poly Haven cannot be reached, PyPI usually can: this module downloads the wheel with
``pip download open3d-cpu==0.20.0 --no-deps`` (105 MB, nothing is installed), reads the skyboxes straight out of
it (a zip), checks each against its SHA-256 (:data:`SKYBOXES`), and writes each as a 1024x512 equirectangular
half-float EXR ``open3d_<name>.exr`` (half floats hold every 11/10-bit value exactly) plus ``manifest.json`` (class,
site group, ``sun``, provenance, licence, notes). ``--wheel FILE`` uses a wheel already on disk.

Licence: the wheel is MIT-licensed (Open3D); Open3D does not name the photographs' authors (the scenes look like
Poly Haven's CC0 HDRIs). The project trains on them and redistributes neither the files nor anything derived from
them but trained weights. Two suns reach 64512, the largest value all three channels hold, and were clipped there
(``crossroads``, ``park``); calibration (Eq. 1) makes the panoramas' absolute scale irrelevant.

None is a public test scene or a same-site cousin of one, nor of a validation panorama: checked by content against
the 8 test HDRIs, the 18 pmndrs and 35 ``hdri_extra`` panoramas (``python -m hdr_core.data similar data/open3d
--against ../shared/data/hdri ../shared/data/hdri_extra --blender``: best score 0.86, against 1.00 for a copy) and by
eye, side by side with the nearest ones (``docs/method-notes.md``).
The files are prefixed ``open3d_`` so that none shares a name (and a default site group) with a pmndrs scene
(``park``, ``hall``).
"""

from __future__ import annotations

import hashlib
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL_PACKAGE = "open3d-cpu"
WHEEL_VERSION = "0.20.0"
#: ``name -> (sha256 of open3d/resources/<name>_skybox.ktx, manifest fields)``.
SKYBOXES: dict[str, tuple[str, dict]] = {
    "brightday": ("e81c7fc3027f5468d267f73f677a9b0401ba4882b6d2a35227e8bb983a302638",
                  {"class": "outdoor", "sun": True, "notes": ["a high sun over a grassy coast; sea on the horizon"]}),
    "crossroads": ("1329be5765c841d3009000451c4f8827978ccc54b074838b644cf986432829ae",
                   {"class": "outdoor", "sun": True,
                    "notes": ["a low sun in a narrow street crossing of Venice (not the lagoon promenade of the "
                              "test set's sunset); the sun clipped at 64512"]}),
    "hall": ("86d049ee7c2217fbfd0a7741b1cce9d90da3c03049159f6cdd70bf87710add8b",
             {"class": "indoor", "notes": ["a vaulted palace hall lit by wall lamps, a chandelier and windows"]}),
    "konzerthaus": ("2f57c55996e199ec3c258d92a50f13ccc0d233d672b5574e3ea145751e1bcdcf",
                    {"class": "outdoor",
                     "notes": ["Gendarmenmarkt, Berlin, overcast (another site than pmndrs city, Potsdamer Platz)",
                               "weak HDR (peak 3.1, little saturated content)"]}),
    "nightlights": ("fb3cd049b382cca5ec7f9434e212fc13725804cd80191193a778fbce4ffaa3b0",
                    {"class": "night",
                     "notes": ["the Bund, Shanghai, at night: floodlit facades and the lit skyline across the river "
                               "(another site than the validation panorama shanghai_riverside, a daytime riverside "
                               "plaza)"]}),
    "park": ("86227fb5ec25b44c13d0ca6c1f8eeca39523eabe903b0c5f790cc9d25790dba3",
             {"class": "outdoor", "sun": True,
              "notes": ["a low sun through the trees of a park in autumn; the sun clipped at 64512"]}),
    "park2": ("319859a3585ce9a078e3046c98ad7629eb75d36d5daf171edc93e8b05bca93ce",
              {"class": "outdoor", "notes": ["under a large tree on a park path, bright overcast"]}),
    "pillars": ("c846c2f5c727aa4c0b0a27837f789f2906585f12e804f9cd90c15cea1c5131ce",
                {"class": "outdoor", "notes": ["a colonnade open to a garden, daylight without direct sun"]}),
    "streetlamp": ("a8307629a943bb7aeca4756f6f85156f70ecc5868b4e73a2a7c7f5d62e0de07b",
                   {"class": "night", "notes": ["a park at night lit by a street lamp and coloured floodlights"]}),
}
#: The one skybox of the wheel that is not a photograph.
LEFT_OUT = {"default": "a synthetic grey gradient (peak 0.9), not a photograph"}
PREFIX = "open3d_"
LICENCE = "MIT (the open3d wheel; Open3D does not name the photographs' authors)"

_KTX_MAGIC = b"\xabKTX 11\xbb\r\n\x1a\n"
_R11F_G11F_B10F = 0x8C3A
_PACKED_TYPES = (0x8C3B, 0x8C3A)


def unpack_r11g11b10f(words: np.ndarray) -> np.ndarray:
    """Decode ``GL_R11F_G11F_B10F`` words (``uint32``, any shape) to float32 RGB (shape ``(..., 3)``).

    Red is bits 0-10, green 11-21, blue 22-31; each an unsigned float with 5 exponent bits (bias 15) and 6 (red,
    green) or 5 (blue) mantissa bits: denormals below exponent 1, infinity/NaN at exponent 31 (kept as NaN here,
    which :func:`read_ktx_cubemap` refuses).
    """
    words = np.asarray(words, dtype=np.uint32)
    chans = []
    for shift, bits in ((0, 6), (11, 6), (22, 5)):
        v = (words >> np.uint32(shift)).astype(np.int64)
        e = (v >> bits) & 31
        m = (v & ((1 << bits) - 1)).astype(np.float64) / (1 << bits)
        val = np.where(e == 0, m * 2.0 ** -14, np.ldexp(1.0 + m, (e - 15).astype(np.int32)))
        chans.append(np.where(e == 31, np.nan, val))
    return np.stack(chans, axis=-1).astype(np.float32)


def read_ktx_cubemap(data: bytes, name: str = "<ktx>") -> np.ndarray:
    """The base level of a KTX 1 ``GL_R11F_G11F_B10F`` cube map as float32 faces ``(6, n, n, 3)``.

    Faces come in the OpenGL order +X, -X, +Y, -Y, +Z, -Z, each with its first stored row at ``t = 0``.
    Raises ``ValueError`` naming ``name`` for anything else (other formats, arrays, a truncated file, NaN or
    infinite texels).
    """
    if len(data) < 64 or data[:12] != _KTX_MAGIC:
        raise ValueError(f"{name}: not a KTX 1 file")
    if struct.unpack("<I", data[12:16])[0] != 0x04030201:
        raise ValueError(f"{name}: big-endian KTX files are not supported")
    (gl_type, _type_size, _fmt, internal, _base, w, h, depth, layers, faces, _mips,
     kv_bytes) = struct.unpack("<12I", data[16:64])
    if internal != _R11F_G11F_B10F:
        raise ValueError(f"{name}: pixel format 0x{internal:04X} is not GL_R11F_G11F_B10F (0x8C3A)")
    if gl_type not in _PACKED_TYPES:  # the KTX spec says 0x8C3B; Filament writes the format's 0x8C3A
        raise ValueError(f"{name}: pixel type 0x{gl_type:04X} is not GL_UNSIGNED_INT_10F_11F_11F_REV (0x8C3B)")
    if faces != 6 or w != h or w == 0 or depth > 1 or layers > 0:
        raise ValueError(f"{name}: not a square cube map (faces {faces}, {w}x{h}, depth {depth}, layers {layers})")
    off = 64 + kv_bytes
    face_bytes = w * w * 4
    if len(data) < off + 4 or struct.unpack("<I", data[off:off + 4])[0] != face_bytes:
        raise ValueError(f"{name}: its first level does not hold {w}x{w} 4-byte texels per face")
    off += 4
    if len(data) < off + 6 * face_bytes:
        raise ValueError(f"{name}: truncated ({len(data)} bytes, the faces need {off + 6 * face_bytes})")
    words = np.frombuffer(data, dtype="<u4", count=6 * w * w, offset=off).reshape(6, w, w)
    out = unpack_r11g11b10f(words)
    if not np.isfinite(out).all():
        raise ValueError(f"{name}: holds infinite or NaN texels")
    return out


def cube_to_equirect(faces: np.ndarray, height: int) -> np.ndarray:
    """Resample an OpenGL cube map (``(6, n, n, C)``, :func:`read_ktx_cubemap`) to an ``h x 2h`` panorama.

    The panorama is in the project's convention (:func:`hdr_core.lighting.pano_directions`: row 0 at the zenith,
    ``z`` up); the cube map's frame is OpenGL's (``+Y`` up), looked up at GL ``(X, Y, Z) = (-y, z, x)``: a
    reflection, which undoes the mirror Filament's cmgen puts into the cube maps it makes ("we mirror by default",
    its source says; the Bund's skyline in ``nightlights`` comes out as it stands only this way). Each pixel is a
    bilinear sample of its face, clamped at the face's edge.
    """
    from hdr_core.lighting import pano_directions

    faces = np.asarray(faces, dtype=np.float32)
    n = faces.shape[1]
    d = pano_directions(height)[0].numpy()
    gx, gy, gz = -d[..., 1], d[..., 2], d[..., 0]
    ax, ay, az = np.abs(gx), np.abs(gy), np.abs(gz)
    # The GL face selection and its (sc, tc) per face (OpenGL 4.6, table 8.19).
    face = np.where((ax >= ay) & (ax >= az), np.where(gx > 0, 0, 1),
                    np.where(ay >= az, np.where(gy > 0, 2, 3), np.where(gz > 0, 4, 5)))
    ma = np.choose(face, [ax, ax, ay, ay, az, az])
    sc = np.choose(face, [-gz, gz, gx, gx, gx, -gx])
    tc = np.choose(face, [-gy, -gy, gz, -gz, -gy, -gy])
    s = np.clip((sc / ma + 1) / 2 * n - 0.5, 0, n - 1)
    t = np.clip((tc / ma + 1) / 2 * n - 0.5, 0, n - 1)
    s0, t0 = np.floor(s).astype(np.int64), np.floor(t).astype(np.int64)
    s1, t1 = np.minimum(s0 + 1, n - 1), np.minimum(t0 + 1, n - 1)
    fs, ft = (s - s0)[..., None], (t - t0)[..., None]
    top = (1 - fs) * faces[face, t0, s0] + fs * faces[face, t0, s1]
    bottom = (1 - fs) * faces[face, t1, s0] + fs * faces[face, t1, s1]
    return ((1 - ft) * top + ft * bottom).astype(np.float32)


def download_wheel(dest: str | Path, version: str = WHEEL_VERSION, python: str = sys.executable) -> Path:
    """``pip download open3d-cpu==version --no-deps`` into ``dest``; the wheel's path.

    Always the Linux x86-64 CPython 3.11 wheel, whatever this machine is: only its resource files are read, and
    every build holds the same ones (checked by their SHA-256)."""
    dest = Path(dest)
    cmd = [python, "-m", "pip", "download", f"{WHEEL_PACKAGE}=={version}", "--no-deps", "--only-binary=:all:",
           "--platform", "manylinux_2_35_x86_64", "--python-version", "3.11", "--implementation", "cp",
           "--abi", "cp311", "--disable-pip-version-check", "-q", "-d", str(dest)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("open3d*.whl"))
    if res.returncode != 0 or not wheels:
        why = (res.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise RuntimeError(f"pip download {WHEEL_PACKAGE}=={version} failed: {why}")
    return wheels[0]


def skyboxes_from_wheel(wheel: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """``name -> faces`` for the skyboxes of :data:`SKYBOXES` (or ``names``) in an open3d wheel, each checked
    against its SHA-256."""
    wheel = Path(wheel)
    out = {}
    try:
        with zipfile.ZipFile(wheel) as z:
            for name in names or list(SKYBOXES):
                member = f"open3d/resources/{name}_skybox.ktx"
                try:
                    data = z.read(member)
                except KeyError:
                    raise ValueError(f"{wheel}: has no {member} (an open3d {WHEEL_VERSION} wheel has)") from None
                digest = hashlib.sha256(data).hexdigest()
                if digest != SKYBOXES[name][0]:
                    raise ValueError(f"{wheel}: {member} is not the file this project checked (sha256 {digest[:12]}…,"
                                     f" expected {SKYBOXES[name][0][:12]}…)")
                out[name] = read_ktx_cubemap(data, f"{wheel}:{member}")
    except zipfile.BadZipFile as e:
        raise ValueError(f"{wheel}: not a wheel (zip) file ({e})") from None
    return out


def fetch_open3d(out_dir: str | Path, wheel: str | Path | None = None, height: int = 512,
                 version: str = WHEEL_VERSION) -> list[Path]:
    """Write the nine panoramas as ``out_dir/open3d_<name>.exr`` (``height x 2 height`` half-float EXR) and
    ``manifest.json``; download the wheel unless ``wheel`` is given.

    Idempotent: panoramas already there are kept (and the wheel not downloaded if all are). The folder may hold
    other panoramas: their manifest entries are kept as they are, only the ``open3d_*`` ones are (re)written.
    """
    from hdr_core.io import write_exr

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    todo = [n for n in SKYBOXES if not (out / f"{PREFIX}{n}.exr").exists()]
    if todo:
        with tempfile.TemporaryDirectory() as tmp:
            whl = Path(wheel) if wheel is not None else download_wheel(tmp, version)
            for name, faces in skyboxes_from_wheel(whl, todo).items():
                write_exr(out / f"{PREFIX}{name}.exr", cube_to_equirect(faces, height), half=True)

    _merge_manifest(out, version)
    return sorted(out / f"{PREFIX}{n}.exr" for n in SKYBOXES)


def _merge_manifest(out: Path, version: str) -> Path:
    """(Re)write the nine panoramas' entries of ``out/manifest.json``, keeping every other entry as it is."""
    from hdr_core.data.catalog import manifest_rows, write_manifest_rows
    from hdr_core.data.sources import manifest_entry

    rows = manifest_rows(out)
    source = f"PyPI {WHEEL_PACKAGE}=={version} wheel (Filament cube maps of Open3D's viewer)"
    for n in SKYBOXES:
        f = out / f"{PREFIX}{n}.exr"
        rows[f.name] = manifest_entry(f, source, LICENCE, set="open3d", site_group=f.stem,
                                      source_file=f"open3d/resources/{n}_skybox.ktx", source_sha256=SKYBOXES[n][0],
                                      **SKYBOXES[n][1])
    return write_manifest_rows(out, rows)
