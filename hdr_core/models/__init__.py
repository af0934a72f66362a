"""HDR networks: LANet and panoLANet (Yu et al., CGF 2021) and the ported baselines, with a timm-style registry.

Usage::

    from hdr_core.models import create_model, list_models
    model = create_model("panolanet_small")            # or "lanet", "lanet_small", "panolanet"; baselines (#7):
    # "hdrcnn", "hdrcnn_small", "singlehdr", "singlehdr_small", "fhdr", "fhdr_1iter", "fhdr_2iter", "fhdr_small"
    out = model(2 * linear_rgb - 1)                     # HDROutput; out.log_hdr, out.hdr
    ckpt_cfg = {"name": model.model_name, "config": model.config.to_dict()}
    same = create_model(ckpt_cfg["name"], **ckpt_cfg["config"])
"""

from hdr_core.models._registry import (
                                       ModelConfig,
                                       create_model,
                                       is_model,
                                       list_models,
                                       model_config,
                                       model_entrypoint,
                                       register_model,
)
from hdr_core.models.fhdr import FHDR, FHDRConfig
from hdr_core.models.hdrcnn import HDRCNN, HDRCNNConfig
from hdr_core.models.lanet import LANet, LANetConfig
from hdr_core.models.layers import ExportWrapper, HDRModel, HDROutput, SkipFuse
from hdr_core.models.pano_lanet import CeilingBranch, PanoLANet, PanoLANetConfig, ResUNet
from hdr_core.models.resnet import ResNetEncoder
from hdr_core.models.singlehdr import SingleHDR, SingleHDRConfig

__all__ = ["ModelConfig", "create_model", "is_model", "list_models", "model_config", "model_entrypoint",
           "register_model", "LANet", "LANetConfig", "PanoLANet", "PanoLANetConfig", "ResUNet", "CeilingBranch",
           "ResNetEncoder", "HDROutput", "HDRModel", "ExportWrapper", "SkipFuse", "FHDR", "FHDRConfig", "HDRCNN",
           "HDRCNNConfig", "SingleHDR", "SingleHDRConfig"]
