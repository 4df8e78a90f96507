"""Registered segmentors."""
from .dense_clip_baseline import DenseCLIPBaseline  # noqa: F401
from .segclip import SegCLIP  # noqa: F401
from .pixelclip_segmentor import PixelCLIPSegmentor  # noqa: F401
from .sclip_protocol_baseline import SCLIPProtocolBaseline  # noqa: F401
from .ovs_tta_model import OVSTTAModel  # noqa: F401
