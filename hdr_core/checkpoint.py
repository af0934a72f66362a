"""Self-describing model checkpoints: ``model.safetensors`` + ``model.json``.

A model bigger than ``max_shard_bytes`` is written as shards instead, ``model-00001-of-0000N.safetensors`` ... plus
``model.safetensors.index.json`` (the Hugging Face layout: ``weight_map`` names each tensor's shard); every loader
here (:func:`load_state`) reads either form.

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
INDEX = "model.safetensors.index.json"
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


#: safetensors' file = an 8-byte length + a JSON header (padded to 8 bytes) + the tensors' bytes. A shard's size
#: counts the header too (a shard limit is usually a file-size limit); these bound it from above.
_HEADER_BASE = 8 + 8 + 2


def _header_bytes(name: str, t) -> int:
    """An upper bound on a tensor's entry in a safetensors header,
    ``"name":{"dtype":"F8_E4M3","shape":[...],"data_offsets":[start,end]},``: the quoted name, up to 20 digits and a
    comma per dimension, 91 bytes of the rest with offsets of 20 digits each (files up to 10^20 bytes)."""
    return len(json.dumps(name)) + 21 * t.dim() + 100


def save_model(folder: str | Path, model, extra: dict | None = None, max_shard_bytes: int = 0,
               dtype=None) -> Path:
    """Save ``model`` (a registered hdr_core model) as ``folder/model.safetensors`` + ``folder/model.json``; with
    ``max_shard_bytes`` and more weights than that, as shard files of at most that size, header included (a tensor
    never splits: one larger than the limit gets a shard of its own). ``dtype`` (e.g. ``torch.float16``, half the
    bytes of a shipped model) stores every floating-point tensor in that type; loading casts back to the model's own
    (``load_state_dict``)."""
    from safetensors.torch import save

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    for old in [folder / INDEX, *folder.glob("model-*-of-*.safetensors")]:  # a previous save's other layout
        old.unlink(missing_ok=True)
    total = sum(v.numel() * v.element_size() for v in state.values())
    in_file = {k: v.numel() * v.element_size() + _header_bytes(k, v) for k, v in state.items()}  # tensor + entry
    if not max_shard_bytes or _HEADER_BASE + sum(in_file.values()) <= max_shard_bytes:
        atomic_write_bytes(folder / WEIGHTS, save(state))
    else:
        shards: list[dict] = [{}]
        size = _HEADER_BASE
        for k, v in state.items():
            n = in_file[k]
            if shards[-1] and size + n > max_shard_bytes:
                shards.append({})
                size = _HEADER_BASE
            shards[-1][k] = v
            size += n
        weight_map = {}
        for i, shard in enumerate(shards):
            name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            atomic_write_bytes(folder / name, save(shard))
            weight_map.update(dict.fromkeys(shard, name))
        (folder / WEIGHTS).unlink(missing_ok=True)
        atomic_write_text(folder / INDEX, json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                                                     indent=1))
    meta = {"model": model.model_name, "config": model.config.to_dict(), **(extra or {})}
    if dtype is not None:
        meta["weights_dtype"] = str(dtype).removeprefix("torch.")
    atomic_write_text(folder / META, json.dumps(meta, indent=2, sort_keys=True))
    return folder


def weight_files(folder: str | Path) -> list[Path]:
    """The safetensors file(s) of a checkpoint folder: ``model.safetensors``, or its shards in order."""
    folder = Path(folder)
    if (folder / INDEX).is_file():
        names = json.loads((folder / INDEX).read_text())["weight_map"].values()
        return [folder / n for n in sorted(set(names))]
    return [folder / WEIGHTS]


def load_state(folder: str | Path, device: str = "cpu") -> dict:
    """All weights of a checkpoint folder (one file or shards) as one state dict."""
    from safetensors.torch import load_file

    state: dict = {}
    for f in weight_files(folder):
        state.update(load_file(str(f), device=device))
    return state


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
    from hdr_core.models import create_model

    folder = Path(path)
    folder = folder.parent if folder.is_file() else folder
    meta = read_meta(folder)
    model = create_model(meta["model"], config=meta["config"])
    model.load_state_dict(load_state(folder, device=map_location))
    return model
