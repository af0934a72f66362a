"""Shared test fixtures. No test needs ../shared or the network."""

from __future__ import annotations

import atexit
import os
import shutil
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from hdr_core.data.sources import blender_studiolights_dir

# The first `import bpy` writes to the user's Blender config unless this points elsewhere.
_USER_RESOURCES = None
if "BLENDER_USER_RESOURCES" not in os.environ:
    _USER_RESOURCES = os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="blender-user-")
    atexit.register(shutil.rmtree, _USER_RESOURCES, True)
os.environ.setdefault("OMP_NUM_THREADS", "2")

try:  # property tests: a deterministic, CI-friendly profile
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci")
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def blender_hdri_path():
    """Return a function name -> path of one of Blender's studio-light HDRIs (skip if bpy is absent)."""
    folder = blender_studiolights_dir()
    if folder is None:
        pytest.skip("bpy wheel not installed")

    def get(name: str = "forest") -> Path:
        return folder / f"{name}.exr"

    return get


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def synthetic_panorama(h: int, seed: int) -> np.ndarray:
    """A small HDR panorama: sky gradient, a bright sun at a random spot, textured ground (float32 HxWx3)."""
    r = np.random.default_rng(seed)
    theta = (np.arange(h) + 0.5) / h * np.pi
    phi = (np.arange(2 * h) + 0.5) / h * np.pi
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    sky = np.stack([0.4 + 0.3 * np.cos(th), 0.6 + 0.3 * np.cos(th), 1.0 + 0.2 * np.cos(th)], -1)
    ground = 0.15 * (1 + 0.5 * r.random((h, 2 * h, 1))) * np.array([0.8, 0.6, 0.4])
    img = np.where((th < np.pi / 2)[..., None], sky, ground)
    st, sp = r.uniform(0.2, 1.2), r.uniform(0, 2 * np.pi)
    d = np.arccos(np.clip(np.sin(th) * np.sin(st) * np.cos(ph - sp) + np.cos(th) * np.cos(st), -1, 1))
    img = img + (d < 0.12)[..., None] * r.uniform(200, 2000)
    return img.astype(np.float32)


@pytest.fixture(scope="session")
def pano_folder(tmp_path_factory):
    """A folder of 4 synthetic 32x64 HDR panoramas (.hdr): a0..a2 for training, v0 for validation."""
    from hdr_core.io import write_hdr

    folder = tmp_path_factory.mktemp("panos")
    for i, name in enumerate(["a0", "a1", "a2", "v0"]):
        write_hdr(folder / f"{name}.hdr", synthetic_panorama(32, i))
    return folder


def fit_one_batch(model, batch: dict, steps: int = 30, **adam) -> list[float]:
    """Adam on one training batch with the model's own ``training_loss``; the loss after each step (smoke tests)."""
    import torch

    opt = torch.optim.Adam(model.parameters(), **adam)
    x = 2 * batch["ldr"] - 1
    losses = []
    for _ in range(steps):
        loss, _ = model.training_loss(model(x), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def bpy_exit_is_broken() -> bool:
    """Whether this ``bpy`` crashes or hangs when the interpreter exits (the 4.2 and 4.5 LTS wheels segfault in
    their atexit clean-up after any test; 5.0 does not). Test scripts run in a subprocess end with ``os._exit``
    too (``tests/test_addon.py``)."""
    bpy = sys.modules.get("bpy")
    return bpy is not None and tuple(bpy.app.version) < (5, 0, 0)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """With a bpy whose interpreter exit crashes, leave with pytest's own exit status once pytest is done."""
    if bpy_exit_is_broken():
        if _USER_RESOURCES:  # what atexit would have removed
            shutil.rmtree(_USER_RESOURCES, True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(getattr(config, "_lanet_exitstatus", 0)))


def pytest_sessionfinish(session, exitstatus):
    session.config._lanet_exitstatus = exitstatus


def gpano_xmp(props: dict, prefix: str = "GPano", elements: bool = False) -> str:
    """An XMP packet with these photo-sphere (GPano) properties, as attributes or as elements."""
    ns = f'xmlns:{prefix}="http://ns.google.com/photos/1.0/panorama/"'
    if elements:
        body = "".join(f"<{prefix}:{k}>{v}</{prefix}:{k}>" for k, v in props.items())
        desc = f'<rdf:Description rdf:about="" {ns}>{body}</rdf:Description>'
    else:
        attrs = " ".join(f'{prefix}:{k}="{v}"' for k, v in props.items())
        desc = f'<rdf:Description rdf:about="" {ns} {attrs}/>'
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + desc +
            '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def gpano_props(full_w, full_h, w, h, left, top, projection="equirectangular"):
    """The GPano properties of a crop of a full equirectangular panorama."""
    return {"ProjectionType": projection, "FullPanoWidthPixels": full_w, "FullPanoHeightPixels": full_h,
            "CroppedAreaImageWidthPixels": w, "CroppedAreaImageHeightPixels": h, "CroppedAreaLeftPixels": left,
            "CroppedAreaTopPixels": top}


def write_jpeg_with_xmp(path, rgb: np.ndarray, xmp: str, quality: int = 95) -> None:
    """A JPEG (OpenCV) with an EXIF-like APP1 first and the XMP packet in its own APP1 after it, as cameras write."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    data = buf.tobytes()
    exif = b"Exif\x00\x00" + b"\x00" * 20
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp.encode()
    segs = b"".join(b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in (exif, payload))
    path.write_bytes(data[:2] + segs + data[2:])
