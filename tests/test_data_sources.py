"""Data sources: the pmndrs npm package's base64 EXR modules, manifests, the Blender test set."""

import base64
import io
import json
import tarfile

import numpy as np
import pytest

from hdr_core.data.sources import blender_test_set, decode_exr_js, extract_pmndrs_tarball, write_manifest
from hdr_core.io import read_hdr, write_exr


def _exr_js(tmp_path, img):
    write_exr(tmp_path / "src.exr", img, half=True)
    data = (tmp_path / "src.exr").read_bytes()
    return f"export default 'data:application/exr;base64,{base64.b64encode(data).decode()}'\n", data


def test_decode_exr_js_round_trip(tmp_path):
    img = np.random.default_rng(0).uniform(0, 50, (8, 16, 3)).astype(np.float32)
    text, data = _exr_js(tmp_path, img)
    assert decode_exr_js(text) == data
    with pytest.raises(ValueError, match="no base64"):
        decode_exr_js("export default 42")
    with pytest.raises(ValueError, match="not an OpenEXR"):
        decode_exr_js(f"'data:application/exr;base64,{base64.b64encode(b'hello').decode()}'")


def test_extract_tarball_and_manifest(tmp_path):
    img = np.random.default_rng(1).uniform(0.01, 500, (8, 16, 3)).astype(np.float32)
    text, _ = _exr_js(tmp_path, img)
    tgz = tmp_path / "pkg.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name in ("package/hdri/sky.exr.js", "package/hdri/sunrise.exr.js", "package/hdri/sky.exr.d.ts"):
            blob = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    out = tmp_path / "out"
    out.mkdir()
    files = extract_pmndrs_tarball(tgz, out)
    assert [f.name for f in files] == ["sky.exr", "sunrise.exr"]
    np.testing.assert_allclose(read_hdr(files[0]), img, rtol=1e-3)
    manifest = json.loads(write_manifest(out, "test", "CC0-1.0").read_text())["panoramas"]
    assert manifest[0]["name"] == "sky" and manifest[0]["width"] == 16 and manifest[0]["peak"] > 100


def test_blender_test_set_has_eight_panoramas(blender_hdri_path):
    files = blender_test_set()
    assert len(files) == 8 and all(f.is_file() for f in files)


def test_similarity_sees_copies_through_turns_mirrors_and_exposure(tmp_path, capsys):
    from hdr_core.data.__main__ import main as data_main
    from hdr_core.data.similarity import SAME_IMAGE, signature, similarity

    rng = np.random.default_rng(3)
    a = np.exp(rng.normal(0, 2, (32, 64, 3))).astype(np.float32)
    b = np.exp(rng.normal(0, 2, (32, 64, 3))).astype(np.float32)
    copy = 8 * np.roll(a, 17, axis=1)[:, ::-1]  # turned, mirrored, 3 stops brighter
    assert similarity(signature(copy), signature(a)) > 0.999
    assert similarity(signature(a), signature(b)) < 0.3
    write_exr(tmp_path / "a.exr", a)
    write_exr(tmp_path / "b.exr", b)
    (tmp_path / "new").mkdir()
    write_exr(tmp_path / "new" / "copy.exr", copy, half=True)
    assert data_main(["similar", str(tmp_path / "new"), "--against", str(tmp_path), "--top", "2"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{tmp_path / 'new' / 'copy.exr'}: {tmp_path / 'a.exr'} 1.000") and "SAME IMAGE?" in line
    assert SAME_IMAGE < 1
    assert data_main(["similar", str(tmp_path / "nothing-here")]) == 1
    assert "nothing-here: no such file or folder" in capsys.readouterr().err
