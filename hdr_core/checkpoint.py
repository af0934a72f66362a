"""Self-describing model checkpoints: ``model.safetensors`` + ``model.json``.

``model.json`` holds the registered model name and its full config, so :func:`load_model` rebuilds the network
with no training code (nanoGPT-style). Weights are safetensors: loading never unpickles anything.
Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

WEIGHTS = "model.safetensors"
META = "model.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then ``os.replace``)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the result the usual permissions
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_model(folder: str | Path, model, extra: dict | None = None) -> Path:
    """Save ``model`` (a registered hdr_core model) as ``folder/model.safetensors`` + ``folder/model.json``."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_write_bytes(folder / WEIGHTS, save(state))
    meta = {"model": model.model_name, "config": model.config.to_dict(), **(extra or {})}
    atomic_write_text(folder / META, json.dumps(meta, indent=2, sort_keys=True))
    return folder


def read_meta(path: str | Path) -> dict:
    """The ``model.json`` of a checkpoint folder (or of the folder holding a given ``.safetensors``/``.json``)."""
    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    meta_path = folder / META
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: checkpoint metadata not found")
    return json.loads(meta_path.read_text())


def load_model(path: str | Path, map_location: str = "cpu"):
    """Rebuild a model from a checkpoint folder (or its ``model.safetensors``) and load its weights."""
    from safetensors.torch import load_file

    from hdr_core.models import create_model

    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    meta = read_meta(folder)
    model = create_model(meta["model"], config=meta["config"])
    model.load_state_dict(load_file(str(folder / WEIGHTS), device=map_location))
    return model
