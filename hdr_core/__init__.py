"""hdr_core: LANet / panoLANet HDR reconstruction from LDR images and 360-degree panoramas.

Spec: Yu et al., "Luminance Attentive Networks for HDR Image and Panorama Reconstruction" (CGF 2021) and the
project's method notes. The inference path (``io``, ``color``, ``calibration``, ONNX Runtime prediction) needs
only numpy/OpenCV/OpenEXR; training, models and projections need torch.
"""

__version__ = "0.1.0"
