"""Registered backbones."""
from .open_clip_convnext import OpenCLIPConvNeXt
from .open_clip_vit import OpenCLIPViT

__all__ = ['OpenCLIPViT', 'OpenCLIPConvNeXt']
from .pixelclip_dense_vit import PixelCLIPDenseViT  # noqa: F401
