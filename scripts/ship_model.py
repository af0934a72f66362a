"""Package a trained model as a shipped one: ``hdr_core/weights/NAME/`` with half-precision weights.

    .venv/bin/python scripts/ship_model.py runs/real50_panolanet_w24_stage2/model panolanet_w24

Writes ``model.safetensors`` (every floating-point tensor rounded to float16: half the bytes; loading casts back
to float32), ``model.json`` (the registered model NAME, whose default config must equal the run's), the run's
``training.json``, and ``model.onnx`` exported from the rounded weights (512x256 for panoLANet; convolution weights
stored as float16, inference in float32: ``hdr_core.export``). docs/models.md says how much the rounding moves the
validation scores. Every file is written atomically; an existing folder's files are replaced.
``--highlight-gain STOPS`` ships the model with that highlight gain (``hdr_core.masks.highlight_gain``; fitted on
validation by ``scripts/fit_highlight_gain.py``) instead of the run's own (0 unless set).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def ship(src: Path, name: str, dest: Path, size: tuple[int, int] = (256, 512), highlight_gain: float | None = None
         ) -> Path:
    import torch

    from hdr_core.checkpoint import load_model, read_meta, save_model
    from hdr_core.export import export_onnx
    from hdr_core.models import create_model

    meta = read_meta(src)
    net = create_model(name)
    try:  # a config saved before a field existed gets its default
        run_cfg = type(net.config).from_dict(meta["config"]).to_dict()
    except ValueError as e:
        raise SystemExit(f"{src}: not a {name!r} checkpoint ({e})") from e
    if highlight_gain is not None:
        if "highlight_gain" not in run_cfg:
            raise SystemExit(f"{name}: this model has no highlight_gain")
        run_cfg["highlight_gain"] = highlight_gain
    if "highlight_gain" in run_cfg:  # the gain is not part of the registered architecture: take the run's (or the new)
        net = create_model(name, highlight_gain=run_cfg["highlight_gain"])
    if net.config.to_dict() != run_cfg:
        diff = sorted(k for k, v in net.config.to_dict().items() if run_cfg.get(k) != v)
        raise SystemExit(f"{src}: its config differs from the registered {name!r} in {diff}")
    net.load_state_dict(load_model(src).state_dict(), strict=True)
    extra = {k: meta[k] for k in ("stage", "steps") if k in meta}
    save_model(dest, net, extra=extra, dtype=torch.float16)
    if (src / "training.json").is_file():
        tmp = dest / ".training.json.tmp"
        shutil.copy2(src / "training.json", tmp)
        tmp.replace(dest / "training.json")
    export_onnx(load_model(dest), dest / "model.onnx", size, half_weights=True)
    return dest


def main(argv: list[str] | None = None) -> None:
    from hdr_core.predict import WEIGHTS_DIR

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path, help="a trained model folder (RUN/model)")
    ap.add_argument("name", help="registered model name; also the folder's name under hdr_core/weights/")
    ap.add_argument("--dest", type=Path, help=f"output folder (default {WEIGHTS_DIR}/NAME)")
    ap.add_argument("--highlight-gain", type=float, help="stops added where the input is saturated (default: the "
                    "run's own)")
    args = ap.parse_args(argv)
    print(ship(args.src, args.name, args.dest or WEIGHTS_DIR / args.name, highlight_gain=args.highlight_gain))


if __name__ == "__main__":
    main()
