"""ONNX export: ``python -m hdr_core.export --weights CKPT_DIR -o model.onnx`` (or ``--model NAME``).

The graph takes the network input ``x`` (``Bx3xHxW``, linear RGB mapped to [-1, 1]) and returns ``log_hdr``
(``Bx3xHxW``) and, for panoLANet, the merge mask (``Bx1xHxW``). LANet graphs take any size whose sides are
multiples of 32 (the caller pads); panoLANet graphs take one fixed 2:1 size (``--size``, default 1024x512),
since the P2C/C2P sampling grids are graph constants. ONNX Runtime is the default inference backend on CPU
(:mod:`hdr_core.predict`); its output matches torch within the tolerance stated in the tests.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from pathlib import Path

import torch

OPSET = 17


class ExportModule(torch.nn.Module):
    """Wraps an hdr_core model so its forward returns plain tensors: ``(log_hdr, merge_mask)``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        if is_panorama_model(self.model):  # a fixed-size graph
            out = self.model(x)
        else:  # LANet & co: the caller pads to the model's multiple (traced pads would be constants of the graph)
            out, _ = self.model.forward_aligned(x)
        mask = out.merge_mask if out.merge_mask is not None else torch.zeros_like(x[:, :1])
        return out.log_hdr, mask


def is_panorama_model(model: torch.nn.Module) -> bool:
    return hasattr(model, "forward_pano")


def _add_metadata(onnx_path: str, model: torch.nn.Module, example_hw: tuple[int, int]) -> None:
    """Store the model name and config in the ONNX file, so a bare ``.onnx`` is self-describing."""
    import json

    import onnx

    proto = onnx.load(onnx_path)
    meta = {"model": model.model_name, "config": json.dumps(model.config.to_dict(), sort_keys=True),
            "producer": "hdr_core.export"}
    if is_panorama_model(model):
        meta["input_size"] = f"{example_hw[1]}x{example_hw[0]}"
    else:
        meta["pad_multiple"] = str(model.pad_multiple)
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, onnx_path)


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, example_hw: tuple[int, int] | None = None,
                opset: int = OPSET) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` atomically.

    Single-image graphs (LANet, the baselines) have dynamic batch, height and width, for sides that are multiples of
    the model's ``pad_multiple`` (32 for LANet; also stored in the metadata): callers pad and crop
    (:meth:`hdr_core.predict.Predictor.run_network` does). panoLANet graphs have a dynamic batch and the fixed size
    ``example_hw`` (default 512x1024, the reference test size): the P2C/C2P sampling grids are constants of the
    graph. The size is stored in the file's metadata (``input_size``) and :class:`hdr_core.predict.Predictor`
    resizes inputs to it.
    """
    pano = is_panorama_model(model)
    example_hw = example_hw or ((512, 1024) if pano else (256, 512))
    if not pano:
        m = model.pad_multiple
        example_hw = tuple(-(-v // m) * m for v in example_hw)
    axes = {"batch": 0} if pano else {"batch": 0, "height": 2, "width": 3}
    dynamic = {name: {i: n for n, i in axes.items()} for name in ("x", "log_hdr", "merge_mask")}
    path = Path(path)
    model = model.eval().cpu()
    wrapper = ExportModule(model).eval()  # a fresh module is in train mode, and export restores that mode
    x = torch.zeros(1, 3, *example_hw)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".onnx", dir=path.parent)
    os.close(fd)
    from hdr_core.checkpoint import _umask

    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TorchScript-exporter deprecation and instance-norm notices
            torch.onnx.export(wrapper, (x,), tmp, dynamo=False, opset_version=opset,
                              input_names=["x"], output_names=["log_hdr", "merge_mask"],
                              dynamic_axes=dynamic)
        _add_metadata(tmp, model, example_hw)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def main(argv: list[str] | None = None) -> Path:
    from hdr_core.checkpoint import load_model
    from hdr_core.models import create_model, list_models

    ap = argparse.ArgumentParser(prog="python -m hdr_core.export", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", help="checkpoint folder (model.safetensors + model.json)")
    ap.add_argument("--model", choices=list_models(), help="registered model (random weights unless --weights)")
    ap.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    ap.add_argument("--size", default=None,
                    help="WxH: panoLANet's fixed input size (default 1024x512); LANet's tracing example")
    ap.add_argument("--opset", type=int, default=OPSET)
    args = ap.parse_args(argv)
    if not args.weights and not args.model:
        ap.error("give --weights CKPT_DIR or --model NAME")
    model = load_model(args.weights) if args.weights else create_model(args.model)
    hw = None
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        hw = (h, w)
    out = export_onnx(model, args.output, hw, args.opset)
    print(out)
    return out


if __name__ == "__main__":
    main()
