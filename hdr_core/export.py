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


#: The inputs (by op, the input indices) that ``half_weights`` stores in float16: the network's parameters.
_WEIGHT_INPUTS = {"Conv": (1, 2), "ConvTranspose": (1, 2), "Gemm": (1, 2), "MatMul": (1,),
                  "BatchNormalization": (1, 2, 3, 4)}


def _half_weights(onnx_path: str) -> None:
    """Store the float32 parameters of the convolutions, matmuls and batch norms as float16, each with a ``Cast``
    back to float32 (ONNX Runtime folds the casts, and fuses each batch norm into its conv, when it loads the graph:
    inference runs in float32 on exactly the float16-rounded parameters of the checkpoint).

    Only those inputs: the graph's other constants (the P2C/C2P sampling grids, eps, scales) stay float32, since half
    precision would move a 1024-pixel coordinate by up to a quarter pixel."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(onnx_path)
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    users: dict[str, set[bool]] = {}
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in inits:
                users.setdefault(name, set()).add(i in _WEIGHT_INPUTS.get(node.op_type, ()))
    casts = []
    for name, uses in users.items():
        t = inits[name]
        if uses != {True} or t.data_type != onnx.TensorProto.FLOAT:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), f"{name}.fp16")
        t.CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [name], to=onnx.TensorProto.FLOAT, name=f"{name}.cast"))
    nodes = [*casts, *graph.node]  # the casts before every user: the node list stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    onnx.save(proto, onnx_path)


def export_onnx(model: torch.nn.Module, path: str | os.PathLike, example_hw: tuple[int, int] | None = None,
                opset: int = OPSET, half_weights: bool = False) -> Path:
    """Export ``model`` (eval mode, CPU) to ``path`` atomically.

    Single-image graphs (LANet, the baselines) have dynamic batch, height and width, for sides that are multiples of
    the model's ``pad_multiple`` (32 for LANet; also stored in the metadata): callers pad and crop
    (:meth:`hdr_core.predict.Predictor.run_network` does). panoLANet graphs have a dynamic batch and the fixed size
    ``example_hw`` (default 512x1024, the reference test size): the P2C/C2P sampling grids are constants of the
    graph. The size is stored in the file's metadata (``input_size``) and :class:`hdr_core.predict.Predictor`
    resizes inputs to it. ``half_weights`` stores the convolution weights in float16 (half the file; see
    :func:`_half_weights`), for a model whose weights are float16-rounded anyway (``save_model(dtype=...)``).
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
            # half weights: batch norms stay nodes (PRESERVE on an eval-mode model: no conv-BN fusion at export,
            # which would round the fused products instead of the checkpoint's parameters); ORT fuses them
            mode = torch.onnx.TrainingMode.PRESERVE if half_weights else torch.onnx.TrainingMode.EVAL
            torch.onnx.export(wrapper, (x,), tmp, dynamo=False, opset_version=opset, training=mode,
                              input_names=["x"], output_names=["log_hdr", "merge_mask"],
                              dynamic_axes=dynamic)
        if half_weights:
            _half_weights(tmp)
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
    ap.add_argument("--half-weights", action="store_true",
                    help="store the convolution weights as float16 (half the file; inference stays float32)")
    args = ap.parse_args(argv)
    if not args.weights and not args.model:
        ap.error("give --weights CKPT_DIR or --model NAME")
    model = load_model(args.weights) if args.weights else create_model(args.model)
    hw = None
    if args.size:
        w, h = (int(v) for v in args.size.lower().split("x"))
        hw = (h, w)
    out = export_onnx(model, args.output, hw, args.opset, half_weights=args.half_weights)
    print(out)
    return out


if __name__ == "__main__":
    main()
