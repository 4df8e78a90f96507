"""Registered heads."""
from .online_cluster_head import OnlineClusterHead  # noqa: F401
from .pixelclip_mask_decoder import PixelCLIPMaskDecoder  # noqa: F401
