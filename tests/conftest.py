"""Shared test fixtures. No test needs ../shared or the network."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# The first `import bpy` writes to the user's Blender config unless this points elsewhere.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender-user-"))
os.environ.setdefault("OMP_NUM_THREADS", "2")

try:  # property tests: a deterministic, CI-friendly profile
    from hypothesis import HealthCheck, settings

    settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("ci")
except ImportError:  # pragma: no cover
    pass


def blender_studiolights_dir() -> Path | None:
    """Folder of the 8 world HDRIs shipped in the installed ``bpy`` wheel (the public test set), or None."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    hits = sorted(root.glob("*/datafiles/studiolights/world"))
    return hits[0] if hits else None


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
